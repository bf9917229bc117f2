"""In-batch negatives: the entities of the batch itself, optionally shared by every row."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true


class InBatchSampler(NegativeSampler):
    r"""The batch's own entities as negatives, scored with one matrix product.

    In-batch negatives reuse what a batch already holds instead of drawing from all :math:`E`
    entities: the "in-batch negatives" of `"Dense Passage Retrieval for Open-Domain Question
    Answering" <https://arxiv.org/abs/2004.04906>`_ (Karpukhin et al., EMNLP 2020), applied to
    knowledge-graph completion by `"SimKGC: Simple Contrastive Knowledge Graph Completion with
    Pre-trained Language Models" <https://arxiv.org/abs/2203.02167>`_ (Wang et al., ACL 2022).
    Sharing one set of negatives across a batch is the joint negative sampling of `"DGL-KE:
    Training Knowledge Graph Embeddings at Scale" <https://arxiv.org/abs/2004.08532>`_ (Zheng et
    al., SIGIR 2020): the model then scores the batch as one ``[B, q] x [q, k]`` product
    (:meth:`~gnnns.models.KGCModel.score_batch` with ``shared=True``) instead of gathering
    ``[B, k, d]`` candidate embeddings.

    Let :math:`P` be the distinct heads and tails of the batch. With ``shared=True`` one set
    :math:`C \subseteq P` of :math:`k` entities is drawn for the whole batch (without replacement
    when :math:`|P| \ge k`, else with replacement) and every row gets the same ``entities``. A
    row's own true entity :math:`e^*_b` would turn its positive into its own negative, so it is
    masked; with ``filtered=True`` so is every candidate :math:`c` that forms a known training
    triple with the row's kept entity and relation. Masked negatives get weight 0 and the row is
    renormalised:

    .. math::
        w_{bj} = \frac{m_{bj}}{\sum_{j'} m_{bj'}}, \qquad
        m_{bj} = [c_j \ne e^*_b] \cdot [(\text{kept}_b, r_b, c_j) \notin \mathcal{T}_\text{train}]

    A row with no unmasked candidate keeps uniform weights (counted as ``empty_row_rate``); when
    nothing at all is masked, ``weight`` is :obj:`None`.

    With ``shared=False`` each row draws its own :math:`k` entities uniformly, with replacement,
    from :math:`P \setminus \{e^*_b\}` (exactly, by skipping :math:`e^*_b`'s position in the
    sorted :math:`P`, so no redraw is needed); ``filtered=True`` then redraws known positives as
    every sampler does. A batch whose only entity is :math:`e^*_b` cannot avoid it; such rows
    are counted as ``fallback_rate``.

    Args:
        kg (KnowledgeGraph): the training graph.
        shared (bool): one set of negatives for the whole batch. (default: :obj:`True`)
        filtered (bool): mask (shared) or redraw (per row) negatives that are known training
            triples. (default: :obj:`False`)
        max_rounds (int): redraw rounds for ``filtered`` with ``shared=False``. (default: :obj:`10`)
    """

    def __init__(self, kg: KnowledgeGraph, shared: bool = True, filtered: bool = False, max_rounds: int = 10):
        super().__init__(kg, filtered=filtered, max_rounds=max_rounds)
        self.shared = bool(shared)

    def extra_repr(self) -> str:
        return f"shared={self.shared}, filtered={self.filtered}"

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        if not self.shared:
            ends = positives[:, [0, 2]]
            self.count(rows=positives.size(0), fallbacks=positives.size(0) * bool((ends == ends[0, 0]).all()))
            return super().sample(positives, num_negatives, corrupt_head, scorer)
        pool = batch_entities(positives)
        if pool.numel() >= num_negatives:
            pick = torch.randperm(pool.numel(), device=pool.device)[:num_negatives]
        else:
            pick = torch.randint(pool.numel(), (num_negatives,), device=pool.device)
        entities = pool[pick].unsqueeze(0).expand(positives.size(0), -1)
        _, true = kept_and_true(positives, corrupt_head)
        own = entities == true.unsqueeze(1)
        masked = own
        if self.filtered:
            known = self.index.contains_corrupted(positives, entities, corrupt_head) & ~own
            masked = own | known
            self.count(known_positives=known.sum())
        self.count(negatives=masked.numel(), rows=masked.size(0), own_true=own.sum())
        weight = None
        if bool(masked.any()):
            weight, empty = masked_uniform_weights(masked)
            self.count(empty_rows=empty.sum())
        return Negatives(entities, corrupt_head, weight, shared=True)

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        pool = batch_entities(positives)
        _, true = kept_and_true(positives, corrupt_head)
        if pool.numel() == 1:
            # Nothing but the row's own true entity to choose from (counted in sample).
            return pool.expand(positives.size(0), num_negatives)
        # Uniform over the other |P| - 1 entities: draw a position among them and step over the
        # true entity's own position in the sorted pool.
        own = torch.searchsorted(pool, true).unsqueeze(1)
        pick = torch.randint(pool.numel() - 1, (positives.size(0), num_negatives), device=pool.device)
        return pool[pick + (pick >= own).long()]

    def epoch_stats(self) -> dict[str, float]:
        """Rates over the epoch: ``own_true_rate`` and ``known_positive_rate`` (negatives masked
        in shared mode), ``empty_row_rate`` (rows left without a valid negative),
        ``fallback_rate`` (per-row rows that could not avoid their true entity) and, with
        per-row filtering, ``false_negatives_left``."""
        raw = super().epoch_stats()
        negatives = max(raw.pop("negatives", 0.0), 1.0)
        rows = max(raw.pop("rows", 0.0), 1.0)
        stats = {}
        if self.shared:
            stats["own_true_rate"] = raw.pop("own_true", 0.0) / negatives
            stats["empty_row_rate"] = raw.pop("empty_rows", 0.0) / rows
            if self.filtered:
                stats["known_positive_rate"] = raw.pop("known_positives", 0.0) / negatives
        else:
            stats["fallback_rate"] = raw.pop("fallbacks", 0.0) / rows
        stats.update(raw)
        return stats


def batch_entities(positives: Tensor) -> Tensor:
    """The distinct heads and tails of a batch, sorted, shape ``[P]``."""
    return torch.unique(torch.cat((positives[:, 0], positives[:, 2])))


def masked_uniform_weights(masked: Tensor) -> tuple[Tensor, Tensor]:
    """Uniform weights over the unmasked negatives of each row.

    Args:
        masked (BoolTensor): negatives that must not count, shape ``[B, k]``.

    Returns:
        ``(weight [B, k], empty [B])``: rows summing to 1 with zeros where masked; a row with
        nothing unmasked (``empty``) keeps uniform weights :math:`1/k`.
    """
    valid = (~masked).float()
    kept = valid.sum(dim=1, keepdim=True)
    empty = kept.squeeze(1) == 0
    weight = torch.where(kept > 0, valid / kept.clamp(min=1), torch.full_like(valid, 1.0 / masked.size(1)))
    return weight, empty
