"""The running sums of the epoch in progress, which a mid-epoch checkpoint carries to resume it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class EpochSums:
    r"""The running sums of the epoch in progress: what a mid-epoch checkpoint carries to resume it.

    Args:
        loss (Tensor): :math:`\sum` of loss times rows over the batches done (float64, 0-d).
        rows (int): triples (or queries) done.
        steps (int): batches done.
        seconds (float): training seconds of the epoch spent before the current session.
        epoch_rng (Tensor, optional): global RNG state at the epoch's start, from which a loader
            that draws its order from the global generator (any iterable other than
            :class:`~gnnns.loaders.triples.ShardedBatches`) regenerates it.
    """

    loss: Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    rows: int = 0
    steps: int = 0
    seconds: float = 0.0
    epoch_rng: Tensor | None = None

    def state_dict(self) -> dict:
        return {
            "loss": self.loss.clone(),
            "rows": self.rows,
            "steps": self.steps,
            "seconds": self.seconds,
            "epoch_rng": self.epoch_rng,
        }

    @classmethod
    def from_state(cls, state: dict) -> EpochSums:
        return cls(
            state["loss"].clone().double(),
            int(state["rows"]),
            int(state["steps"]),
            float(state["seconds"]),
            state.get("epoch_rng"),
        )
