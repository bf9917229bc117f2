"""RESCAL: a full bilinear score with one matrix per relation."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gnnns.models.decoders.base import Decoder


class RESCAL(Decoder):
    r"""The RESCAL decoder from the `"A Three-Way Model for Collective Learning on
    Multi-Relational Data" <https://icml.cc/2011/papers/438_icmlpaper.pdf>`_ paper
    (Nickel et al., 2011), a bilinear score with a full matrix :math:`M_r` per relation:

    .. math::
        f(h, r, t) = \mathbf{e}_h^\top M_r \, \mathbf{e}_t
        = \sum_{i, j} e_{h,i} \, (M_r)_{ij} \, e_{t,j}

    Relation rows store :math:`M_r` flattened row-major (:math:`(M_r)_{ij}` at
    ``i * dim + j``). The tail query is :math:`\mathbf{e}_h^\top M_r`, the head query
    :math:`M_r \mathbf{e}_t`; both are matched by a dot product.

    Args:
        dim (int): embedding size of entities; relation rows hold :obj:`dim * dim` numbers.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.entity_dim = dim
        self.relation_dim = dim * dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def query(self, kept: Tensor, rel: Tensor, corrupt_head: Tensor | bool) -> Tensor:
        """``[..., dim] x [..., dim * dim] -> [..., dim]``: :math:`h^T M` for tails,
        :math:`M t` for heads."""
        matrix = rel.unflatten(-1, (self.dim, self.dim))
        if corrupt_head is True:
            return torch.einsum("...ij,...j->...i", matrix, kept)
        if corrupt_head is False:
            return torch.einsum("...i,...ij->...j", kept, matrix)
        mask = self.side(corrupt_head, kept)
        return torch.where(mask, self.query(kept, rel, True), self.query(kept, rel, False))

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[..., dim] x [..., dim] -> [...]``: the dot product."""
        # einsum contracts with a batched matrix product, never materialising [B, k, dim].
        return torch.einsum("...d,...d->...", query, cand)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[Q, dim] x [E, dim] -> [Q, E]``: one matrix product."""
        return query @ cand.t()

    @torch.no_grad()
    def reset_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        """Entities Xavier-uniform; each :math:`M_r` Xavier-uniform as a ``dim x dim`` matrix
        (the paper fits RESCAL by ALS and prescribes no initialisation). Xavier on the flattened
        ``[R, dim * dim]`` table would make their scale depend on the number of relations."""
        nn.init.xavier_uniform_(entity)
        bound = math.sqrt(6.0 / (2 * self.dim))
        relation.uniform_(-bound, bound)
