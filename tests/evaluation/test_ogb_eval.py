import json
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnns.data import KnowledgeGraph, StoredEvalCandidates, import_ogb, wikikg2_like
from gnnns.evaluation import evaluate, evaluate_ogb, gather_ranks, ogb_ranks
from gnnns.evaluation import ogb as ogb_evaluation
from gnnns.models import build_model


def small_kg(num_negatives: int = 13) -> KnowledgeGraph:
    # 59 test triples: an odd count, so two processes get unequal shards.
    return wikikg2_like(0.0001, seed=5, eval_negatives=num_negatives)


def small_model(kg: KnowledgeGraph, name: str = "distmult", reciprocal: bool = False):
    torch.manual_seed(0)
    model = build_model(name, kg, dim=8, reciprocal=reciprocal)
    if reciprocal:
        with torch.no_grad():  # inverse relations unlike the forward ones, so the head side really uses them
            model.encoder.relation.weight[kg.num_relations :].normal_()
    return model


def brute_force_scores(model, kg: KnowledgeGraph, split: str, reciprocal: bool):
    """Scores of every true triple and every candidate triple, one explicit triple at a time through model.score."""
    triples = kg.split(split)
    head, tail = kg.eval_negatives[split].batch(0, len(triples))
    h, r, t = (triples[:, i : i + 1] for i in range(3))
    with torch.no_grad():
        positive = model.score(triples)
        tail_scores = model.score(torch.stack([h.expand_as(tail), r.expand_as(tail), tail], -1).view(-1, 3))
        if reciprocal:  # (?, r, t) is answered as (t, r + R, ?)
            inverse = r + kg.num_relations
            reverse_positive = model.score(torch.cat([t, inverse, h], 1))
            head_scores = model.score(torch.stack([t.expand_as(head), inverse.expand_as(head), head], -1).view(-1, 3))
        else:
            reverse_positive = positive
            head_scores = model.score(torch.stack([head, r.expand_as(head), t.expand_as(head)], -1).view(-1, 3))
    return positive, tail_scores.view(tail.shape), reverse_positive, head_scores.view(head.shape)


def test_ogb_ranks_by_hand():
    positive = torch.tensor([1.0, 2.0, 0.5])
    negative = torch.tensor([[2.0, 1.0, 0.0, 1.0], [3.0, 3.0, 3.0, 3.0], [0.0, 0.1, 0.2, 0.3]])
    # row 0: one above, three at least as high -> 0.5 * (1 + 3) + 1; row 1: last of 5; row 2: first.
    assert ogb_ranks(positive, negative).tolist() == [3.0, 5.0, 1.0]
    with pytest.raises(FloatingPointError):
        ogb_ranks(torch.tensor([math.nan]), torch.zeros(1, 2))


@pytest.mark.parametrize("reciprocal", [False, True])
def test_matches_brute_force_and_ogb_evaluator(reciprocal):
    kg = small_kg()
    model = small_model(kg, "complex", reciprocal)
    got = evaluate_ogb(model, kg, "test", batch_size=16, progress=False)
    positive, tail_scores, reverse_positive, head_scores = brute_force_scores(model, kg, "test", reciprocal)

    def rank(pos, neg):  # OGB's formula written out: 1 + #greater + #equal / 2
        return 1 + (neg > pos[:, None]).sum(1) + (neg == pos[:, None]).sum(1) / 2

    head, tail = rank(reverse_positive, head_scores), rank(positive, tail_scores)
    both = torch.cat([head, tail]).double()
    assert got["count"] == 2 * len(kg.test) and got["protocol"] == "ogb" and got["queries_per_second"] > 0
    assert got["mrr"] == pytest.approx(float((1 / both).mean()), abs=1e-9)
    assert got["mr"] == pytest.approx(float(both.mean()), abs=1e-9)
    assert got["head"]["hits@10"] == pytest.approx(float((head <= 10).double().mean()), abs=1e-12)
    assert got["tail"]["hits@1"] == pytest.approx(float((tail <= 1).double().mean()), abs=1e-12)
    try:
        evaluator = import_ogb().Evaluator("ogbl-wikikg2")
    except ImportError:
        return
    sides = [evaluator.eval({"y_pred_pos": reverse_positive, "y_pred_neg": head_scores})]
    sides.append(evaluator.eval({"y_pred_pos": positive, "y_pred_neg": tail_scores}))
    for key in ("mrr", "hits@1", "hits@3", "hits@10"):
        # OGB's reference code averages the concatenated per-query lists of both sides.
        reference = float(torch.cat([side[f"{key}_list"] for side in sides]).double().mean())
        assert got[key] == pytest.approx(reference, abs=1e-6), key


def test_candidate_equal_to_the_truth_ties():
    kg = small_kg(num_negatives=3)
    triples = kg.test
    # Every candidate is the true entity: each query ties with all 3, rank 0.5 * (0 + 3) + 1.
    kg.eval_negatives["test"] = StoredEvalCandidates(
        triples[:, 0:1].expand(-1, 3).clone(), triples[:, 2:3].expand(-1, 3).clone()
    )
    got = evaluate_ogb(small_model(kg), kg, "test", progress=False)
    assert got["mr"] == 2.5 and got["head"]["mr"] == 2.5 and got["hits@1"] == 0.0 and got["hits@3"] == 1.0


def test_evaluate_dispatches_and_batches_do_not_matter():
    kg = small_kg()
    model = small_model(kg)
    model.train()
    calls = []
    forward = model.encoder.forward
    model.encoder.forward = lambda graph=None: calls.append(1) or forward(graph)
    one = evaluate(model, kg, "valid", batch_size=1000, progress=False)
    assert len(calls) == 1  # the encoder ran once for every batch and both sides
    assert model.training  # mode restored
    many = evaluate_ogb(model, kg, "valid", batch_size=7, progress=False)
    for key in ("mrr", "mr", "hits@1", "hits@3", "hits@10", "count", "head", "tail", "protocol"):
        assert one[key] == many[key], key
    first = evaluate(model, kg, "valid", batch_size=7, progress=False, max_triples=10)
    assert first["count"] == 20
    # Without provided candidates: the filtered ranking against every entity.
    del kg.eval_negatives["valid"]
    filtered = evaluate(model, kg, "valid", progress=False)
    assert "protocol" not in filtered and filtered["mr"] > many["mr"]  # 1,250 entities, not 13 candidates
    with pytest.raises(ValueError, match="no provided candidates for 'valid'"):
        evaluate_ogb(model, kg, "valid", progress=False)


def test_scoring_blocks_do_not_matter(monkeypatch):
    kg = small_kg()
    model = small_model(kg, "rotate")
    whole = evaluate_ogb(model, kg, "test", progress=False)
    monkeypatch.setattr(ogb_evaluation, "_SCORED_ELEMENTS", 3 * 14 * 16)  # 3 rows of 1 + 13 candidates at a time
    blocks = evaluate_ogb(model, kg, "test", progress=False)
    assert without_speed(blocks) == without_speed(whole)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        kg = small_kg()
        model = small_model(kg)
        results = {
            "ogb": evaluate(model, kg, "test", batch_size=16, progress=False, rank=rank, world_size=2),
            "filtered": _filtered(model, kg, rank, 2),
            "gathered": gather_ranks(torch.arange(rank, 5, 2).double(), 5, rank, 2).tolist(),
        }
    finally:
        dist.destroy_process_group()
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(results, f)


def _filtered(model, kg: KnowledgeGraph, rank: int, world_size: int) -> dict:
    del kg.eval_negatives["valid"]
    # 41 of the 42 valid triples: unequal shards here too.
    return evaluate(model, kg, "valid", 16, progress=False, max_triples=41, rank=rank, world_size=world_size)


def without_speed(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key != "queries_per_second"}


def test_two_processes_match_one(tmp_path):
    # fork: the workers inherit the imported modules instead of importing torch_geometric again (seconds each).
    mp.start_processes(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="fork")
    kg = small_kg()
    model = small_model(kg)
    single = {"ogb": evaluate(model, kg, "test", batch_size=16, progress=False), "filtered": _filtered(model, kg, 0, 1)}
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["gathered"] == [0.0, 1.0, 2.0, 3.0, 4.0]  # query order restored from the interleaved shards
        assert without_speed(got["ogb"]) == without_speed(single["ogb"])
        assert got["filtered"] == single["filtered"]
        assert got["ogb"]["count"] == 2 * len(kg.test) == 118 and got["filtered"]["count"] == 82


def test_world_size_needs_a_process_group():
    kg = small_kg()
    with pytest.raises(RuntimeError, match=r"needs torch\.distributed initialised"):
        evaluate_ogb(small_model(kg), kg, "test", progress=False, rank=1, world_size=2)
