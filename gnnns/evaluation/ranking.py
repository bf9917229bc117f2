"""Filtered ranking of the true entity among all entities, batched with bounded memory."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gnnns.data import KnowledgeGraph, TripleIndex
from gnnns.models import KGCModel

HITS_AT = (1, 3, 10)


def rank_from_scores(scores: Tensor, target: Tensor, filter_rows: Tensor, filter_cols: Tensor) -> Tensor:
    r"""Filtered rank of each row's target, ties counted as the mean rank.

    Known answers other than the target are removed, then with :math:`g` the number of
    remaining scores above the target's and :math:`q` the number equal to it (the target itself
    excluded), the rank is the mean of the optimistic :math:`1 + g` and pessimistic
    :math:`1 + g + q` ranks: :math:`1 + g + q / 2` (the "realistic" rank of Berrendorf et al.,
    2020).

    Args:
        scores (Tensor): shape ``[Q, E]``, modified in place.
        target (Tensor): true entity per row, shape ``[Q]``.
        filter_rows (Tensor): row of each known answer, shape ``[P]``.
        filter_cols (Tensor): entity of each known answer, shape ``[P]``.

    Returns:
        Tensor of shape ``[Q]`` (float64).
    """
    if not bool(torch.isfinite(scores).all()):
        raise FloatingPointError("the model produced NaN or infinite scores; cannot rank")
    rows = torch.arange(scores.size(0), device=scores.device)
    true_score = scores[rows, target].clone()
    scores[filter_rows, filter_cols] = -math.inf
    scores[rows, target] = -math.inf
    greater = (scores > true_score.unsqueeze(1)).sum(1)
    equal = (scores == true_score.unsqueeze(1)).sum(1)
    return 1.0 + greater.double() + equal.double() / 2.0


@torch.no_grad()
def filtered_ranks(
    model: KGCModel,
    triples: Tensor,
    index: TripleIndex,
    predict_head: bool,
    batch_size: int = 256,
    progress: bool = True,
) -> Tensor:
    """Filtered ranks of one side of ``triples`` (``[N, 3]`` -> ``[N]``), ``batch_size`` queries at a time.

    Memory is bounded by one ``[batch_size, E]`` score block (plus the decoder's own chunking).
    """
    device = next(model.parameters()).device
    ent, rel = model.embeddings()
    ranks = []
    side = "head" if predict_head else "tail"
    for batch in tqdm(triples.split(batch_size), desc=f"evaluate {side}", leave=False, disable=not progress):
        batch = batch.to(device)
        kept = batch[:, 2] if predict_head else batch[:, 0]
        target = batch[:, 0] if predict_head else batch[:, 2]
        relation, side_mask = model._relation_and_side(
            batch[:, 1], torch.full_like(kept, predict_head, dtype=torch.bool)
        )
        query = model.decoder.query(ent[kept], rel[relation], side_mask)
        scores = model.score_queries(query, ent, chunk_size=batch_size)
        rows, cols = index.known(kept, batch[:, 1], predict_head)
        ranks.append(rank_from_scores(scores, target, rows.to(device), cols.to(device)).cpu())
    return torch.cat(ranks) if ranks else torch.empty(0, dtype=torch.float64)


def rank_metrics(ranks: Tensor) -> dict[str, float]:
    """MRR, MR and Hits@1/3/10 of a vector of ranks."""
    if ranks.numel() == 0:
        return {"mrr": math.nan, "mr": math.nan, **{f"hits@{k}": math.nan for k in HITS_AT}, "count": 0}
    ranks = ranks.double()
    out = {"mrr": float((1.0 / ranks).mean()), "mr": float(ranks.mean())}
    out.update({f"hits@{k}": float((ranks <= k).double().mean()) for k in HITS_AT})
    out["count"] = int(ranks.numel())
    return out


def evaluate(
    model: KGCModel,
    kg: KnowledgeGraph,
    split: str = "test",
    batch_size: int = 256,
    progress: bool = True,
    max_triples: int | None = None,
) -> dict:
    """Filtered link-prediction metrics of ``model`` on ``split``, both sides.

    Ranks the true head against all entities for :math:`(?, r, t)` and the true tail for
    :math:`(h, r, ?)`, removing every other known triple of train ∪ valid ∪ test.

    Args:
        model (KGCModel): the model.
        kg (KnowledgeGraph): its graph.
        split (str): ``"valid"`` or ``"test"``. (default: ``"test"``)
        batch_size (int): queries scored at once. (default: 256)
        progress (bool): show a progress bar. (default: True)
        max_triples (int, optional): evaluate only the first ``max_triples`` triples.

    Returns:
        ``{"mrr", "mr", "hits@1", "hits@3", "hits@10", "count", "head": {...}, "tail": {...}}``:
        the flat keys are both sides together.
    """
    triples = kg.split(split)
    if max_triples is not None:
        triples = triples[:max_triples]
    index = kg.index()
    was_training = model.training
    model.eval()
    try:
        # A GNN encoder embeds every entity once for both sides.
        with torch.no_grad(), model.cached_embeddings():
            head = filtered_ranks(model, triples, index, True, batch_size, progress)
            tail = filtered_ranks(model, triples, index, False, batch_size, progress)
    finally:
        model.train(was_training)
    out = rank_metrics(torch.cat([head, tail]))
    out["head"] = rank_metrics(head)
    out["tail"] = rank_metrics(tail)
    return out
