"""Encoders: ``encoder(graph) -> (entity_emb [E, De], relation_emb [R, Dr])``."""

from gnnns.models.encoders.embedding import EmbeddingEncoder

__all__ = ["EmbeddingEncoder"]
