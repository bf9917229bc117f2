"""Filtered ranking evaluation."""

from gnnns.evaluation.ranking import HITS_AT, evaluate, filtered_ranks, rank_from_scores, rank_metrics

__all__ = ["HITS_AT", "evaluate", "filtered_ranks", "rank_from_scores", "rank_metrics"]
