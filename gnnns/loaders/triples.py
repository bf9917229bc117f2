"""Batches of positive triples for negative-sampling training."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


class TripleLoader:
    """Shuffled mini-batches of triples, ``[B, 3]`` each, drawn with the global torch RNG.

    Indexing a tensor by a permutation avoids the per-item overhead of a
    :class:`torch.utils.data.DataLoader`, and drawing the permutation from the global generator
    makes an epoch reproducible from the RNG state a checkpoint stores.

    Args:
        triples (Tensor): shape ``[N, 3]``.
        batch_size (int): triples per batch.
        shuffle (bool): a new permutation every epoch. (default: True)
        drop_last (bool): drop a final short batch. (default: False)
        reciprocal (bool): add ``(t, r + R, h)`` for every triple. (default: False)
        num_relations (int): :math:`R`, needed with ``reciprocal``.
    """

    def __init__(
        self,
        triples: Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        reciprocal: bool = False,
        num_relations: int | None = None,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if reciprocal:
            if num_relations is None:
                raise ValueError("reciprocal=True needs num_relations")
            inverse = torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], 1)
            triples = torch.cat([triples, inverse])
        self.triples = triples
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        n, b = len(self.triples), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Tensor]:
        n = len(self.triples)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            yield self.triples[order[i * self.batch_size : (i + 1) * self.batch_size]]
