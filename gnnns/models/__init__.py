"""Encoders, decoders and the model that joins them."""

from __future__ import annotations

from gnnns.data import KnowledgeGraph
from gnnns.models.decoders import DECODERS, Decoder
from gnnns.models.encoders import EmbeddingEncoder
from gnnns.models.kgc import KGCModel

__all__ = ["DECODERS", "Decoder", "EmbeddingEncoder", "KGCModel", "build_model"]


def build_model(
    name: str,
    kg: KnowledgeGraph,
    dim: int,
    reciprocal: bool = False,
    compile: bool = False,
    **decoder_kwargs,
) -> KGCModel:
    """A shallow model: an embedding table for every entity and relation, and a decoder.

    Args:
        name (str): decoder name, one of ``transe``, ``distmult``, ``complex``, ``rotate``,
            ``rescal``.
        kg (KnowledgeGraph): gives the number of entities and relations.
        dim (int): embedding size; complex coordinates for ComplEx and RotatE.
        reciprocal (bool): add an inverse of every relation and answer head queries with it.
        compile (bool): fuse scoring kernels with :func:`torch.compile`.
        **decoder_kwargs: passed to the decoder (``p`` for TransE, ``margin`` for RotatE).

    Returns:
        KGCModel: with ``score(triples [N, 3]) -> [N]``.
    """
    key = name.lower()
    if key not in DECODERS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(DECODERS)}")
    decoder = DECODERS[key](dim, **decoder_kwargs)
    num_rel = kg.num_relations * (2 if reciprocal else 1)
    encoder = EmbeddingEncoder(kg.num_entities, num_rel, decoder.entity_dim, decoder.relation_dim, decoder=decoder)
    return KGCModel(encoder, decoder, kg.num_relations, reciprocal=reciprocal, compile=compile)
