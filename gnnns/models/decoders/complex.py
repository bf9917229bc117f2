"""ComplEx: a bilinear score in complex space."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.models.decoders.base import Decoder


class ComplEx(Decoder):
    r"""The ComplEx decoder from the `"Complex Embeddings for Simple Link Prediction"
    <https://arxiv.org/abs/1606.06357>`_ paper (Trouillon et al., 2016), a diagonal bilinear score
    over complex embeddings whose conjugated tail makes it asymmetric:

    .. math::
        f(h, r, t) = \mathrm{Re}\left( \sum_i e_{h,i} \, e_{r,i} \, \overline{e_{t,i}} \right)

    Embedding rows store ``[re (dim) | im (dim)]``. Both queries reduce the score to a real dot
    product with the candidate row, so that scoring against all entities is one matrix product:

    * tail query: :math:`[\mathrm{Re}(hr), \mathrm{Im}(hr)]`;
    * head query: with :math:`w = r \, \bar{t}`,
      :math:`\mathrm{Re}(h w) = \mathrm{Re}(h) \mathrm{Re}(w) - \mathrm{Im}(h) \mathrm{Im}(w)`,
      so :math:`[\mathrm{Re}(w), -\mathrm{Im}(w)]`.

    Embeddings are initialised Xavier-uniform (:meth:`Decoder.reset_embeddings`).

    Args:
        dim (int): number of complex coordinates; rows hold :obj:`2 * dim` real numbers.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.entity_dim = 2 * dim
        self.relation_dim = 2 * dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def query(self, kept: Tensor, rel: Tensor, corrupt_head: Tensor | bool) -> Tensor:
        """``[..., 2 dim] x [..., 2 dim] -> [..., 2 dim]``, see the class docstring."""
        k_re, k_im = kept.chunk(2, dim=-1)
        r_re, r_im = rel.chunk(2, dim=-1)
        re_rr, im_ii = k_re * r_re, k_im * r_im
        re_ri, im_ir = k_re * r_im, k_im * r_re
        # The four products serve both sides (kept = h for tails, kept = t for heads):
        # tail: h r = (h_re r_re - h_im r_im) + i (h_re r_im + h_im r_re);
        # head: w = r conj(t) = (t_re r_re + t_im r_im) + i (t_re r_im - t_im r_re).
        tail_query = (re_rr - im_ii, re_ri + im_ir)
        head_query = (re_rr + im_ii, im_ir - re_ri)
        if isinstance(corrupt_head, bool):
            return torch.cat(head_query if corrupt_head else tail_query, dim=-1)
        mask = self.side(corrupt_head, kept)
        return torch.where(mask, torch.cat(head_query, dim=-1), torch.cat(tail_query, dim=-1))

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[..., 2 dim] x [..., 2 dim] -> [...]``: the real dot product."""
        # einsum contracts with a batched matrix product, never materialising [B, k, 2 dim].
        return torch.einsum("...d,...d->...", query, cand)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[Q, 2 dim] x [E, 2 dim] -> [Q, E]``: one matrix product."""
        return query @ cand.t()
