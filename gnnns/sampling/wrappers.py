"""Samplers made of samplers: false-negative filtering, mixtures and curricula."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from gnnns.data import KnowledgeGraph
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer


class SamplerWrapper(NegativeSampler):
    """Common part of the wrappers: they hold other samplers as submodules (so that ``.to()``
    and ``state_dict`` reach them), forward :meth:`set_progress` to them and report their
    epoch statistics under ``"<name>.<stat>"``.

    Args:
        samplers (Mapping[str, NegativeSampler]): the wrapped samplers, by name.
    """

    def __init__(self, samplers: Mapping[str, NegativeSampler]):
        if not samplers:
            raise ValueError(f"{type(self).__name__} needs at least one sampler to wrap, got none")
        for name, sampler in samplers.items():
            if not isinstance(sampler, NegativeSampler):
                raise TypeError(
                    f"{type(self).__name__}: {name!r} is a {type(sampler).__name__}, expected a NegativeSampler"
                )
        first = next(iter(samplers.values()))
        super().__init__(None, max_rounds=0, num_entities=first.num_entities)
        self.samplers = nn.ModuleDict(samplers)

    def corrupt_head(self, positives: Tensor) -> Tensor:
        """The sides of the first wrapped sampler, shape ``[B]``."""
        return next(iter(self.samplers.values())).corrupt_head(positives)

    def set_progress(self, fraction: float) -> None:
        super().set_progress(fraction)
        for sampler in self.samplers.values():
            sampler.set_progress(fraction)

    def epoch_stats(self) -> dict[str, float]:
        stats = super().epoch_stats()
        for name, sampler in self.samplers.items():
            stats.update({f"{name}.{key}": value for key, value in sampler.epoch_stats().items()})
        return stats


class Filtered(SamplerWrapper):
    r"""False-negative filtering: resample what is a known positive.

    A corruption that happens to be a training triple is a *false negative*: the loss would push
    a known fact down. This wrapper draws with the inner sampler, finds the negatives that are
    known training triples and resamples only those positions through the inner sampler's
    :meth:`~NegativeSampler.sample` (same sides; only the rows that hold one are drawn again),
    up to ``max_rounds`` times. Negatives that are still known after that get weight 0:

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


Schedule = str | Callable[[float], float]


class Curriculum(Mixture):
    r"""A curriculum that moves from easy to hard negatives over training.

    The share :math:`s` of the :math:`k` negatives drawn by ``hard`` (the rest by ``easy``,
    split as in :class:`Mixture`) follows the training progress :math:`p \in [0, 1]` that the
    trainer sets through :meth:`set_progress` (epochs done / epochs planned). With
    :math:`x = \mathrm{clip}((p - p_0) / (p_1 - p_0), 0, 1)` for ``begin`` :math:`p_0` and
    ``finish`` :math:`p_1`,

    .. math::
        s(p) = s_0 + (s_1 - s_0) \, f(x), \qquad
        f(x) = \begin{cases}
            x & \text{linear} \\
            \tfrac{1}{2} (1 - \cos \pi x) & \text{cosine} \\
            [x \ge \tfrac{1}{2}] & \text{step (jumps at the midpoint)}
        \end{cases}

    for ``start`` :math:`s_0` and ``end`` :math:`s_1`. When ``begin == finish`` the share
    jumps from :math:`s_0` to :math:`s_1` at that point. A callable ``schedule`` maps the
    progress :math:`p` to the share :math:`s` directly (``start``, ``end``, ``begin`` and
    ``finish`` are then unused) and must return a value in :math:`[0, 1]`.

    The sides are the ``easy`` sampler's throughout training. :meth:`hard_share` gives the
    current share; the statistics record its mean over the epoch (``hard_share``) and the
    realised fractions of easy and hard negatives (``easy_fraction``, ``hard_fraction``), with
    the components' own under ``easy.*`` and ``hard.*``.

    Args:
        easy (NegativeSampler): the sampler for the early, easy negatives (e.g. uniform).
        hard (NegativeSampler): the sampler for the late, hard negatives (e.g. score-based).
        start (float): hard share at the beginning, in :math:`[0, 1]`. (default: :obj:`0.0`)
        end (float): hard share at the end, in :math:`[0, 1]`. (default: :obj:`1.0`)
        schedule (str or callable): ``"linear"``, ``"cosine"``, ``"step"``, or
            ``progress -> share``. (default: :obj:`"linear"`)
        begin (float): progress at which the share starts to move. (default: :obj:`0.0`)
        finish (float): progress at which it reaches ``end``. (default: :obj:`1.0`)
    """

    SCHEDULES = ("linear", "cosine", "step")

    def __init__(
        self,
        easy: NegativeSampler,
        hard: NegativeSampler,
        start: float = 0.0,
        end: float = 1.0,
        schedule: Schedule = "linear",
        begin: float = 0.0,
        finish: float = 1.0,
    ):
        super().__init__({"easy": easy, "hard": hard})
        if not callable(schedule) and schedule not in self.SCHEDULES:
            raise ValueError(
                f"Curriculum: unknown schedule {schedule!r}; expected one of {self.SCHEDULES} or a callable"
            )
        for name, value in (("start", start), ("end", end), ("begin", begin), ("finish", finish)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Curriculum: {name} must lie in [0, 1], got {value}")
        if begin > finish:
            raise ValueError(f"Curriculum: begin ({begin}) must not come after finish ({finish})")
        self.start, self.end = float(start), float(end)
        self.begin, self.finish = float(begin), float(finish)
        self.schedule = schedule

    def extra_repr(self) -> str:
        schedule = getattr(self.schedule, "__name__", repr(self.schedule))
        return f"start={self.start}, end={self.end}, schedule={schedule}, begin={self.begin}, finish={self.finish}"

    def hard_share(self) -> float:
        """The share of hard negatives at the current progress, in :math:`[0, 1]`."""
        if callable(self.schedule):
            share = float(self.schedule(self.progress))
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"Curriculum: schedule returned {share} at progress {self.progress}; expected [0, 1]")
            return share
        if self.finish > self.begin:
            x = min(max((self.progress - self.begin) / (self.finish - self.begin), 0.0), 1.0)
        else:
            x = float(self.progress >= self.begin)
        if self.schedule == "cosine":
            x = 0.5 * (1.0 - math.cos(math.pi * x))
        elif self.schedule == "step":
            x = float(x >= 0.5)
        return self.start + (self.end - self.start) * x

    def component_weights(self) -> list[float]:
        share = self.hard_share()
        return [1.0 - share, share]

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        self.count(hard_share=self.hard_share(), batches=1)
        return super().sample(positives, num_negatives, corrupt_head, scorer)

    def epoch_stats(self) -> dict[str, float]:
        """``hard_share`` (its mean over the epoch's batches), ``easy_fraction`` and
        ``hard_fraction`` (realised shares of the negatives), and the components' statistics as
        ``easy.*`` and ``hard.*``."""
        stats = super().epoch_stats()
        batches = stats.pop("batches", 0.0)
        stats["hard_share"] = stats["hard_share"] / batches if batches else self.hard_share()
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


def _dense_weight(negatives: Negatives) -> Tensor:
    """The weights of ``negatives`` as a ``[B, k]`` tensor (a fresh copy; uniform if absent)."""
    if negatives.weight is None:
        return torch.full(negatives.entities.shape, 1.0 / negatives.entities.size(1), device=negatives.entities.device)
    return negatives.weight.clone()


def _normalise(weight: Tensor) -> Tensor:
    return weight / weight.sum(dim=1, keepdim=True)
