"""Curricula: a mixture whose share of hard negatives follows the training progress."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.mixture import Mixture
from gnnns.sampling.negatives import Negatives, Scorer

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
