"""Mixtures: blocks of negatives from several samplers, in set proportions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer
from gnnns.sampling.sampler_wrapper import SamplerWrapper, _dense_weight


class Mixture(SamplerWrapper):
    r"""Negatives drawn from several samplers at once, in set proportions.

    The :math:`k` negatives of a row are split among the components in proportion to their
    weights :math:`\pi_i` by largest-remainder rounding (:func:`split_counts`): component
    :math:`i` gets :math:`\lfloor k \pi_i \rfloor` and the negatives left over go to the largest
    remainders :math:`k \pi_i - \lfloor k \pi_i \rfloor` (ties to the earlier component). Each
    :math:`k_i` is within 1 of :math:`k \pi_i`, so the realised share is :math:`k_i / k`. When
    :math:`k` is small a component with a small positive weight may get no negative at all
    (e.g. weights 0.1/0.9 with :math:`k = 4` give 0/4): nothing forces one per component, so
    that a curriculum's share grows smoothly instead of jumping to :math:`1/k`. Components with
    no negative in a batch are not called.

    All components draw for the same sides (those of the first component's
    :meth:`~NegativeSampler.corrupt_head`) and their blocks are concatenated along :math:`k` in
    component order. Weights keep each block's share:

    .. math::
        w_{bj} = \frac{k_i}{k} \, w^{(i)}_{bj'} \quad \text{for the } j'\text{-th negative of block } i

    with :math:`w^{(i)}` the component's weights (uniform :math:`1/k_i` if it returns none), so
    rows sum to 1; when no component returns weights every :math:`w_{bj} = 1/k` and ``weight``
    is :obj:`None`. A batch that one component fills alone is returned exactly as that component
    made it (shared negatives stay shared); otherwise the result is per row (``shared=False``).

    Args:
        samplers (Sequence[NegativeSampler] or Mapping[str, NegativeSampler]): the components;
            a sequence names them ``"0"``, ``"1"``, ... in statistics.
        weights (Sequence[float] or Mapping[str, float], optional): non-negative, not all zero,
            one per component (normalised here). (default: equal weights)
    """

    def __init__(
        self,
        samplers: Sequence[NegativeSampler] | Mapping[str, NegativeSampler],
        weights: Sequence[float] | Mapping[str, float] | None = None,
    ):
        named = dict(samplers) if isinstance(samplers, Mapping) else {str(i): s for i, s in enumerate(samplers)}
        super().__init__(named)
        self.weights = _normalised_weights(list(named), weights)

    def extra_repr(self) -> str:
        return "weights=[" + ", ".join(f"{w:.3g}" for w in self.component_weights()) + "]"

    def component_weights(self) -> list[float]:
        """The components' current weights, summing to 1."""
        return self.weights

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        counts = split_counts(self.component_weights(), num_negatives)
        self.count(
            negatives=num_negatives, **{f"{name}_negatives": n for name, n in zip(self.samplers, counts, strict=True)}
        )
        blocks = []
        for (name, sampler), count in zip(self.samplers.items(), counts, strict=True):
            if count == 0:
                continue
            block = sampler.sample(positives, count, corrupt_head, scorer)
            if block.entities.shape != (positives.size(0), count):
                raise ValueError(
                    f"Mixture: component {name!r} returned entities of shape {list(block.entities.shape)}, "
                    f"expected {[positives.size(0), count]}"
                )
            blocks.append((count, block))
        if len(blocks) == 1:
            return blocks[0][1]
        entities = torch.cat([block.entities for _, block in blocks], dim=1)
        weight = None
        if any(block.weight is not None for _, block in blocks):
            weight = torch.cat([_dense_weight(block) * (count / num_negatives) for count, block in blocks], dim=1)
        return Negatives(entities, corrupt_head, weight, shared=False)

    def epoch_stats(self) -> dict[str, float]:
        """``<name>_fraction`` (the realised share of each component's negatives) and each
        component's statistics as ``<name>.*``."""
        stats = super().epoch_stats()
        negatives = stats.pop("negatives", 0.0)
        for name in self.samplers:
            count = stats.pop(f"{name}_negatives", 0.0)
            stats[f"{name}_fraction"] = count / negatives if negatives else 0.0
        return stats


def split_counts(weights: Sequence[float], total: int) -> list[int]:
    r"""Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Each part is :math:`\lfloor t \pi_i \rfloor` plus one for the parts with the largest
    remainders :math:`t \pi_i - \lfloor t \pi_i \rfloor` until the parts sum to :math:`t`
    (ties go to the earlier part); a zero weight always gets 0.

    Args:
        weights (Sequence[float]): non-negative, not all zero.
        total (int): :math:`t`.

    Returns:
        list[int]: the parts, summing to ``total``.
    """
    norm = sum(weights)
    quotas = [total * w / norm for w in weights]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - quotas[i])  # stable: ties keep order
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _normalised_weights(names: list[str], weights: Sequence[float] | Mapping[str, float] | None) -> list[float]:
    if weights is None:
        return [1.0 / len(names)] * len(names)
    if isinstance(weights, Mapping):
        missing = sorted(set(names) ^ set(weights))
        if missing:
            raise ValueError(f"Mixture: weights must name exactly the samplers {names}; mismatched: {missing}")
        weights = [weights[name] for name in names]
    values = [float(w) for w in weights]
    if len(values) != len(names):
        raise ValueError(f"Mixture: got {len(values)} weights for {len(names)} samplers")
    if any(w < 0 or not math.isfinite(w) for w in values) or sum(values) <= 0:
        raise ValueError(f"Mixture: weights must be finite, non-negative and not all zero, got {values}")
    return [w / sum(values) for w in values]
