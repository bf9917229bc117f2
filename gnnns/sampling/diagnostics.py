"""How good are the negatives? Hardness, false-negative rate, diversity and cost, per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.sampling.negatives import Negatives, kept_and_true

AllScorer = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``score_all(kept [Q], relation [Q], predict_head [Q]) -> scores [Q, E]`` of every entity."""


def hardness(all_scores: Tensor, entities: Tensor) -> Tensor:
    r"""Percentile of each negative's score among the scores of all entities for its query.

    For a query with entity scores :math:`s_1..s_E` and a negative :math:`e`,

    .. math::
        \operatorname{hardness}(e) = \frac{|\{i : s_i < s_e\}| + \tfrac12 (|\{i : s_i = s_e\}| - 1)}{E - 1}

    so the lowest-scoring entity has hardness 0, the highest 1 (ties count half), and a
    negative drawn uniformly at random has expected hardness :math:`1/2`.

    Args:
        all_scores (Tensor): scores of every entity for each query, shape ``[Q, E]``.
        entities (Tensor): negatives of each query, shape ``[Q, k]``.

    Returns:
        Tensor of shape ``[Q, k]`` with values in ``[0, 1]``.
    """
    num_entities = all_scores.size(1)
    if num_entities < 2:
        return torch.full(entities.shape, 0.5, device=entities.device)
    ordered = sorted_rows(all_scores)
    neg = all_scores.gather(1, entities)
    below = torch.searchsorted(ordered, neg, side="left")
    not_above = torch.searchsorted(ordered, neg, side="right")
    return (below + (not_above - below - 1) / 2).double().div(num_entities - 1).float()


def sorted_rows(x: Tensor) -> Tensor:
    """Each row of ``x`` in ascending order (NaN last), the values of ``x.sort(dim=1)``.

    On CPU, floating rows go through NumPy's sort, which uses the CPU's vector sorting where it
    has one and is many times faster than ``torch.sort`` there: it is most of the cost of a step's
    :func:`hardness` measurement (``benchmarks/diagnostics_cost.py``).
    """
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dim() == 2:
        return torch.from_numpy(np.sort(x.detach().numpy(), axis=1))
    return x.sort(dim=1).values


def sampled_hardness(negative_scores: Tensor, sample_scores: Tensor, negatives: Tensor, sample: Tensor) -> Tensor:
    r"""An unbiased estimate of :func:`hardness` from a uniform sample of entities.

    With :math:`S` entities drawn uniformly from all :math:`E` (with replacement) and scored for
    the query, a negative :math:`e` gets

    .. math::
        \widehat{\operatorname{hardness}}(e) = \frac{|\{j : s_j < s_e\}| + \tfrac12 |\{j : s_j = s_e,
        i_j \neq e\}|}{|\{j : i_j \neq e\}|}

    over the draws :math:`j` with entity :math:`i_j`: each draw other than :math:`e` itself is an
    entity drawn uniformly from the other :math:`E - 1`, so the expectation is :func:`hardness`.
    With the sample :math:`0..E-1` it is :func:`hardness` exactly.

    Args:
        negative_scores (Tensor): scores of the negatives, shape ``[Q, k]``.
        sample_scores (Tensor): scores of the sampled entities for each query, shape ``[Q, S]``.
        negatives (Tensor): the negatives' entity ids, shape ``[Q, k]``.
        sample (Tensor): the sampled entity ids, shape ``[S]`` (the same for every query).

    Returns:
        Tensor of shape ``[Q, k]`` with values in ``[0, 1]`` (0.5 where every draw is ``e``).
    """
    ordered = sorted_rows(sample_scores)
    below = torch.searchsorted(ordered, negative_scores.contiguous(), side="left").double()
    ties = torch.searchsorted(ordered, negative_scores.contiguous(), side="right").double() - below
    # Draws of the negative itself are taken out by id, wherever their scores fell: scored in
    # another column, the same entity may differ from the negative's own score by rounding.
    order = sample.argsort()
    ids = sample[order]
    flat = negatives.reshape(-1).contiguous()
    first = torch.searchsorted(ids, flat, side="left")
    itself = torch.searchsorted(ids, flat, side="right") - first
    row = torch.arange(negatives.size(0), device=negatives.device).repeat_interleave(negatives.size(1))
    own = negative_scores.reshape(-1)
    below_self = torch.zeros_like(own, dtype=torch.float64)
    ties_self = torch.zeros_like(below_self)
    for m in range(int(itself.max()) if itself.numel() else 0):
        drawn = itself > m
        score = sample_scores[row, order[(first + m).clamp_max(sample.numel() - 1)]]
        below_self += (drawn & (score < own)).double()
        ties_self += (drawn & (score == own)).double()
    shape = negatives.shape
    below, ties = below - below_self.view(shape), ties - ties_self.view(shape)
    others = sample.numel() - itself.view(shape).double()
    estimate = (below + ties / 2) / others.clamp_min(1)
    return torch.where(others > 0, estimate, torch.full_like(estimate, 0.5)).float()


def expected_distinct(draws: float, num_entities: int) -> float:
    r"""Expected number of distinct entities among ``draws`` drawn uniformly with replacement
    from ``num_entities``:

    .. math::
        \mathbb{E}[\text{distinct}] = E \left(1 - \left(1 - \tfrac{1}{E}\right)^{n}\right)

    (each entity is missed by all :math:`n` draws with probability :math:`(1 - 1/E)^n`). It is
    :math:`n` for :math:`n \ll E` and tends to :math:`E` once :math:`n \gg E`, so a batch's
    distinct count divided by it reads 1 for uniform draws at any batch size, where the
    distinct share (distinct / drawn) falls to :math:`E / n` for every sampler once a batch
    draws more negatives than there are entities.
    """
    if draws <= 0:
        return 0.0
    if num_entities <= 1:
        return float(num_entities)
    return num_entities * -math.expm1(draws * math.log1p(-1.0 / num_entities))


def entropy_of(entities: Tensor) -> float:
    r"""Shannon entropy (nats) of the empirical distribution of the given ids,
    :math:`-\sum_e p_e \log p_e`."""
    _, counts = torch.unique(entities, return_counts=True)
    p = counts.double() / counts.sum()
    return float(-(p * p.log()).sum())


class NegativeDiagnostics:
    r"""Per-epoch measurements of a sampler's negatives, for any sampler.

    Every ``every``-th batch (and always the first of an epoch) it measures, on the negatives
    the sampler returned (negatives of weight 0 do not count):

    * ``hardness``: mean percentile of a negative's score among all entities for its query
      (:func:`hardness`; 0.5 for uniform negatives, near 1 for the hardest), on up to
      ``hardness_queries`` positives of the batch, scored by ``score_all``. Where scoring every
      entity is not offered (neighbour-sampled GNN training, whose ``score_all`` is None), the
      percentile is estimated among ``hardness_sample`` uniformly drawn entities scored with
      the negatives by ``score_candidates`` (:func:`sampled_hardness`), and the summary
      says so with ``hardness_sample``;
    * ``false_negative_rate``: share of negatives that are true triples of the valid or test
      split. Only this evaluator looks at held-out triples; nothing of it reaches the sampler.
      ``known_positive_rate`` is the share that are training triples (what filtering removes);
    * ``distinct_share``: distinct negative entities / negatives in the batch;
      ``distinct_vs_uniform``: distinct negative entities / the number uniform draws of the same
      count would give in expectation (:func:`expected_distinct`): about 1 for uniform
      negatives at any batch size, below 1 for samplers that concentrate on fewer entities
      (hard or cached negatives), above 1 for ones that spread wider; and ``entropy``
      (nats) of the batch's negative entities with ``normalized_entropy`` = entropy /
      :math:`\log \min(n, E)`, 1 when every negative is a different entity;
    * and on every batch the cost: ``sample_ms`` per batch and ``sample_share`` of step time
      (fed in by the trainer through :meth:`add_time`).

    Args:
        kg (KnowledgeGraph): the graph with its valid and test splits.
        every (int): measure every this many batches. (default: 10)
        hardness_queries (int): positives per measured batch whose queries are scored against
            all entities. (default: 64)
        hardness_sample (int): entities drawn per measured batch for the estimated hardness.
            (default: 1024)

    Measuring never changes training: the scoring runs with the global random state saved and
    restored around it (a GNN's edge dropout and the neighbour sampler draw from it).
    """

    def __init__(self, kg: KnowledgeGraph, every: int = 10, hardness_queries: int = 64, hardness_sample: int = 1024):
        if every < 1:
            raise ValueError(f"NegativeDiagnostics: every must be >= 1, got {every}")
        self.num_entities = kg.num_entities
        self.every = int(every)
        self.hardness_queries = int(hardness_queries)
        self.hardness_sample = int(hardness_sample)
        self._sampled = False
        self._generator = torch.Generator().manual_seed(0)
        self.train_index = kg.train_index()
        self.full_index = kg.index()
        self.reset()

    def reset(self) -> None:
        self._sampled = False
        self.batches = 0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def due(self) -> bool:
        """Whether the current batch is one to measure."""
        return self.batches % self.every == 0

    def _add(self, key: str, total: float, count: float) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + total
        self.counts[key] = self.counts.get(key, 0.0) + count

    def add_time(self, sample_seconds: float, step_seconds: float) -> None:
        """Record one batch's sampling time and whole step time; advances the batch counter."""
        self._add("sample_ms", 1000.0 * sample_seconds, 1)
        self._add("step_ms", 1000.0 * step_seconds, 1)
        self.batches += 1

    @torch.no_grad()
    def observe(
        self,
        positives: Tensor,
        negatives: Negatives,
        score_all: AllScorer | None = None,
        score_candidates: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        """Measure one batch's negatives (call it when :meth:`due`).

        ``score_candidates(positives [Q, 3], entities [Q, m], corrupt_head [Q]) -> [Q, m]`` is
        used for the estimated hardness when ``score_all`` is None.
        """
        entities = negatives.entities
        valid = torch.ones_like(entities, dtype=torch.bool)
        if negatives.weight is not None:
            valid = negatives.weight > 0
        n = float(valid.sum())
        if n == 0:
            return
        in_train = self.train_index.contains_corrupted(positives, entities, negatives.corrupt_head)
        in_any = self.full_index.contains_corrupted(positives, entities, negatives.corrupt_head)
        self._add("false_negative_rate", float((in_any & ~in_train & valid).sum()), n)
        self._add("known_positive_rate", float((in_train & valid).sum()), n)
        drawn = entities[valid]
        distinct = float(torch.unique(drawn).numel())
        self._add("distinct_share", distinct, n)
        self._add("distinct_vs_uniform", distinct, expected_distinct(n, self.num_entities))
        entropy = entropy_of(drawn)
        self._add("entropy", entropy, 1)
        self._add("normalized_entropy", entropy / max(math.log(min(n, self.num_entities)), 1e-12), 1)
        if self.hardness_queries <= 0 or (score_all is None and (score_candidates is None or self.hardness_sample < 1)):
            return
        device = positives.device
        # The CPU's random state is always saved; an accelerator's is saved too where scoring runs on one.
        accelerator = {} if device.type == "cpu" else {"devices": [device.index or 0], "device_type": device.type}
        with torch.random.fork_rng(**({"devices": []} | accelerator)):
            if score_all is not None:
                self._observe_hardness(positives, negatives, valid, score_all)
            else:
                self._observe_sampled_hardness(positives, negatives, valid, score_candidates)

    def _observe_hardness(self, positives: Tensor, negatives: Negatives, valid: Tensor, score_all: AllScorer) -> None:
        q = min(self.hardness_queries, positives.size(0))
        kept, _ = kept_and_true(positives[:q], negatives.corrupt_head[:q])
        # Bound the [Q, E] score matrix to ~16M entries at a time, whatever the graph size.
        chunk = max(1, (1 << 24) // max(self.num_entities, 1))
        for start in range(0, q, chunk):
            rows = slice(start, min(start + chunk, q))
            scores = score_all(kept[rows], positives[rows, 1], negatives.corrupt_head[rows])
            values = hardness(scores.float(), negatives.entities[rows])
            mask = valid[rows]
            self._add("hardness", float(values[mask].double().sum()), float(mask.sum()))

    def _observe_sampled_hardness(
        self, positives: Tensor, negatives: Negatives, valid: Tensor, score_candidates: Callable
    ) -> None:
        q = min(self.hardness_queries, positives.size(0))
        sample = torch.randint(self.num_entities, (self.hardness_sample,), generator=self._generator)
        sample = sample.to(positives.device)
        entities = negatives.entities[:q]
        candidates = torch.cat([entities, sample.expand(q, -1)], dim=1)
        scores = score_candidates(positives[:q], candidates, negatives.corrupt_head[:q]).float()
        k = entities.size(1)
        values = sampled_hardness(scores[:, :k], scores[:, k:], entities, sample)
        mask = valid[:q]
        self._add("hardness", float(values[mask].double().sum()), float(mask.sum()))
        self._sampled = True

    def summary(self) -> dict[str, float]:
        """Means over the epoch, then start afresh."""
        out = {key: self.sums[key] / self.counts[key] for key in self.sums if self.counts[key] > 0}
        if "sample_ms" in out and out.get("step_ms", 0) > 0:
            out["sample_share"] = out["sample_ms"] / out["step_ms"]
        out["batches"] = self.batches
        if self._sampled:
            out["hardness_sample"] = self.hardness_sample
        self.reset()
        return out
