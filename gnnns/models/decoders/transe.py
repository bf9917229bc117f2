"""TransE: relations as translations between entity embeddings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnns.models.decoders.base import Decoder


class TransE(Decoder):
    r"""The TransE decoder from the `"Translating Embeddings for Modeling Multi-Relational Data"
    <https://proceedings.neurips.cc/paper/2013/file/1cecc7a77928ca8133fa24c4dd7e0ba5-Paper.pdf>`_
    paper (Bordes et al., 2013), which models a relation as a translation, :math:`h + r \approx t`:

    .. math::
        f(h, r, t) = -\| \mathbf{e}_h + \mathbf{e}_r - \mathbf{e}_t \|_p

    The tail query is :math:`\mathbf{e}_h + \mathbf{e}_r`, the head query
    :math:`\mathbf{e}_t - \mathbf{e}_r`; both are matched by :math:`-\|q - c\|_p`.

    Args:
        dim (int): embedding size of entities and relations.
        p (int, optional): the norm, :obj:`1` or :obj:`2`. (default: :obj:`1`)
    """

    def __init__(self, dim: int, p: int = 1) -> None:
        super().__init__()
        if p not in (1, 2):
            raise ValueError(f"TransE: p must be 1 or 2, got {p!r}")
        self.dim = dim
        self.p = p
        self.entity_dim = dim
        self.relation_dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}, p={self.p}"

    def query(self, kept: Tensor, rel: Tensor, corrupt_head: Tensor | bool) -> Tensor:
        """``[..., dim] x [..., dim] -> [..., dim]``: :math:`h + r` for tails, :math:`t - r` for
        heads."""
        if isinstance(corrupt_head, bool):
            return kept - rel if corrupt_head else kept + rel
        sign = 1.0 - 2.0 * self.side(corrupt_head, kept).to(rel.dtype)
        return kept + sign * rel

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        r"""``[..., dim] x [..., dim] -> [...]``: :math:`-\|q - c\|_p`."""
        # vector_norm's backward is zero (not NaN) where the distance is zero.
        return -torch.linalg.vector_norm(query - cand, ord=self.p, dim=-1)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        r"""``[Q, dim] x [E, dim] -> [Q, E]`` without a ``[Q, E, dim]`` intermediate.

        :math:`L_2` uses one matrix product through
        :math:`\|q - c\|^2 = \|q\|^2 + \|c\|^2 - 2 q^\top c`; its rounding error is relative to
        the norms, so two nearly equal embeddings of large norm get a distance of about
        :math:`\sqrt{\epsilon}\,\|q\|` instead of zero, which does not change rankings in practice.
        :math:`L_1` uses :func:`torch.cdist` (note: its CUDA backward allocates ``[Q, E, dim]``).
        """
        if self.p == 1:
            return -torch.cdist(query, cand, p=1.0)
        # In float32 even under bfloat16 autocast: the expansion cancels, and bfloat16's 8-bit
        # mantissa would put its rounding on the whole distance (1e-3 on random unit-norm rows at
        # d = 200, more for near rows), unlike ``match``, which scores the positives.
        with torch.autocast(query.device.type, enabled=False):
            query, cand = query.float(), cand.float()
            sq_dist = torch.addmm(query.square().sum(-1, keepdim=True), query, cand.t(), alpha=-2.0)
            sq_dist = sq_dist + cand.square().sum(-1)
            # Rounding can make the expansion slightly negative, and sqrt has an infinite slope at 0:
            # clamping at the smallest normal number (sqrt ~1e-19 in float32) keeps gradients finite.
            return -sq_dist.clamp_min(torch.finfo(sq_dist.dtype).tiny).sqrt()

    @torch.no_grad()
    def reset_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        r"""As in the paper: both tables uniform in :math:`\pm 6 / \sqrt{dim}`, then every row
        normalised to unit :math:`L_2` norm (the paper renormalises entities before every batch;
        that constraint belongs to the training loop)."""
        bound = 6.0 / math.sqrt(self.dim)
        for table in (entity, relation):
            table.uniform_(-bound, bound)
            table.copy_(F.normalize(table, p=2.0, dim=-1))
