"""What every sampler does with unusual requests: narrow integer ids, float ids, empty batches."""

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.models import build_model
from gnnns.sampling import SAMPLERS, build_sampler
from tests.graphs import random_kg

SPECS = {
    **{name: {} for name in SAMPLERS},
    "mixture": {"components": {"uniform": 0.5, "khop": 0.5}},
    "curriculum": {"easy": "uniform", "hard": "dynamic"},
}
# (69000, 39, ?) has 2,000 known tails; its keys ((h R + r) E + t ~ 1.9e11) do not fit in int32.
# 2,000 more random triples of relation 39 give the typed sampler other candidates.
E, R, HEAD, REL = 70_000, 40, 69_000, 39


def wide_kg() -> KnowledgeGraph:
    g = torch.Generator().manual_seed(0)
    tails = torch.randperm(E, generator=g)[:2000]
    ours = torch.stack([torch.full_like(tails, HEAD), torch.full_like(tails, REL), tails], 1)
    others = torch.stack([torch.randint(HEAD, (2000,), generator=g), torch.full_like(tails, REL)], 1)
    others = torch.cat([others, torch.randint(E, (2000, 1), generator=g)], 1)
    return KnowledgeGraph(torch.cat([ours, others]).unique(dim=0), num_entities=E, num_relations=R)


@pytest.mark.parametrize("name", ["uniform", "bernoulli", "typed", "khop"])
def test_int32_ids_filter_known_triples_as_int64_ids_do(name):
    kg = wide_kg()
    known = set(map(tuple, kg.train.tolist()))
    sampler = build_sampler(name, kg, filtered=True, max_rounds=50)
    positives = kg.train[kg.train[:, 0] == HEAD][:256]
    answers = {}
    for dtype in (torch.int64, torch.int32):
        torch.manual_seed(1)
        heads, tails = sampler.both_sides(positives.to(dtype), 32, 16)
        assert heads.entities.dtype == tails.entities.dtype == torch.int64
        answers[dtype] = torch.cat([heads.entities, tails.entities], 1)
        left = 0  # brute force over the corrupted triples
        for (h, r, t), new_heads, new_tails in zip(
            positives.tolist(), heads.entities.tolist(), tails.entities.tolist(), strict=True
        ):
            left += sum((e, r, t) in known for e in new_heads) + sum((h, r, e) in known for e in new_tails)
        assert left == 0, f"{name}, {dtype}: {left} known triples left"
    assert torch.equal(answers[torch.int64], answers[torch.int32])


def test_int32_ids_are_encoded_without_wrapping():
    kg = wide_kg()
    ours = kg.train[kg.train[:, 0] == HEAD][:5]
    for dtype in (torch.int64, torch.int32):
        found = kg.train_index().contains_corrupted(
            ours.to(dtype), ours[:, 2:].to(dtype), torch.zeros(5, dtype=torch.bool)
        )
        assert found.flatten().tolist() == [True] * 5, dtype
        assert kg.train_index().contains(ours.to(dtype)).tolist() == [True] * 5, dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_non_integer_ids_are_refused(dtype):
    sampler = build_sampler("uniform", random_kg())
    with pytest.raises(TypeError, match="integer ids"):
        sampler(torch.zeros(4, 3, dtype=dtype), 2)


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("filtered", [False, True])
def test_an_empty_batch_gets_no_negatives(name, filtered):
    kg = random_kg()
    options = dict(SPECS[name])
    if name in SAMPLERS:
        options["filtered"] = filtered
    sampler = build_sampler(name, kg, **options)
    model = build_model("distmult", kg, 8)
    empty = kg.train[:0]
    negatives = sampler(empty, 5, scorer=model.score_candidates)
    assert negatives.entities.shape == (0, 5) and negatives.entities.dtype == torch.int64
    assert negatives.corrupt_head.shape == (0,)
    heads, tails = sampler.both_sides(empty, 3, 2, scorer=model.score_candidates)
    assert heads.entities.shape == (0, 2) and tails.entities.shape == (0, 3)
    # The same sampler still answers a real batch afterwards.
    assert sampler(kg.train[:4], 5, scorer=model.score_candidates).entities.shape == (4, 5)
