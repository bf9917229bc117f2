"""Weights of the positives in a batch's loss: RotatE's "subsampling weights"."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SubsamplingWeights(nn.Module):
    r"""The weight of each training positive in the loss of the RotatE authors' code (its default,
    turned off there by ``--uni_weight``), after word2vec's subsampling of frequent words: a triple
    whose head and tail take part in many triples of its relation counts less,

    .. math::
        u(h, r, t) = \big(n(h, r) + n(r, t) + 2c\big)^{-1/2},

    where :math:`n(h, r)` is the number of training triples with head :math:`h` and relation
    :math:`r`, :math:`n(r, t)` those with relation :math:`r` and tail :math:`t`, and :math:`c = 3`
    (the authors' counts start at 4 at a pair's first triple). A batch's loss is then
    :math:`\sum_b u_b \ell_b / \sum_b u_b` (:func:`~gnnns.losses.row_mean`); the same weight
    serves a positive's head and tail corruptions. A triple whose pairs the training graph never
    holds gets :math:`(2c)^{-1/2}`.

    Args:
        triples (Tensor): the training triples ``[N, 3]`` the counts come from.
        num_relations (int): :math:`R`, relations of the data (without inverses).
        offset (int): :math:`c`. (default: 3)
    """

    def __init__(self, triples: Tensor, num_relations: int, offset: int = 3):
        super().__init__()
        if offset < 0:
            raise ValueError(f"SubsamplingWeights: offset must be >= 0, got {offset}")
        self.num_relations, self.offset = int(num_relations), int(offset)
        triples = triples.long()
        for name, keys in (
            ("head", self._keys(triples[:, 0], triples[:, 1])),
            ("tail", self._keys(triples[:, 2], triples[:, 1])),
        ):
            unique, counts = torch.unique(keys, return_counts=True)
            self.register_buffer(f"{name}_keys", unique, persistent=False)
            self.register_buffer(f"{name}_counts", counts, persistent=False)

    def _keys(self, entity: Tensor, relation: Tensor) -> Tensor:
        return entity * self.num_relations + relation

    @staticmethod
    def _count(keys: Tensor, counts: Tensor, query: Tensor) -> Tensor:
        if keys.numel() == 0:
            return torch.zeros_like(query)
        at = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
        return torch.where(keys[at] == query, counts[at], 0)

    def forward(self, triples: Tensor) -> Tensor:
        """The weights ``[B]`` (float32) of triples ``[B, 3]``."""
        head, relation, tail = triples.long().unbind(1)
        n = self._count(self.head_keys, self.head_counts, self._keys(head, relation)) + self._count(
            self.tail_keys, self.tail_counts, self._keys(tail, relation)
        )
        return (n + 2 * self.offset).float().rsqrt()

    def extra_repr(self) -> str:
        return f"pairs={self.head_keys.numel()} + {self.tail_keys.numel()}, offset={self.offset}"
