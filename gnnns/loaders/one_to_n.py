"""Batches of ``(entity, relation)`` queries for 1-N scoring against all entities."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from gnnns.data import TripleIndex


def reciprocal_queries(triples: Tensor, num_relations: int) -> tuple[Tensor, Tensor]:
    """Every triple as a tail query and, through its inverse relation, as a head query.

    Args:
        triples (Tensor): shape ``[N, 3]``.
        num_relations (int): :math:`R`.

    Returns:
        ``(queries [2N, 2], answers [2N])``: query ``(e, r')`` asks ``(e, r', ?)`` with
        ``r' = r`` for ``(h, r, ?)`` and ``r' = r + R`` for ``(?, r, t)``.
    """
    h, r, t = triples.unbind(1)
    queries = torch.cat([torch.stack([h, r], 1), torch.stack([t, r + num_relations], 1)])
    return queries, torch.cat([t, h])


class OneToNLoader:
    r"""Query batches for 1-N training with reciprocal relations (Lacroix et al., 2018).

    ``mode="1vsall"`` yields every (query, answer) pair once per epoch as
    ``(queries [B, 2], answers [B])``: the loss is a softmax over all entities with one target.
    ``mode="kvsall"`` (Dettmers et al., 2018) yields each distinct query once as
    ``(queries [B, 2], targets [B, E])`` with every known training answer marked.

    Args:
        triples (Tensor): training triples, shape ``[N, 3]``.
        num_entities (int): :math:`E`.
        num_relations (int): :math:`R` (inverse relations are ``R..2R-1``).
        batch_size (int): queries per batch.
        mode (str): ``"1vsall"`` or ``"kvsall"``. (default: ``"1vsall"``)
        shuffle (bool): a new order every epoch. (default: True)
    """

    def __init__(
        self,
        triples: Tensor,
        num_entities: int,
        num_relations: int,
        batch_size: int,
        mode: str = "1vsall",
        shuffle: bool = True,
    ):
        if mode not in ("1vsall", "kvsall"):
            raise ValueError(f"mode must be '1vsall' or 'kvsall', got {mode!r}")
        self.mode = mode
        self.num_entities = num_entities
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        queries, answers = reciprocal_queries(triples, num_relations)
        if mode == "kvsall":
            self.index = TripleIndex(torch.cat([queries, answers.unsqueeze(1)], 1), num_entities, 2 * num_relations)
            queries = torch.unique(queries, dim=0)
        self.queries, self.answers = queries, answers

    def __len__(self) -> int:
        return -(-len(self.queries) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.queries)
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            queries = self.queries[idx]
            if self.mode == "1vsall":
                yield queries, self.answers[idx]
            else:
                yield queries, self._targets(queries)

    def _targets(self, queries: Tensor) -> Tensor:
        rows, cols = self.index.known(queries[:, 0], queries[:, 1], predict_head=False)
        targets = torch.zeros(len(queries), self.num_entities)
        targets[rows, cols] = 1.0
        return targets
