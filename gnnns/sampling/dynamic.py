"""Dynamic hard negatives: the current model ranks a few uniform candidates and the best are kept."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true, require_scorer

MODES = ("top", "softmax", "nmiss")


class DynamicSampler(NegativeSampler):
    r"""Draw :math:`m` uniform candidates, score them with the current model, keep :math:`k`.

    After `"Optimizing Top-N Collaborative Filtering via Dynamic Negative Item Sampling"
    <https://doi.org/10.1145/2484028.2484126>`_ (Zhang et al., SIGIR 2013), which keeps the
    highest-ranked of a few random unobserved items, and the dynamic sampler of skip-gram models in
    `"Improving Negative Sampling for Word Representation using Self-embedded Features"
    <https://arxiv.org/abs/1710.09805>`_ (Chen et al., WSDM 2018), which argues that negatives
    with larger scores carry larger gradients. For each positive, candidates
    :math:`c_1, \dots, c_m \sim \mathcal{U}\{0, \dots, E-1\}` replace the side given by
    ``corrupt_head`` and are scored :math:`s_j = f(c_j)` by ``scorer`` (no gradient). Then:

    * ``"top"``: the :math:`k` largest :math:`s_j`;
    * ``"softmax"``: :math:`k` candidates without replacement with
      :math:`p_j \propto \exp(s_j / \tau)`, drawn as the top :math:`k` of
      :math:`s_j / \tau + g_j`, :math:`g_j \sim \mathrm{Gumbel}(0, 1)` (Gumbel-top-k);
    * ``"nmiss"``: candidates the model ranks above the positive itself,
      :math:`s_j > f(h, r, t)`, come first, in random order among themselves, then the others by
      descending score; the first :math:`k` are kept. These are the negatives the model currently
      gets wrong. The positive's score costs one more ``scorer`` call with ``entities [B, 1]``.
      :attr:`epoch_stats` reports ``hard_share``, the share of kept negatives that outrank their
      positive.

    The ratio :math:`m / k` trades hardness for cost: each call scores :math:`B \times m` triples
    without gradient on top of the training step, and a larger pool holds harder candidates.
    With the default :math:`m = 2k`, a ComplEx step (:math:`d = 64`, batch 1024, :math:`k = 32`)
    took 1.6 to 2.2 times as long as with uniform negatives on a busy CPU, nearly all of it
    spent gathering the candidates' embeddings inside ``scorer``.

    A candidate equal to the true entity (and, with ``filtered=True``, one that makes a known
    training triple) gets score :math:`-\infty` before selection, so it is never kept while
    enough valid candidates remain; in the rare row where fewer than :math:`k` are valid, the
    missing negatives are uniform draws other than the true entity (counted as
    ``fallback_rate``; with ``filtered`` also redrawn if known).

    Args:
        kg (KnowledgeGraph): the training graph.
        num_candidates (int, optional): :math:`m`, at least :math:`k`; ``None`` uses
            :math:`2k` at call time. (default: None)
        mode (str): ``"top"``, ``"softmax"`` or ``"nmiss"``. (default: ``"top"``)
        temperature (float): :math:`\tau > 0` of ``"softmax"``. (default: 1.0)
        filtered (bool): never keep candidates that make known training triples. (default: False)
        max_rounds (int): redraw rounds for fallback draws with ``filtered``. (default: 10)
    """

    def __init__(
        self,
        kg: KnowledgeGraph,
        num_candidates: int | None = None,
        mode: str = "top",
        temperature: float = 1.0,
        filtered: bool = False,
        max_rounds: int = 10,
    ):
        super().__init__(kg, filtered=filtered, max_rounds=max_rounds)
        if mode not in MODES:
            raise ValueError(f"DynamicSampler: unknown mode {mode!r}; expected one of {MODES}")
        if num_candidates is not None and int(num_candidates) < 1:
            raise ValueError(f"DynamicSampler: num_candidates must be at least 1 or None, got {num_candidates}")
        if not temperature > 0:
            raise ValueError(f"DynamicSampler: temperature must be positive, got {temperature}")
        self.num_candidates = int(num_candidates) if num_candidates is not None else None
        self.mode = mode
        self.temperature = float(temperature)

    def extra_repr(self) -> str:
        return f"num_candidates={self.num_candidates}, mode={self.mode!r}, temperature={self.temperature}"

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        scorer = require_scorer(scorer, self)
        pool = self.num_candidates if self.num_candidates is not None else 2 * num_negatives
        if pool < num_negatives:
            raise ValueError(
                f"DynamicSampler: num_candidates={pool} is fewer than the {num_negatives} negatives asked for"
            )
        _, true = kept_and_true(positives, corrupt_head)
        candidates = torch.randint(self.num_entities, (positives.size(0), pool), device=positives.device)
        with torch.no_grad():
            scores = scorer(positives, candidates, corrupt_head).float()
        invalid = candidates == true.unsqueeze(1)
        if self.filtered:
            invalid |= self.index.contains_corrupted(positives, candidates, corrupt_head)
        scores = scores.masked_fill(invalid, float("-inf"))
        if self.mode == "nmiss":
            with torch.no_grad():
                own = scorer(positives, true.unsqueeze(1), corrupt_head).float()
            above = scores > own
            order = above_first(scores, above)[:, :num_negatives]
            self.count(hard=above.gather(1, order).sum())
        else:
            key = scores if self.mode == "top" else scores / self.temperature + gumbel_like(scores)
            order = key.topk(num_negatives, dim=1).indices
        entities = candidates.gather(1, order)
        entities = self.replace_invalid(positives, entities, invalid.gather(1, order), corrupt_head)
        self.count(picked=entities.numel())
        return Negatives(entities, corrupt_head)

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        """Uniform entities other than the true one, shape ``[B, k]`` (fallback and redraws)."""
        _, true = kept_and_true(positives, corrupt_head)
        return uniform_other_than(true, num_negatives, self.num_entities)

    def replace_invalid(self, positives: Tensor, entities: Tensor, invalid: Tensor, corrupt_head: Tensor) -> Tensor:
        """Swap kept candidates that were masked (too few valid ones) for fallback draws."""
        entities = torch.where(invalid, self.draw(positives, entities.size(1), corrupt_head), entities)
        self.count(fallback=invalid.sum())
        if self.filtered and bool(invalid.any()):
            entities = self.redraw_known(positives, entities, corrupt_head)
        return entities

    def epoch_stats(self) -> dict[str, float]:
        """``fallback_rate``, ``hard_share`` (nmiss) and ``false_negatives_left``, then reset."""
        stats = super().epoch_stats()
        picked = max(stats.pop("picked", 0.0), 1.0)
        out = {"fallback_rate": stats.pop("fallback", 0.0) / picked}
        if "hard" in stats:
            out["hard_share"] = stats.pop("hard") / picked
        out.update(stats)
        return out


def above_first(scores: Tensor, above: Tensor) -> Tensor:
    """Column order of each row: ``above`` entries first in random order, then by descending score.

    Args:
        scores (Tensor): shape ``[B, m]``.
        above (BoolTensor): shape ``[B, m]``.

    Returns:
        LongTensor ``[B, m]``, a permutation of the columns per row.
    """
    # Two stable sorts make a lexicographic order: the second (by group) keeps the first's
    # within-group order, which is random for the ``above`` group and by score for the rest.
    within = torch.where(above, torch.rand_like(scores), scores)
    order = within.argsort(dim=1, descending=True, stable=True)
    group = above.gather(1, order).to(torch.uint8)
    return order.gather(1, group.argsort(dim=1, descending=True, stable=True))


def gumbel_like(x: Tensor) -> Tensor:
    r"""Standard Gumbel noise of the shape of ``x``: :math:`-\log(\mathrm{Exp}(1))`."""
    return -torch.empty_like(x).exponential_().log()


def uniform_other_than(true: Tensor, num: int, num_entities: int) -> Tensor:
    """Entities uniform over all but ``true``, shape ``[B] -> [B, num]``.

    Draws from :math:`E - 1` ids and shifts those at or above the true entity up by one, so no
    draw is wasted.
    """
    if num_entities < 2:
        raise ValueError(f"need at least 2 entities to draw one other than the true entity, got {num_entities}")
    draw = torch.randint(num_entities - 1, (true.numel(), num), device=true.device)
    return draw + (draw >= true.unsqueeze(1)).long()
