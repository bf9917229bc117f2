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
        weight (Tensor, optional): per-negative weights, shape ``[B, k]``, rows summing to 1. A
            zero weight removes a negative from the loss (how shared negatives drop a row's own
            positive).
        shared (bool): every row holds the same ``k`` entities, so a model may score them as one
            ``[B, d] x [d, k]`` product instead of gathering ``[B, k, d]``. (default: False)
    """

    entities: Tensor
    corrupt_head: Tensor
    weight: Tensor | None = None
    shared: bool = False

    def triples(self, positives: Tensor) -> Tensor:
        """The corrupted triples, shape ``[B, k, 3]``."""
        out = positives.unsqueeze(1).expand(-1, self.entities.size(1), -1).clone()
        side = torch.where(self.corrupt_head, 0, 2)
        out.scatter_(2, side.view(-1, 1, 1).expand(-1, self.entities.size(1), 1), self.entities.unsqueeze(2))
        return out


def kept_and_true(positives: Tensor, corrupt_head: Tensor) -> tuple[Tensor, Tensor]:
    """The entity each positive keeps and the one its negatives replace, both shape ``[B]``."""
    kept = torch.where(corrupt_head, positives[:, 2], positives[:, 0])
    true = torch.where(corrupt_head, positives[:, 0], positives[:, 2])
    return kept, true


def require_scorer(scorer: Scorer | None, sampler: object) -> Scorer:
    """``scorer`` itself, or a clear error for a score-based sampler called without one."""
    if scorer is None:
        raise ValueError(
            f"{type(sampler).__name__} ranks candidates by the current model's scores: call it as "
            "sampler(positives, num_negatives, scorer=model.score_candidates) (any callable "
            "scorer(positives [B, 3], entities [B, k], corrupt_head [B]) -> [B, k] will do)"
        )
    return scorer
