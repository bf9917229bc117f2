"""DistMult: a diagonal bilinear score."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.models.decoders.base import Decoder


class DistMult(Decoder):
    r"""The DistMult decoder from the `"Embedding Entities and Relations for Learning and
    Inference in Knowledge Bases" <https://arxiv.org/abs/1412.6575>`_ paper (Yang et al., 2015),
    a bilinear score with a diagonal relation matrix:

    .. math::
        f(h, r, t) = \langle \mathbf{e}_h, \mathbf{e}_r, \mathbf{e}_t \rangle
        = \sum_i e_{h,i} \, e_{r,i} \, e_{t,i}

    The score is symmetric in head and tail, so both sides use the query
    :math:`\mathbf{e}_{kept} \circ \mathbf{e}_r`, matched by a dot product. Embeddings are
    initialised Xavier-uniform (:meth:`Decoder.reset_embeddings`).

    Args:
        dim (int): embedding size of entities and relations.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.entity_dim = dim
        self.relation_dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def query(self, kept: Tensor, rel: Tensor, corrupt_head: Tensor | bool) -> Tensor:
        """``[..., dim] x [..., dim] -> [..., dim]``; the side does not matter."""
        return kept * rel

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[..., dim] x [..., dim] -> [...]``: the dot product."""
        # einsum contracts with a batched matrix product: [B, 1, d] x [B, k, d] never
        # materialises a [B, k, d] product as `(q * c).sum(-1)` would.
        return torch.einsum("...d,...d->...", query, cand)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[Q, dim] x [E, dim] -> [Q, E]``: one matrix product."""
        return query @ cand.t()
