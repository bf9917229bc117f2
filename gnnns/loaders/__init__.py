"""Batches of positives (plain triples, or 1-N queries), and neighbour-sampled subgraphs around them."""

from gnnns.loaders.neighbor import NeighborSubgraphs, local_index
from gnnns.loaders.one_to_n import OneToNLoader, reciprocal_queries
from gnnns.loaders.triples import TripleLoader

__all__ = ["NeighborSubgraphs", "OneToNLoader", "TripleLoader", "local_index", "reciprocal_queries"]
