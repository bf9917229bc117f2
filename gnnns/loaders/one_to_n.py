"""Batches of ``(entity, relation)`` queries for 1-N scoring against all entities."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from gnnns.data import TripleIndex
from gnnns.loaders.triples import ShardedBatches, check_relations


def reciprocal_queries(triples: Tensor, num_relations: int) -> tuple[Tensor, Tensor]:
    """Every triple as a tail query and, through its inverse relation, as a head query.

    Args:
        triples (Tensor): shape ``[N, 3]``.
        num_relations (int): :math:`R`.

    Returns:
        ``(queries [2N, 2], answers [2N])``: query ``(e, r')`` asks ``(e, r', ?)`` with
        ``r' = r`` for ``(h, r, ?)`` and ``r' = r + R`` for ``(?, r, t)``.
    """
    check_relations(triples, num_relations)
    h, r, t = triples.long().unbind(1)
    queries = torch.cat([torch.stack([h, r], 1), torch.stack([t, r + num_relations], 1)])
    return queries, torch.cat([t, h])


class OneToNLoader(ShardedBatches):
    r"""Query batches for 1-N training with reciprocal relations (Lacroix et al., 2018).

    ``mode="1vsall"`` yields every (query, answer) pair once per epoch as
    ``(queries [B, 2], answers [B])``: the loss is a softmax over all entities with one target.
    ``mode="kvsall"`` (Dettmers et al., 2018) yields each distinct query once as
    ``(queries [B, 2], targets [B, E])`` with every known training answer marked.

    Epoch orders come from ``(seed, epoch)`` and are sharded across processes as in
    :class:`~gnnns.loaders.triples.ShardedBatches`: with ``world_size`` :math:`W`, ``batch_size``
    is the global batch and each process takes :math:`B / W` queries of it.

    Args:
        triples (Tensor): training triples, shape ``[N, 3]``.
        num_entities (int): :math:`E`.
        num_relations (int): :math:`R` (inverse relations are ``R..2R-1``).
        batch_size (int): queries per batch, over all processes together.
        mode (str): ``"1vsall"`` or ``"kvsall"``. (default: ``"1vsall"``)
        shuffle (bool): a new order every epoch. (default: True)
        seed (int, optional): seed of the epoch orders; None draws one from the global torch
            generator. (default: None)
        rank (int): this process's index in ``0..world_size-1``. (default: 0)
        world_size (int): number of processes sharing each batch. (default: 1)
    """

    def __init__(
        self,
        triples: Tensor,
        num_entities: int,
        num_relations: int,
        batch_size: int,
        mode: str = "1vsall",
        shuffle: bool = True,
        seed: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if mode not in ("1vsall", "kvsall"):
            raise ValueError(f"mode must be '1vsall' or 'kvsall', got {mode!r}")
        queries, answers = reciprocal_queries(triples, num_relations)
        if mode == "kvsall":
            self.index = TripleIndex(torch.cat([queries, answers.unsqueeze(1)], 1), num_entities, 2 * num_relations)
            queries = torch.unique(queries, dim=0)
        super().__init__(len(queries), batch_size, shuffle, seed=seed, rank=rank, world_size=world_size)
        self.mode = mode
        self.num_entities = num_entities
        self.queries, self.answers = queries, answers

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's batches of epoch ``epoch``, from batch ``start`` on."""
        for idx in self.indices(epoch, start):
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
