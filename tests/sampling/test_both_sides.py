"""NegativeSampler.both_sides: every positive corrupted on its head and on its tail."""

from functools import partial

import pytest
import torch

from gnnns.sampling import DynamicSampler, Mixture, UniformSampler
from tests.graphs import random_kg

small_kg = partial(random_kg, num_entities=8, num_relations=2, n=50)


def test_each_side_replaces_its_own_entity_and_keeps_the_rest():
    kg = small_kg(seed=2)
    pos = kg.train[:20]
    head, tail = UniformSampler(kg).both_sides(pos, 5, num_head_negatives=3)
    assert head.entities.shape == (20, 3) and tail.entities.shape == (20, 5)
    assert bool(head.corrupt_head.all()) and not bool(tail.corrupt_head.any())
    heads, tails = head.triples(pos), tail.triples(pos)
    # head corruptions keep (r, t) and put the drawn entity first; tail corruptions keep (h, r)
    assert torch.equal(heads[:, :, 1:], pos[:, None, 1:].expand(-1, 3, -1))
    assert torch.equal(heads[:, :, 0], head.entities)
    assert torch.equal(tails[:, :, :2], pos[:, None, :2].expand(-1, 5, -1))
    assert torch.equal(tails[:, :, 2], tail.entities)


def test_head_count_defaults_to_the_tail_count():
    kg = small_kg()
    head, tail = UniformSampler(kg).both_sides(kg.train[:4], 6)
    assert head.entities.shape == tail.entities.shape == (4, 6)


def test_both_sides_draw_uniformly_on_each_side():
    kg = small_kg(seed=4)
    torch.manual_seed(0)
    pos = kg.train[:1].expand(4000, -1)
    head, tail = UniformSampler(kg).both_sides(pos, 2)
    for negatives in (head, tail):
        share = torch.bincount(negatives.entities.flatten(), minlength=8).float() / negatives.entities.numel()
        assert torch.allclose(share, torch.full((8,), 1 / 8), atol=0.01)


def test_filtering_holds_on_both_sides():
    kg = small_kg(seed=1)
    torch.manual_seed(0)
    head, tail = UniformSampler(kg, filtered=True, max_rounds=50).both_sides(kg.train, 8)
    index = kg.train_index()
    assert not bool(index.contains(head.triples(kg.train)).any())
    assert not bool(index.contains(tail.triples(kg.train)).any())


def test_score_based_sampler_ranks_candidates_of_the_given_side():
    kg = small_kg(seed=3)
    pos = kg.train[:10]
    weight = torch.randn(kg.num_entities, generator=torch.Generator().manual_seed(0))
    sides = []

    def scorer(positives, entities, corrupt_head):  # a candidate's score is its own weight
        sides.append(corrupt_head.clone())
        return weight[entities]

    # 200 candidates over 8 entities hold each entity at least twice (failing that has chance
    # below 1e-9), so "top" keeps the best-weighted entity other than the one the side replaces,
    # twice.
    torch.manual_seed(0)
    head, tail = DynamicSampler(kg, num_candidates=200).both_sides(pos, 2, scorer=scorer)
    assert [bool(s.all()) for s in sides] == [True, False] and not bool(sides[1].any())
    order = torch.argsort(weight, descending=True).tolist()
    for negatives, true in ((head, pos[:, 0]), (tail, pos[:, 2])):
        for row, entity in zip(negatives.entities.tolist(), true.tolist(), strict=True):
            assert row == [next(e for e in order if e != entity)] * 2


def test_wrapped_samplers_take_the_given_sides():
    kg = small_kg(seed=3)
    mixed = Mixture({"a": UniformSampler(kg), "b": UniformSampler(kg)}, [0.5, 0.5])
    head, tail = mixed.both_sides(kg.train[:10], 4, num_head_negatives=2)
    assert head.entities.shape == (10, 2) and bool(head.corrupt_head.all())
    assert tail.entities.shape == (10, 4) and not bool(tail.corrupt_head.any())


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_counts_are_refused(bad):
    kg = small_kg()
    with pytest.raises(ValueError, match="num_negatives"):
        UniformSampler(kg).both_sides(kg.train[:3], 4, num_head_negatives=bad)
    with pytest.raises(ValueError, match="num_negatives"):
        UniformSampler(kg).both_sides(kg.train[:3], bad)
