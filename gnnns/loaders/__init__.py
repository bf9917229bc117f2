"""Batches of positives: plain triples, or 1-N queries."""

from gnnns.loaders.one_to_n import OneToNLoader, reciprocal_queries
from gnnns.loaders.triples import TripleLoader

__all__ = ["OneToNLoader", "TripleLoader", "reciprocal_queries"]
