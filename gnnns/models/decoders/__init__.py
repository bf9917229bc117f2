"""Decoders: score triples from entity and relation embeddings (higher is more plausible)."""

from gnnns.models.decoders.base import Decoder
from gnnns.models.decoders.complex import ComplEx
from gnnns.models.decoders.conve import ConvE
from gnnns.models.decoders.distmult import DistMult
from gnnns.models.decoders.rescal import RESCAL
from gnnns.models.decoders.rotate import RotatE
from gnnns.models.decoders.transe import TransE

DECODERS: dict[str, type[Decoder]] = {
    "transe": TransE,
    "distmult": DistMult,
    "complex": ComplEx,
    "rotate": RotatE,
    "rescal": RESCAL,
    "conve": ConvE,
}

__all__ = ["DECODERS", "RESCAL", "ComplEx", "ConvE", "Decoder", "DistMult", "RotatE", "TransE"]
