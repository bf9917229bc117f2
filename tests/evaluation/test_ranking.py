import math

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.evaluation import evaluate, gather_ranks, rank_from_scores, rank_metrics, shard
from gnnns.models import build_model


def random_kg(seed=0, num_entities=25, num_relations=3):
    g = torch.Generator().manual_seed(seed)
    triples = torch.unique(
        torch.stack(
            [
                torch.randint(num_entities, (400,), generator=g),
                torch.randint(num_relations, (400,), generator=g),
                torch.randint(num_entities, (400,), generator=g),
            ],
            1,
        ),
        dim=0,
    )
    triples = triples[torch.randperm(len(triples), generator=g)]
    return KnowledgeGraph(triples[:200], triples[200:240], triples[240:290], num_entities, num_relations)


def brute_force_ranks(model, kg, split):
    """Score every candidate triple one at a time with model.score; filter with Python sets."""
    known = {tuple(t) for s in ("train", "valid", "test") for t in kg.split(s).tolist()}
    ranks = {"head": [], "tail": []}
    with torch.no_grad():
        for h, r, t in kg.split(split).tolist():
            for side in ("head", "tail"):
                cands = []
                for e in range(kg.num_entities):
                    trip = (e, r, t) if side == "head" else (h, r, e)
                    if trip == (h, r, t) or trip not in known:
                        cands.append(trip)
                scores = model.score(torch.tensor(cands)).tolist()
                true = scores[cands.index((h, r, t))]
                greater = sum(s > true for s in scores)
                equal = sum(s == true for s in scores) - 1
                ranks[side].append(1 + greater + equal / 2)
    return ranks


@pytest.mark.parametrize("name", ["distmult", "complex", "rotate", "transe", "rescal"])
@pytest.mark.parametrize("reciprocal", [False, True])
def test_evaluate_matches_brute_force(name, reciprocal):
    kg = random_kg()
    torch.manual_seed(0)
    model = build_model(name, kg, dim=8, reciprocal=reciprocal)
    if reciprocal:
        # make inverse relations differ from the forward ones so the head side really uses them
        with torch.no_grad():
            model.encoder.relation.weight[kg.num_relations :].normal_()
    got = evaluate(model, kg, "test", batch_size=7, progress=False)
    # with reciprocal relations the brute force scores (?, r, t) explicitly as (t, r + R, ?)
    ranks = brute_force_reciprocal(model, kg) if reciprocal else brute_force_ranks(model, kg, "test")
    for side in ("head", "tail"):
        expected = sum(1 / x for x in ranks[side]) / len(ranks[side])
        assert got[side]["mrr"] == pytest.approx(expected, abs=1e-6)
        assert got[side]["count"] == len(kg.test)
    both = ranks["head"] + ranks["tail"]
    assert got["mrr"] == pytest.approx(sum(1 / x for x in both) / len(both), abs=1e-6)
    assert got["mr"] == pytest.approx(sum(both) / len(both), abs=1e-4)
    assert got["hits@10"] == pytest.approx(sum(x <= 10 for x in both) / len(both))


def brute_force_reciprocal(model, kg):
    R = kg.num_relations
    known = {tuple(t) for s in ("train", "valid", "test") for t in kg.split(s).tolist()}
    ranks = {"head": [], "tail": []}
    with torch.no_grad():
        for h, r, t in kg.test.tolist():
            for side in ("head", "tail"):
                kept, rel, true_e = (t, r + R, h) if side == "head" else (h, r, t)
                cands = [
                    e
                    for e in range(kg.num_entities)
                    if e == true_e or ((e, r, t) if side == "head" else (h, r, e)) not in known
                ]
                trip = torch.tensor([[kept, rel, e] for e in cands])
                scores = model.score(trip).tolist()
                true = scores[cands.index(true_e)]
                ranks[side].append(1 + sum(s > true for s in scores) + (sum(s == true for s in scores) - 1) / 2)
    return ranks


def test_ties_count_as_mean_rank():
    # 6 entities, all scores equal; entities 4 and 5 are filtered -> 3 others tie with the target
    scores = torch.zeros(1, 6)
    rank = rank_from_scores(scores, torch.tensor([0]), torch.tensor([0, 0]), torch.tensor([4, 5]))
    assert rank.tolist() == [1 + 3 / 2]
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1, 2.0, 3.0]])
    rank = rank_from_scores(scores, torch.tensor([0]), torch.tensor([0]), torch.tensor([5]))
    # greater: 0.9 and 2.0 (3.0 filtered) -> 2; equal: entity 2 -> 1 -> rank 1 + 2 + 0.5
    assert rank.tolist() == [3.5]


def test_nan_scores_are_an_error():
    with pytest.raises(FloatingPointError):
        rank_from_scores(
            torch.tensor([[0.0, math.nan]]),
            torch.tensor([0]),
            torch.tensor([]).long(),
            torch.tensor([]).long(),
        )


def test_rank_metrics_hand_values():
    m = rank_metrics(torch.tensor([1.0, 2.0, 4.0, 20.0]))
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.25 + 0.05) / 4)
    assert m["mr"] == pytest.approx(6.75)
    assert m["hits@1"] == 0.25 and m["hits@3"] == 0.5 and m["hits@10"] == 0.75


def test_evaluate_is_chunk_size_invariant():
    kg = random_kg(seed=4)
    torch.manual_seed(1)
    model = build_model("distmult", kg, dim=6)
    a = evaluate(model, kg, "valid", batch_size=3, progress=False)
    b = evaluate(model, kg, "valid", batch_size=1000, progress=False)
    assert a["mrr"] == pytest.approx(b["mrr"], abs=1e-9)


def test_shards_partition_the_queries():
    parts = [shard(10, rank, 3) for rank in range(3)]
    assert [p.tolist() for p in parts] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert shard(10).tolist() == list(range(10))
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        shard(10, 3, 3)
    ranks = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert gather_ranks(ranks, 2) is ranks  # one process: nothing to gather


def test_evaluate_world_size_needs_a_process_group():
    kg = random_kg()
    model = build_model("distmult", kg, dim=4)
    with pytest.raises(RuntimeError, match="init_process_group"):
        evaluate(model, kg, "test", progress=False, rank=0, world_size=2)
