"""Filtered ranking evaluation, and OGB's protocol for datasets that provide candidates."""

from gnnns.evaluation.ogb import evaluate_ogb, ogb_ranks
from gnnns.evaluation.ranking import (
    HITS_AT,
    evaluate,
    filtered_ranks,
    gather_ranks,
    rank_from_scores,
    rank_metrics,
    shard,
)

__all__ = [
    "HITS_AT",
    "evaluate",
    "evaluate_ogb",
    "filtered_ranks",
    "gather_ranks",
    "ogb_ranks",
    "rank_from_scores",
    "rank_metrics",
    "shard",
]
