"""The contract between samplers and everything that consumes negatives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Scorer = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``scorer(positives [B, 3], entities [B, k], corrupt_head [B]) -> scores [B, k]``."""


@dataclass
class Negatives:
    """Negatives for a batch of positives: one side of each positive replaced ``k`` times.

    Attributes:
        entities (LongTensor): replacement entity ids, shape ``[B, k]``.
        corrupt_head (BoolTensor): shape ``[B]``; True replaces the head, False the tail.
        weight (Tensor, optional): per-negative weights, shape ``[B, k]``, rows summing to 1.
    """

    entities: Tensor
    corrupt_head: Tensor
    weight: Tensor | None = None

    def triples(self, positives: Tensor) -> Tensor:
        """The corrupted triples, shape ``[B, k, 3]``."""
        out = positives.unsqueeze(1).expand(-1, self.entities.size(1), -1).clone()
        side = torch.where(self.corrupt_head, 0, 2)
        out.scatter_(2, side.view(-1, 1, 1).expand(-1, self.entities.size(1), 1), self.entities.unsqueeze(2))
        return out
