"""Filtered ranking of the true entity among all entities, batched with bounded memory."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
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
        batch = batch.to(device).long()
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


def check_process_group(rank: int, world_size: int) -> None:
    """Check, before any work, that ``rank`` of ``world_size`` is this process's place in an
    initialised ``torch.distributed`` group (nothing to check for one process).

    Raises:
        ValueError: ``rank`` outside ``0 .. world_size - 1``, or another place in the group.
        RuntimeError: ``world_size > 1`` without an initialised group.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"expected 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if world_size == 1:
        return
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"world_size={world_size} needs torch.distributed initialised (init_process_group)")
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ValueError(
            f"rank={rank}, world_size={world_size} disagree with the process group "
            f"(rank {dist.get_rank()} of {dist.get_world_size()})"
        )


def shard(total: int, rank: int = 0, world_size: int = 1) -> Tensor:
    """Indices of the queries ``0 .. total - 1`` that process ``rank`` of ``world_size`` evaluates:
    ``rank, rank + world_size, ...``, shape ``[ceil((total - rank) / world_size)]``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"expected 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return torch.arange(rank, total, world_size)


def gather_ranks(local: Tensor, total: int, rank: int = 0, world_size: int = 1) -> Tensor:
    """Every process's ranks, in query order, on every process.

    Process ``rank`` holds the ranks of its :func:`shard` of the queries, ``local`` of shape
    ``[n_rank, ...]``. Each pads them to ``ceil(total / world_size)`` rows and all-gathers them
    with :func:`torch.distributed.all_gather`; row ``j`` of process ``r`` is query
    ``j * world_size + r``, so interleaving the gathered blocks restores the order one process
    would have produced (and with it bit-identical metrics).

    Args:
        local (Tensor): this process's ranks, shape ``[n_rank, ...]``.
        total (int): queries over all processes.
        rank (int): this process's rank. (default: 0)
        world_size (int): number of processes; 1 returns ``local`` as it is. (default: 1)

    Returns:
        Tensor of shape ``[total, ...]``.
    """
    check_process_group(rank, world_size)
    if world_size == 1:
        return local
    length = -(-total // world_size)
    # NCCL gathers only CUDA tensors; gloo only CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.full((length, *local.shape[1:]), math.nan, dtype=local.dtype, device=device)
    padded[: len(local)] = local.to(device)
    parts = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(parts, padded)
    return torch.stack(parts, 1).flatten(0, 1)[:total].cpu()


def evaluate(
    model: KGCModel,
    kg: KnowledgeGraph,
    split: str = "test",
    batch_size: int = 256,
    progress: bool = True,
    max_triples: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> dict:
    """Filtered link-prediction metrics of ``model`` on ``split``, both sides.

    Ranks the true head against all entities for :math:`(?, r, t)` and the true tail for
    :math:`(h, r, ?)`, removing every other known triple of train ∪ valid ∪ test. When the graph
    provides candidates for the split (``split in kg.eval_negatives``, as OGB datasets do), ranks
    against those instead, under OGB's protocol: :func:`~gnnns.evaluation.evaluate_ogb`.

    With ``world_size > 1`` (``torch.distributed`` initialised), process ``rank`` ranks the
    triples ``rank, rank + world_size, ...`` and the ranks are all-gathered
    (:func:`gather_ranks`): every process returns the metrics of the whole split.

    Args:
        model (KGCModel): the model.
        kg (KnowledgeGraph): its graph.
        split (str): ``"valid"`` or ``"test"``. (default: ``"test"``)
        batch_size (int): queries scored at once. (default: 256)
        progress (bool): show a progress bar. (default: True)
        max_triples (int, optional): evaluate only the first ``max_triples`` triples.
        rank (int): this process's rank. (default: 0)
        world_size (int): processes sharing the evaluation. (default: 1)

    Returns:
        ``{"mrr", "mr", "hits@1", "hits@3", "hits@10", "count", "head": {...}, "tail": {...}}``:
        the flat keys are both sides together (OGB's protocol adds ``"protocol"`` and
        ``"queries_per_second"``).
    """
    if split in kg.eval_negatives:
        # Imported here: gnnns.evaluation.ogb builds on this module.
        from gnnns.evaluation.ogb import evaluate_ogb

        return evaluate_ogb(model, kg, split, batch_size, progress, max_triples, rank=rank, world_size=world_size)
    check_process_group(rank, world_size)
    triples = kg.split(split)
    total = len(triples) if max_triples is None else min(max_triples, len(triples))
    mine = triples[shard(total, rank, world_size)]
    index = kg.index()
    was_training = model.training
    model.eval()
    try:
        # A GNN encoder embeds every entity once for both sides.
        with torch.no_grad(), model.cached_embeddings():
            head = filtered_ranks(model, mine, index, True, batch_size, progress)
            tail = filtered_ranks(model, mine, index, False, batch_size, progress)
    finally:
        model.train(was_training)
    ranks = gather_ranks(torch.stack([head, tail], 1), total, rank, world_size)
    out = rank_metrics(ranks.t().flatten())
    out["head"] = rank_metrics(ranks[:, 0])
    out["tail"] = rank_metrics(ranks[:, 1])
    return out
