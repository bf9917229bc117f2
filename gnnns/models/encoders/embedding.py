"""The shallow encoder: one free embedding per entity and per relation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.models.decoders.base import Decoder


class EmbeddingEncoder(nn.Module):
    r"""Embedding tables for entities and relations, the encoder of every shallow model
    (TransE, DistMult, ComplEx, RotatE, RESCAL): the embedding of entity :math:`i` is the free
    parameter row :math:`\mathbf{E}_i`, and the graph is not used.

    :meth:`forward` returns the weight tensors themselves, not copies, so that gathering rows
    from them is the only copy. With :obj:`sparse=True`, :class:`~gnnns.models.KGCModel`
    gathers with :func:`torch.nn.functional.embedding`, so a step's gradient is a sparse tensor
    holding only the rows its batch touched (what a 2.5M-entity table needs; see
    :func:`gnnns.training.optim.build_optimizer`).

    Args:
        num_entities (int): number of entities :math:`E`.
        num_relations (int): number of relations :math:`R` (twice the data's when inverse
            relations are modelled).
        entity_dim (int): real numbers per entity row, :obj:`decoder.entity_dim`.
        relation_dim (int): real numbers per relation row, :obj:`decoder.relation_dim`.
        decoder (Decoder, optional): its :meth:`~Decoder.reset_embeddings` initialises the tables
            the way the decoder's paper does; Xavier-uniform when :obj:`None`.
            (default: :obj:`None`)
        sparse (bool, optional): sparse gradients for the tables, see above.
            (default: :obj:`False`)
        entity_dropout (float, optional): in training, each coordinate of the entity table is
            zeroed with this probability and the rest scaled by :math:`1 / (1 - p)`, one mask per
            :meth:`forward` call (so per training step: a query's own entity and the candidates it
            is scored against share the step's mask). LibKGE's ``entity_embedder.dropout``
            regularises its 1vsAll models this way; LibKGE draws the query rows' mask apart from
            the candidates', which has the same expectation. (default: :obj:`0.0`)
        relation_dropout (float, optional): the same for the relation table. (default: :obj:`0.0`)
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        entity_dim: int,
        relation_dim: int,
        decoder: Decoder | None = None,
        sparse: bool = False,
        entity_dropout: float = 0.0,
        relation_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, p in (("entity_dropout", entity_dropout), ("relation_dropout", relation_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"EmbeddingEncoder: {name} must be in [0, 1), got {p}")
        if sparse and (entity_dropout > 0 or relation_dropout > 0):
            # Dropping out the whole table would make every step's gradient dense [E, d].
            raise ValueError(
                "EmbeddingEncoder: embedding dropout needs dense tables; it is not available with sparse=True"
            )
        if decoder is not None and (decoder.entity_dim, decoder.relation_dim) != (entity_dim, relation_dim):
            raise ValueError(
                f"EmbeddingEncoder: entity_dim={entity_dim}, relation_dim={relation_dim} do not match "
                f"{type(decoder).__name__} (entity_dim={decoder.entity_dim}, "
                f"relation_dim={decoder.relation_dim})"
            )
        self.num_entities = num_entities
        self.num_relations = num_relations
        self.sparse = sparse
        self.entity_dropout = float(entity_dropout)
        self.relation_dropout = float(relation_dropout)
        self.entity = nn.Embedding(num_entities, entity_dim, sparse=sparse)
        self.relation = nn.Embedding(num_relations, relation_dim, sparse=sparse)
        # Only the initialiser is kept: registering the decoder here as well as in the model
        # would list it twice in the module tree and the state dict.
        self._initialise: Callable[[Tensor, Tensor], None] | None = (
            decoder.reset_embeddings if decoder is not None else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise both tables (through the decoder's scheme when one was given)."""
        if self._initialise is None:
            nn.init.xavier_uniform_(self.entity.weight)
            nn.init.xavier_uniform_(self.relation.weight)
        else:
            self._initialise(self.entity.weight, self.relation.weight)

    def forward(self, graph: Any = None) -> tuple[Tensor, Tensor]:
        """The embedding tables; :obj:`graph` is accepted for the encoder interface and ignored.

        Returns:
            ``(entity_weight [E, entity_dim], relation_weight [R, relation_dim])``, dropped out
            in training when :obj:`entity_dropout` / :obj:`relation_dropout` are set.
        """
        ent, rel = self.entity.weight, self.relation.weight
        if self.training and self.entity_dropout > 0:
            ent = F.dropout(ent, self.entity_dropout)
        if self.training and self.relation_dropout > 0:
            rel = F.dropout(rel, self.relation_dropout)
        return ent, rel

    def extra_repr(self) -> str:
        extra = f", entity_dropout={self.entity_dropout}" if self.entity_dropout else ""
        extra += f", relation_dropout={self.relation_dropout}" if self.relation_dropout else ""
        return f"num_entities={self.num_entities}, num_relations={self.num_relations}, sparse={self.sparse}{extra}"
