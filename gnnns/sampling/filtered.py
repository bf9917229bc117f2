"""False-negative filtering: a wrapper that resamples negatives which are known training triples."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer
from gnnns.sampling.sampler_wrapper import SamplerWrapper, _dense_weight


class Filtered(SamplerWrapper):
    r"""False-negative filtering: resample what is a known positive.

    A corruption that happens to be a training triple is a *false negative*: the loss would push
    a known fact down. This wrapper draws with the inner sampler, finds the negatives that are
    known training triples and resamples only those positions through the inner sampler's
    :meth:`~NegativeSampler.sample` (same sides; only the rows that hold one are drawn again),
    up to ``max_rounds`` times, with the inner sampler in eval mode (a redraw updates no state:
    NSCaching refreshes its caches and the adversarial generator learns once per batch, from the
    first draw). Negatives that are still known after that get weight 0:

    .. math::
        w_{bj} = \frac{w^\text{inner}_{bj} \, [\text{not known}_{bj}]}
        {\sum_{j'} w^\text{inner}_{bj'} \, [\text{not known}_{bj'}]}

    with :math:`w^\text{inner}` the inner weights of the draw each position came from (uniform
    :math:`1/k` if the inner sampler gives none). A row whose weights would all vanish keeps its
    inner weights (counted as ``empty_row_rate``). A shared inner draw stays shared only if no
    position had to be resampled; the rows drawn again by an in-batch sampler see only each
    other's entities.

    Counters: ``false_negatives_found`` (known positives in the first draw),
    ``false_negatives_left`` (still known after resampling, now weighted 0) and their rate per
    negative, ``false_negative_rate``; the inner sampler's under ``"inner."``.

    Args:
        sampler (NegativeSampler): the sampler to filter.
        kg (KnowledgeGraph): the training graph whose triples count as known positives.
        max_rounds (int): resampling rounds. (default: :obj:`10`)
    """

    def __init__(self, sampler: NegativeSampler, kg: KnowledgeGraph, max_rounds: int = 10):
        super().__init__({"inner": sampler})
        self.index = kg.train_index()
        self.max_rounds = int(max_rounds)

    def extra_repr(self) -> str:
        return f"max_rounds={self.max_rounds}"

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        inner = self.samplers["inner"]
        first = inner.sample(positives, num_negatives, corrupt_head, scorer)
        # A copy: rows are patched in place, and a shared draw is an expanded view.
        entities, weight = first.entities.clone(), _dense_weight(first)
        weighted, resampled = first.weight is not None, False
        known = self.index.contains_corrupted(positives, entities, corrupt_head)
        self.count(false_negatives_found=known.sum(), negatives=known.numel(), rows=known.size(0))
        # Redraws only draw: in eval mode a stateful inner sampler neither refreshes its caches
        # (NSCaching) nor takes generator steps (adversarial) again for the rows drawn twice.
        training = inner.training
        inner.eval()
        try:
            for _ in range(self.max_rounds):
                rows = known.any(dim=1).nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                fresh = inner.sample(positives[rows], num_negatives, corrupt_head[rows], scorer)
                replace = known[rows]
                entities[rows] = torch.where(replace, fresh.entities, entities[rows])
                weight[rows] = torch.where(replace, _dense_weight(fresh), weight[rows])
                known[rows] = self.index.contains_corrupted(positives[rows], entities[rows], corrupt_head[rows])
                weighted, resampled = weighted or fresh.weight is not None, True
        finally:
            inner.train(training)
        self.count(false_negatives_left=known.sum())
        if not bool(known.any()):
            out_weight = _normalise(weight) if weighted else None
            return Negatives(entities, corrupt_head, out_weight, shared=first.shared and not resampled)
        kept = weight * (~known)
        total = kept.sum(dim=1, keepdim=True)
        self.count(empty_rows=(total == 0).sum())
        out_weight = torch.where(total > 0, kept / total.clamp(min=torch.finfo(kept.dtype).tiny), _normalise(weight))
        return Negatives(entities, corrupt_head, out_weight, shared=False)

    def epoch_stats(self) -> dict[str, float]:
        """``false_negatives_found``, ``false_negatives_left``, ``false_negative_rate`` (found
        per negative), ``empty_row_rate``, and the inner sampler's statistics as ``inner.*``."""
        stats = super().epoch_stats()
        negatives = max(stats.pop("negatives", 0.0), 1.0)
        rows = max(stats.pop("rows", 0.0), 1.0)
        stats.setdefault("false_negatives_found", 0.0)
        stats.setdefault("false_negatives_left", 0.0)
        stats["false_negative_rate"] = stats["false_negatives_found"] / negatives
        stats["empty_row_rate"] = stats.pop("empty_rows", 0.0) / rows
        return stats


def _normalise(weight: Tensor) -> Tensor:
    return weight / weight.sum(dim=1, keepdim=True)
