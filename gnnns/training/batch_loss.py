"""The loss of one training batch: negative sampling or 1-N scoring, plus the N3 penalty."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from gnnns.loaders import OneToNLoader


class BatchLossMixin:
    """The per-batch loss of a :class:`~gnnns.training.trainer.Trainer`, whose ``model``, ``loss``, ``loader``,
    ``sampler``, ``num_negatives``, ``negative_sides``, ``num_head_negatives``, ``scoring``,
    ``diagnostics``, ``regularizer``, ``regularizer_weight``, ``relation_regularizer_weight`` and
    ``positive_weights`` it reads."""

    def _batch_loss(self, batch) -> Tensor:
        """The loss of one batch (the forward of :class:`StepLoss`)."""
        if isinstance(self.loader, OneToNLoader):
            with self.scoring.step(None):
                return self._one_to_n_loss(*batch)
        positives = batch.to(self.device, non_blocking=True)
        with self.scoring.step(positives):
            return self._negative_sampling_loss(positives)

    def _negative_sampling_loss(self, positives: Tensor) -> Tensor:
        start = time.perf_counter()
        scorer = self.scoring.score_candidates
        if self.negative_sides == "both":
            sides = self.sampler.both_sides(positives, self.num_negatives, self.num_head_negatives, scorer=scorer)
        else:
            sides = (self.sampler(positives, self.num_negatives, scorer=scorer),)
        self._sample_seconds = time.perf_counter() - start
        if self.diagnostics is not None and self.diagnostics.due():
            start = time.perf_counter()
            # Measured in float32 whatever the step's precision (bfloat16 would tie close scores), and
            # in eval mode: no dropout, and batch norms neither use nor update batch statistics, so
            # measuring leaves what evaluation sees alone. A GNN's per-step cached embeddings are reused.
            training = self.model.training
            self.model.eval()
            try:
                with torch.autocast(positives.device.type, enabled=False):
                    for negatives in sides:
                        self.diagnostics.observe(
                            positives, negatives, self.scoring.score_all, self.scoring.score_candidates
                        )
            finally:
                self.model.train(training)
            self._diagnostic_seconds = time.perf_counter() - start
        # With both sides, each positive is two queries (its head's and its tail's): the loss is
        # the mean over both, each side a mean over the batch.
        loss = 0.0
        weights = self.positive_weights
        row_weight = {"row_weight": weights(positives)} if weights is not None else {}
        for negatives in sides:
            pos, neg = self.scoring.score_batch(
                positives, negatives.entities, negatives.corrupt_head, shared=negatives.shared
            )
            # Under bfloat16 autocast the scores of matrix products are bfloat16; losses read float32.
            weight = negatives.weight
            weight = weight.float() if weight is not None and weight.is_floating_point() else weight
            loss = loss + self.loss(pos.float(), neg.float(), weight, **row_weight)
        loss = loss / len(sides)
        if self.regularizer_weight > 0:
            loss = loss + self.regularizer_weight * self._n3(positives)
        return loss

    def _one_to_n_loss(self, queries: Tensor, targets: Tensor) -> Tensor:
        queries, targets = queries.to(self.device), targets.to(self.device)
        # The loader asks a head query (?, r, t) as (t, r + R); without inverse relations the
        # model answers it as the head query of r.
        relation, predict_head = self._query_relation(queries[:, 1])
        scores = self.model.score_all(queries[:, 0], relation, predict_head=predict_head)
        # Under bfloat16 autocast the scores are bfloat16; the 1-N losses compute in float32.
        loss = self.loss.forward_all(scores, targets)
        if self.regularizer_weight > 0:
            answers = targets if targets.dim() == 1 else None
            loss = loss + self.regularizer_weight * self._n3_queries(queries, answers)
        return loss

    def _penalised(self) -> tuple[Tensor, Tensor]:
        """What the N3 penalty reads: an embedding table's parameters (not their dropped-out copy,
        whose cube would be :math:`1 / (1 - p)^2` too large on average), else the encoder's output."""
        tables = getattr(self.model.encoder, "tables", None)
        return tables() if tables is not None else self.model.embeddings()

    def _penalty_form(self) -> tuple[int, float]:
        """The penalty's power (3 for ``n3``, 2 for ``l2``) and the relation rows' weight relative
        to the entity rows' (``relation_regularizer_weight / regularizer_weight``; 1 when not set)."""
        power = 2 if getattr(self, "regularizer", "n3") == "l2" else 3
        relation = getattr(self, "relation_regularizer_weight", None)
        weight = getattr(self, "regularizer_weight", 0.0)
        return power, 1.0 if relation is None or weight == 0 else relation / weight

    def _n3(self, triples: Tensor) -> Tensor:
        ent, rel = self._penalised()
        # Read through the model's gather so that sparse tables keep sparse gradients.
        rows = self.model.gather
        head, relation, tail = rows(ent, triples[:, 0]), rows(rel, triples[:, 1]), rows(ent, triples[:, 2])
        return _n3_norm(head, relation, tail, *self._penalty_form())

    def _n3_queries(self, queries: Tensor, answers: Tensor | None) -> Tensor:
        ent, rel = self._penalised()
        tail = ent[answers] if answers is not None else None
        # The penalty is symmetric in head and tail: a head query's entities need no swapping.
        relation = rel[self._query_relation(queries[:, 1])[0]]
        return _n3_norm(ent[queries[:, 0]], relation, tail, *self._penalty_form())

    def _query_relation(self, relation: Tensor) -> tuple[Tensor, Tensor | bool]:
        """A 1-N query's relation id and side for the model: ``r + R`` (the loader's head query of
        ``r``) stays an inverse relation with reciprocal relations and is ``r``, head side, without."""
        if self.model.reciprocal:
            return relation, False
        head = relation >= self.model.num_relations
        return relation - head.long() * self.model.num_relations, head


def _n3_norm(head: Tensor, rel: Tensor, tail: Tensor | None, power: int = 3, relation_scale: float = 1.0) -> Tensor:
    r"""N3-style penalty (after Lacroix et al., 2018): :math:`\frac{1}{B}\sum \|x\|_3^3` over the
    batch's embedding rows, on their real coordinates (the paper uses complex moduli); with
    ``power`` 2 the squared L2 norms of the rows (LibKGE's ``weighted`` ``lp`` penalty: a row
    counts as often as the batch holds it). The relation rows' sum is scaled by ``relation_scale``."""
    entities = [head] + ([tail] if tail is not None else [])
    total = sum(x.abs().pow(power).sum() for x in entities) + relation_scale * rel.abs().pow(power).sum()
    return total / head.size(0)
