"""The shallow encoder: one free embedding per entity and per relation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gnnns.models.decoders.base import Decoder

INITS: dict[str, Callable[[Tensor, float | None], Any]] = {
    "xavier_uniform": lambda table, scale: nn.init.xavier_uniform_(table),
    "xavier_normal": lambda table, scale: nn.init.xavier_normal_(table),
    "uniform": lambda table, scale: nn.init.uniform_(table, -scale, scale),
    "normal": lambda table, scale: nn.init.normal_(table, 0.0, scale),
}
DROPOUT_MASKS = ("table", "lookup")


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
        entity_dropout (float, optional): in training, each coordinate of an entity embedding is
            zeroed with this probability and the rest scaled by :math:`1 / (1 - p)`; where the
            masks are drawn is :obj:`dropout_mask`'s choice. (default: :obj:`0.0`)
        relation_dropout (float, optional): the same for relation embeddings. (default: :obj:`0.0`)
        dropout_mask (str, optional): ``"table"``: one mask per :meth:`forward` call for each
            whole table, so every query of a training step that reads a row reads it with the
            same mask. ``"lookup"``: :meth:`forward` returns the tables untouched and
            :class:`~gnnns.models.KGCModel` drops each row it looks up with a mask of its own
            (each query's entity and relation rows, each candidate row), and the whole candidate
            table of 1-N scoring with one mask per scoring call: LibKGE's
            ``lookup_embedder.dropout``, whose relation rows, shared by many queries of a batch,
            are then dropped independently for each. The expectation is the same; the noise is
            not. (default: :obj:`"table"`)
        init (str, optional): initialise both tables with this scheme instead of the decoder's:
            ``xavier_uniform``, ``xavier_normal`` (each table as an ``[rows, dim]`` matrix),
            ``uniform`` (:math:`U(-a, a)`, :math:`a` = :obj:`init_scale`) or ``normal``
            (:math:`N(0, \sigma^2)`, :math:`\sigma` = :obj:`init_scale`), LibKGE's
            ``lookup_embedder.initialize``. A decoder's bias column (ConvE) still starts at 0.
            (default: :obj:`None`, the decoder's scheme)
        init_scale (float, optional): :math:`a` or :math:`\sigma` of ``uniform`` / ``normal``.
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
        init: str | None = None,
        init_scale: float | None = None,
        dropout_mask: str = "table",
    ) -> None:
        super().__init__()
        if dropout_mask not in DROPOUT_MASKS:
            raise ValueError(
                f"EmbeddingEncoder: unknown dropout_mask {dropout_mask!r}; expected one of {list(DROPOUT_MASKS)}"
            )
        if init is not None and init not in INITS:
            raise ValueError(f"EmbeddingEncoder: unknown init {init!r}; expected one of {list(INITS)}")
        scaled = isinstance(init_scale, (int, float)) and not isinstance(init_scale, bool) and init_scale > 0
        if (init in ("uniform", "normal")) != (init_scale is not None) or (init_scale is not None and not scaled):
            raise ValueError(
                f"EmbeddingEncoder: init_scale must be a positive number with init 'uniform' or 'normal' and only "
                f"then; got init={init!r}, init_scale={init_scale!r}"
            )
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
        self.dropout_mask = dropout_mask
        self.init, self.init_scale = init, init_scale
        self._bias_column = bool(getattr(decoder, "bias_column", False))
        self.entity = nn.Embedding(num_entities, entity_dim, sparse=sparse)
        self.relation = nn.Embedding(num_relations, relation_dim, sparse=sparse)
        # Only the initialiser is kept: registering the decoder here as well as in the model
        # would list it twice in the module tree and the state dict.
        self._initialise: Callable[[Tensor, Tensor], None] | None = (
            decoder.reset_embeddings if decoder is not None else None
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-initialise both tables: :obj:`init` when given, else the decoder's scheme (when
        there is a decoder), else Xavier-uniform."""
        tables = (self.entity.weight, self.relation.weight)
        if self.init is not None:
            for table in tables:
                INITS[self.init](table, self.init_scale)
            if self._bias_column:
                self.entity.weight[:, -1].zero_()
        elif self._initialise is None:
            for table in tables:
                nn.init.xavier_uniform_(table)
        else:
            self._initialise(*tables)

    def tables(self) -> tuple[Tensor, Tensor]:
        """The weight tables themselves, never dropped out: what a penalty on the parameters reads."""
        return self.entity.weight, self.relation.weight

    def forward(self, graph: Any = None) -> tuple[Tensor, Tensor]:
        """The embedding tables; :obj:`graph` is accepted for the encoder interface and ignored.

        Returns:
            ``(entity_weight [E, entity_dim], relation_weight [R, relation_dim])``, dropped out
            in training when :obj:`entity_dropout` / :obj:`relation_dropout` are set and
            :obj:`dropout_mask` is ``"table"``.
        """
        ent, rel = self.entity.weight, self.relation.weight
        if self.training and self.dropout_mask == "table":
            ent, rel = embedding_dropout(ent, self.entity_dropout), embedding_dropout(rel, self.relation_dropout)
        return ent, rel

    def lookup_dropout(self) -> tuple[float, float] | None:
        """``(entity_dropout, relation_dropout)`` when the model is to drop each looked-up row
        (``dropout_mask="lookup"``, in training, some rate above 0), else :obj:`None`."""
        if not self.training or self.dropout_mask != "lookup":
            return None
        if self.entity_dropout <= 0 and self.relation_dropout <= 0:
            return None
        return self.entity_dropout, self.relation_dropout

    def extra_repr(self) -> str:
        extra = f", entity_dropout={self.entity_dropout}" if self.entity_dropout else ""
        extra += f", relation_dropout={self.relation_dropout}" if self.relation_dropout else ""
        if extra and self.dropout_mask != "table":
            extra += f", dropout_mask={self.dropout_mask!r}"
        return f"num_entities={self.num_entities}, num_relations={self.num_relations}, sparse={self.sparse}{extra}"


def embedding_dropout(table: Tensor, p: float) -> Tensor:
    r"""Inverted dropout, :math:`x \cdot m / (1 - p')` with :math:`m_i \sim \mathrm{Bernoulli}(1 - p')`.

    Each keep decision reads 16 random bits: 64-bit draws from the default generator are cut
    into four 16-bit two's-complement integers :math:`u` (low bits first), uniform on
    :math:`\{-2^{15}, \dots, 2^{15} - 1\}`, and an entry is kept when :math:`u \ge k - 2^{15}`
    with :math:`k = \operatorname{round}(p \cdot 2^{16})`. The rate is
    :math:`p' = k / 2^{16}`, within :math:`2^{-17}` of :math:`p`, and kept entries are scaled by
    :math:`1 / (1 - p')`, so the expectation is the input exactly. A rate under
    :math:`2^{-17}` rounds to none.

    Drawing a quarter as many random numbers as ``rand_like(table) >= p`` and keeping a byte
    mask rather than a float one matters where the mask is large: a whole entity table in
    1vsAll, or every looked-up row of a RESCAL relation matrix (``dim * dim`` numbers) with
    ``dropout_mask="lookup"``; ``benchmarks/one_to_n_loss.py`` times it against ``F.dropout``.
    """
    if p <= 0:
        return table
    levels = 1 << _DROPOUT_BITS
    dropped = min(round(p * levels), levels - 1)
    if dropped == 0:
        return table
    count = table.numel()
    draws = torch.empty(-(-count // 4), dtype=torch.int64, device=table.device)
    bits = draws.random_(-(2**63), None).view(torch.int16)[:count].view(table.shape)
    keep = bits >= dropped - levels // 2
    return _MaskedScale.apply(table, keep, levels / (levels - dropped))


class _MaskedScale(torch.autograd.Function):
    r""":math:`y = x \cdot m \cdot s` for a byte mask :math:`m` and a scale :math:`s`, in one selection and
    an in-place product each way: autograd's ``where(m, x * s, 0)`` would allocate the product,
    then zeros for the selection's backward."""

    @staticmethod
    def forward(ctx, table: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, table, 0.0).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None, None


_DROPOUT_BITS = 16
