"""Fixed candidate entities of evaluation queries: OGB's provided negatives, or seeded random ones."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor


class EvalCandidates(ABC):
    r"""The candidate entities each query of a split is ranked against (OGB's protocol).

    Query :math:`i` of the split is the triple :math:`(h_i, r_i, t_i)`; its true head is ranked
    against its ``K_h`` head candidates (triples :math:`(e, r_i, t_i)`) and its true tail against
    its ``K_t`` tail candidates (:math:`(h_i, r_i, e)`), instead of against every entity.
    Subclasses decide where the candidates come from; memory does not depend on how they are read.
    """

    @abstractmethod
    def __len__(self) -> int:
        """Number of queries in the split."""

    @abstractmethod
    def rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Candidates of the queries ``index`` (shape ``[b]``, any order).

        Returns:
            ``(head [b, K_h], tail [b, K_t])``, int64 global entity ids.
        """

    def batch(self, start: int, end: int) -> tuple[Tensor, Tensor]:
        """Candidates of queries ``start .. end - 1``: ``(head [b, K_h], tail [b, K_t])``, int64."""
        return self.rows(torch.arange(start, end))

    def _check_index(self, index: Tensor) -> Tensor:
        index = torch.as_tensor(index, dtype=torch.long)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise IndexError(
                f"{type(self).__name__}: query index out of range [{int(index.min())}, {int(index.max())}]; "
                f"the split has {len(self)} queries"
            )
        return index


class StoredEvalCandidates(EvalCandidates):
    """Candidates held as tensors, e.g. the ``head_neg`` / ``tail_neg`` arrays OGB provides.

    Keep them as int32 (or smaller) when the entity ids allow: ogbl-wikikg2's test split has
    598,543 queries of 500 + 500 candidates, 2.4 GB as int32 against 4.8 GB as int64. Batches are
    widened to int64 only as they are read.

    Args:
        head (Tensor): head candidates, integer tensor of shape ``[N, K_h]``.
        tail (Tensor): tail candidates, integer tensor of shape ``[N, K_t]``.
    """

    def __init__(self, head: Tensor, tail: Tensor):
        for side, x in (("head", head), ("tail", tail)):
            if x.dim() != 2 or x.is_floating_point() or x.is_complex():
                raise ValueError(
                    f"StoredEvalCandidates: {side} must be an integer tensor of shape [N, K], got "
                    f"{x.dtype} of shape {list(x.shape)}"
                )
        if head.size(0) != tail.size(0):
            raise ValueError(
                f"StoredEvalCandidates: head has {head.size(0)} queries but tail has {tail.size(0)}; expected the same"
            )
        self.head = head
        self.tail = tail

    def __len__(self) -> int:
        return self.head.size(0)

    def __repr__(self) -> str:
        return (
            f"StoredEvalCandidates(queries={len(self):,}, head={self.head.size(1)}, tail={self.tail.size(1)}, "
            f"dtype={self.head.dtype}, MB={self.nbytes / 2**20:.1f})"
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by the two candidate tensors."""
        return self.head.element_size() * self.head.numel() + self.tail.element_size() * self.tail.numel()

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        index = self._check_index(index)
        return self.head[index].long(), self.tail[index].long()

    def batch(self, start: int, end: int) -> tuple[Tensor, Tensor]:
        if not 0 <= start <= end <= len(self):
            raise IndexError(f"StoredEvalCandidates: batch [{start}, {end}) outside the {len(self)} queries")
        return self.head[start:end].long(), self.tail[start:end].long()


class RandomEvalCandidates(EvalCandidates):
    r"""Uniformly random candidate entities, generated on demand and the same at every call.

    Queries are grouped in blocks of ``block_size``; block :math:`b` is drawn whole by a generator
    seeded with :math:`(\text{seed}, b)`, so a query's candidates depend only on the seed and its
    index, and memory stays at one block however large the split. Like ogbl-wikikg2's provided
    negatives (Hu et al., "Open Graph Benchmark", NeurIPS 2020, https://arxiv.org/abs/2005.00687),
    candidates are drawn from all entities without filtering: a candidate may be the true entity
    or another known answer.

    Args:
        num_queries (int): queries in the split.
        num_entities (int): candidates are drawn from ``0 .. num_entities - 1``.
        num_negatives (int): candidates per side and query, :math:`K_h = K_t`. (default: 500)
        seed (int): non-negative seed. (default: 0)
        block_size (int): queries per generated block. (default: 64)
    """

    def __init__(
        self, num_queries: int, num_entities: int, num_negatives: int = 500, seed: int = 0, block_size: int = 64
    ):
        if num_queries < 0 or num_entities < 1 or num_negatives < 1 or block_size < 1 or seed < 0:
            raise ValueError(
                "RandomEvalCandidates: expected num_queries >= 0, num_entities >= 1, num_negatives >= 1, "
                f"block_size >= 1 and seed >= 0; got {num_queries}, {num_entities}, {num_negatives}, "
                f"{block_size}, {seed}"
            )
        self.num_queries = int(num_queries)
        self.num_entities = int(num_entities)
        self.num_negatives = int(num_negatives)
        self.seed = int(seed)
        self.block_size = int(block_size)

    def __len__(self) -> int:
        return self.num_queries

    def __repr__(self) -> str:
        return (
            f"RandomEvalCandidates(queries={self.num_queries:,}, entities={self.num_entities:,}, "
            f"negatives={self.num_negatives}, seed={self.seed})"
        )

    def _block(self, block: int) -> Tensor:
        """Candidates of every query of ``block``: ``[block_size, 2 K]`` (head then tail columns)."""
        rng = np.random.default_rng([self.seed, block])
        drawn = rng.integers(0, self.num_entities, size=(self.block_size, 2 * self.num_negatives), dtype=np.int64)
        return torch.from_numpy(drawn)

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        index = self._check_index(index)
        blocks, which = torch.unique(index // self.block_size, return_inverse=True)
        parts = [self._block(int(b)) for b in blocks]
        drawn = torch.cat(parts) if parts else torch.empty(0, 2 * self.num_negatives, dtype=torch.long)
        picked = drawn[which * self.block_size + index % self.block_size]
        return picked[:, : self.num_negatives], picked[:, self.num_negatives :]
