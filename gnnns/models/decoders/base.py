"""The decoder interface: a score factorised into a query and a match against candidates."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Decoder(nn.Module):
    r"""Scores triples from entity and relation embeddings; higher is more plausible.

    Every decoder factorises its score :math:`f(h, r, t)` as ``match(query(kept, r, side), cand)``:
    the *query* combines the entity that is kept with the relation, and *match* compares it with
    a candidate for the other side. This gives three scoring shapes from two small functions:

    * :meth:`forward` ``(h, r, t)``: triples, broadcasting over leading dimensions;
    * candidates: one query against ``k`` candidates each, ``[B, d] x [B, k, d] -> [B, k]``;
    * :meth:`match_all`: each query against every entity, ``[Q, d] x [E, d] -> [Q, E]``,
      which bilinear decoders do with one matrix product.

    Subclasses set :attr:`entity_dim` / :attr:`relation_dim` (real numbers per embedding, from
    the model ``dim``), and implement :meth:`query` and :meth:`match`.
    """

    entity_dim: int
    relation_dim: int

    def query(self, kept: Tensor, rel: Tensor, corrupt_head: Tensor | bool) -> Tensor:
        """Combine the kept entity and the relation.

        Args:
            kept (Tensor): embedding of the entity that is kept, shape ``[..., entity_dim]``.
            rel (Tensor): relation embedding, shape ``[..., relation_dim]``.
            corrupt_head (BoolTensor or bool): broadcastable to ``[..., 1]``; True means the
                head is the unknown side (``kept`` is the tail).

        Returns:
            Query of shape ``[..., query_dim]``.
        """
        raise NotImplementedError

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        """Score queries against candidates elementwise: ``[..., q] x [..., d] -> [...]``."""
        raise NotImplementedError

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        """Score each query against each candidate: ``[Q, q] x [E, d] -> [Q, E]``.

        The default broadcasts :meth:`match`; decoders with a cheaper form override it.
        """
        return self.match(query.unsqueeze(1), cand.unsqueeze(0))

    def forward(self, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
        """Score triples from their embeddings, broadcasting over leading dimensions."""
        return self.match(self.query(head, rel, False), tail)

    def reset_parameters(self) -> None:
        """Decoders without parameters of their own have nothing to reset."""

    @torch.no_grad()
    def reset_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        """Initialise the entity ``[E, entity_dim]`` and relation ``[R, relation_dim]`` tables in
        place; Xavier-uniform unless the decoder's paper prescribes otherwise."""
        nn.init.xavier_uniform_(entity)
        nn.init.xavier_uniform_(relation)

    @staticmethod
    def side(corrupt_head: Tensor | bool, like: Tensor) -> Tensor:
        """``corrupt_head`` as a boolean tensor broadcastable against ``like [..., d]``."""
        mask = torch.as_tensor(corrupt_head, device=like.device)
        return mask.unsqueeze(-1) if mask.dim() > 0 else mask
