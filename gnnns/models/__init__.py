"""Encoders, decoders and the model that joins them."""

from __future__ import annotations

import inspect

from gnnns.data import KnowledgeGraph
from gnnns.models.decoders import DECODERS, Decoder
from gnnns.models.encoders import ENCODERS, EmbeddingEncoder
from gnnns.models.encoders.graph_input import node_degree
from gnnns.models.kgc import KGCModel

__all__ = ["DECODERS", "ENCODERS", "Decoder", "EmbeddingEncoder", "KGCModel", "build_model"]


def build_model(
    name: str,
    kg: KnowledgeGraph,
    dim: int,
    reciprocal: bool = False,
    compile: bool = False,
    encoder: str = "embedding",
    encoder_options: dict | None = None,
    sparse: bool = False,
    negative_scoring: str = "rows",
    **decoder_kwargs,
) -> KGCModel:
    """A model from registry names: an encoder of the training graph and a decoder.

    Args:
        name (str): decoder name, one of ``transe``, ``distmult``, ``complex``, ``rotate``,
            ``rescal``, ``conve``.
        kg (KnowledgeGraph): gives the number of entities and relations, and the training graph
            a GNN encoder reads.
        dim (int): embedding size; complex coordinates for ComplEx and RotatE.
        reciprocal (bool): add an inverse of every relation and answer head queries with it.
        compile (bool): fuse scoring kernels with :func:`torch.compile`.
        encoder (str): ``embedding`` (a free vector per entity: a shallow model), ``rgcn`` or
            ``compgcn``. (default: ``embedding``)
        encoder_options (dict, optional): keyword arguments of the encoder: a GNN's
            (``num_layers``, ``num_bases``, ``composition``, ...), or the embedding tables'
            ``entity_dropout``, ``relation_dropout``, ``dropout_mask``, ``init`` and ``init_scale``.
        sparse (bool): sparse gradients for the embedding tables of a shallow model, or for a
            GNN encoder's input table: a step's gradient holds only the rows its batch (or its
            sampled subgraph) touched, and a sparse optimizer
            (:func:`gnnns.training.optim.build_optimizer`) updates only those. What makes a
            2.5M-entity table trainable on a CPU. (default: False)
        negative_scoring (str): ``rows``, ``distinct`` or ``triple``, see :class:`KGCModel`. (default: ``rows``)
        **decoder_kwargs: passed to the decoder (``p`` for TransE, ``margin`` for RotatE,
            ConvE's ``num_filters``, ...).

    Returns:
        KGCModel: with ``score(triples [N, 3]) -> [N]``; for a GNN encoder its ``graph`` is the
        training graph with every entity's degree (``node_degree [E, 2]``).
    """
    key = name.lower()
    if key not in DECODERS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(DECODERS)}")
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {sorted(ENCODERS)}")
    decoder = _construct(DECODERS[key], f"decoder {key!r}", dim, **decoder_kwargs)
    num_rel = kg.num_relations * (2 if reciprocal else 1)
    if encoder == "embedding":
        options = ["entity_dropout", "relation_dropout", "dropout_mask", "init", "init_scale"]
        unknown = sorted(set(encoder_options or {}) - set(options))
        if unknown:
            raise ValueError(f"the embedding encoder has no option {unknown}; its options: {options}")
        enc = EmbeddingEncoder(
            kg.num_entities,
            num_rel,
            decoder.entity_dim,
            decoder.relation_dim,
            decoder=decoder,
            sparse=sparse,
            **(encoder_options or {}),
        )
        return KGCModel(
            enc, decoder, kg.num_relations, reciprocal=reciprocal, compile=compile, negative_scoring=negative_scoring
        )
    # A decoder that reads each candidate's bias from a last column (ConvE) gets a free bias per
    # entity from the model, next to the GNN's computed embedding.
    bias = bool(getattr(decoder, "bias_column", False))
    enc = _construct(
        ENCODERS[encoder],
        f"encoder {encoder!r}",
        kg.num_entities,
        kg.num_relations,
        decoder.entity_dim - int(bias),
        decoder.relation_dim,
        num_relation_embeddings=num_rel,
        **(encoder_options or {}),
        **({"sparse": True} if sparse else {}),
    )
    model = KGCModel(
        enc,
        decoder,
        kg.num_relations,
        reciprocal=reciprocal,
        compile=compile,
        entity_bias=kg.num_entities * bias,
        negative_scoring=negative_scoring,
    )
    graph = kg.to_pyg("train")
    graph.node_degree = node_degree(graph.edge_index, kg.num_entities)
    model.graph = graph
    return model


def _construct(cls: type, what: str, *args, **kwargs):
    """``cls(*args, **kwargs)``, with an error naming the valid options for an unknown one."""
    valid = list(inspect.signature(cls).parameters)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"{what} ({cls.__name__}) has no option {unknown}; its options: {valid[len(args) :]}")
    return cls(*args, **kwargs)
