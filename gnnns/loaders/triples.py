"""Batches of positive triples for negative-sampling training, shardable across processes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from gnnns.data.triple_index import check_relation_ids


def check_relations(triples: Tensor, num_relations: int) -> None:
    """Refuse relation ids outside ``[0, R)``: their inverses ``r + R`` would be other relations."""
    check_relation_ids(triples[:, 1], num_relations, note=f" (num_relations) to add inverses r + {num_relations}")


class ShardedBatches:
    r"""A seeded order of :math:`N` items per epoch, cut into global batches shared by processes.

    The permutation of epoch :math:`e` comes from a generator seeded by ``(seed, e)`` alone, so
    it can be regenerated at any time: a run resumed in the middle of an epoch asks for
    :meth:`batches` ``(e, start)`` and gets exactly the batches it had not seen, and every
    process of a distributed run draws the same permutation.

    **Sharding.** With ``world_size`` :math:`W > 1`, ``batch_size`` :math:`B` is the *global*
    batch: the epoch's order is cut into chunks of :math:`B' = W \lfloor B / W \rfloor` items and
    process ``rank`` :math:`i` takes items :math:`i, i + W, i + 2W, \dots` of each chunk, i.e.
    :math:`B / W` of them. So :math:`W` processes take the same optimisation steps as one process
    with batch :math:`B`, and the union of their batches is that process's batch. To give every
    process the same number of equally sized batches (a collective must never wait for a process
    that has run out), the last :math:`N \bmod W` items of each epoch's order are left out of
    that epoch; they change from epoch to epoch. With :math:`W = 1` nothing is left out.

    Subclasses give the number of items (``size``) and turn :meth:`indices` into batches
    (:meth:`batches`).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in 0..world_size-1 with world_size >= 1, got rank {rank} of {world_size}")
        if batch_size < world_size:
            raise ValueError(
                f"batch_size {batch_size} is smaller than the {world_size} processes sharing it; "
                f"expected at least one item per process"
            )
        self.size = int(size)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(torch.randint(1 << 62, ())) if seed is None else int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self._epochs_iterated = 0

    @property
    def rank_batch_size(self) -> int:
        r"""Items per batch on this process, :math:`\lfloor B / W \rfloor`."""
        return self.batch_size // self.world_size

    @property
    def num_used(self) -> int:
        r"""Items an epoch uses over all processes: :math:`N - (N \bmod W)`."""
        return self.size - self.size % self.world_size

    def __len__(self) -> int:
        n, b = self.num_used, self.rank_batch_size * self.world_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> Tensor:
        """The permutation of epoch ``epoch``, shape ``[N]`` (the same on every process)."""
        if not self.shuffle:
            return torch.arange(self.size)
        # SeedSequence mixes (seed, epoch) into well-separated streams: nearby seeds and epochs
        # do not give related permutations.
        entropy = np.random.SeedSequence([self.seed % (1 << 64), int(epoch)]).generate_state(2, np.uint32)
        generator = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
        return torch.randperm(self.size, generator=generator)

    def indices(self, epoch: int, start: int = 0) -> Iterator[Tensor]:
        """The item indices of this process's batches of epoch ``epoch``, from batch ``start`` on."""
        order = self.order(epoch)[: self.num_used]
        chunk = self.rank_batch_size * self.world_size
        for i in range(int(start), len(self)):
            yield order[i * chunk : (i + 1) * chunk][self.rank :: self.world_size]

    def batches(self, epoch: int, start: int = 0) -> Iterator:
        """This process's batches of epoch ``epoch``, from batch ``start`` on."""
        raise NotImplementedError

    def __iter__(self) -> Iterator:
        """The batches of the next epoch: each iteration over the loader is a new epoch."""
        epoch = self._epochs_iterated
        self._epochs_iterated += 1
        return self.batches(epoch)


class TripleLoader(ShardedBatches):
    r"""Shuffled mini-batches of triples, ``[B, 3]`` each, from a permutation of its own.

    Indexing a tensor by a permutation avoids the per-item overhead of a
    :class:`torch.utils.data.DataLoader`. Epoch orders and the sharding across processes are
    :class:`ShardedBatches`'s: every process of a distributed run draws the same permutation
    while its negative sampler draws from a random stream of its own.

    Args:
        triples (Tensor): shape ``[N, 3]``.
        batch_size (int): triples per batch, over all processes together.
        shuffle (bool): a new permutation every epoch. (default: True)
        drop_last (bool): drop a final short batch. (default: False)
        reciprocal (bool): add ``(t, r + R, h)`` for every triple. (default: False)
        num_relations (int, optional): :math:`R`, needed with ``reciprocal``.
        seed (int, optional): seed of the permutations; None draws one from the global torch
            generator, so that :func:`torch.manual_seed` makes a loader reproducible. (default: None)
        rank (int): this process's index in ``0..world_size-1``. (default: 0)
        world_size (int): number of processes sharing each batch. (default: 1)
    """

    def __init__(
        self,
        triples: Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        reciprocal: bool = False,
        num_relations: int | None = None,
        seed: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if reciprocal:
            if num_relations is None:
                raise ValueError("reciprocal=True needs num_relations")
            check_relations(triples, num_relations)
            inverse = torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], 1)
            triples = torch.cat([triples, inverse])
        super().__init__(len(triples), batch_size, shuffle, drop_last, seed, rank, world_size)
        self.triples = triples

    @property
    def num_triples(self) -> int:
        r"""Triples an epoch uses over all processes: :math:`N - (N \bmod W)`."""
        return self.num_used

    def batches(self, epoch: int, start: int = 0) -> Iterator[Tensor]:
        """This process's batches of epoch ``epoch``, ``[B / W, 3]`` each, from batch ``start`` on."""
        for rows in self.indices(epoch, start):
            yield self.triples[rows]
