"""Encoders: ``encoder(graph) -> (entity_emb [E, De], relation_emb [R', Dr])``."""

from torch import nn

from gnnns.models.encoders.compgcn import CompGCNEncoder
from gnnns.models.encoders.embedding import EmbeddingEncoder
from gnnns.models.encoders.rgcn import RGCNEncoder

ENCODERS: dict[str, type[nn.Module]] = {
    "embedding": EmbeddingEncoder,
    "rgcn": RGCNEncoder,
    "compgcn": CompGCNEncoder,
}

__all__ = ["ENCODERS", "CompGCNEncoder", "EmbeddingEncoder", "RGCNEncoder"]
