from collections import defaultdict
from functools import partial

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.sampling import (
    BernoulliSampler,
    Negatives,
    UniformSampler,
    bernoulli_head_probability,
    build_sampler,
)
from tests.graphs import random_kg

small_kg = partial(random_kg, num_entities=30, num_relations=4, n=300)


@pytest.mark.parametrize("cls", [UniformSampler, BernoulliSampler])
def test_shapes_and_ranges(cls):
    kg = small_kg()
    sampler = cls(kg)
    neg = sampler(kg.train[:50], 7)
    assert isinstance(neg, Negatives)
    assert neg.entities.shape == (50, 7) and neg.entities.dtype == torch.long
    assert neg.corrupt_head.shape == (50,) and neg.corrupt_head.dtype == torch.bool
    assert int(neg.entities.min()) >= 0 and int(neg.entities.max()) < kg.num_entities
    assert neg.weight is None


def test_negatives_triples_replace_the_chosen_side():
    pos = torch.tensor([[1, 0, 2], [3, 1, 4]])
    neg = Negatives(torch.tensor([[7, 8], [9, 5]]), torch.tensor([True, False]))
    expected = torch.tensor([[[7, 0, 2], [8, 0, 2]], [[3, 1, 9], [3, 1, 5]]])
    assert torch.equal(neg.triples(pos), expected)


def test_bernoulli_probability_matches_hand_counts():
    # relation 0: one head with three tails -> tph = 3, hpt = 1 -> p(head) = 3/4
    # relation 1: three heads into one tail -> tph = 1, hpt = 3 -> p(head) = 1/4
    # relation 2: (0,2,1), (0,2,2), (3,2,1): tph = 3/2, hpt = 3/2 -> 1/2
    triples = torch.tensor(
        [[0, 0, 1], [0, 0, 2], [0, 0, 3], [1, 1, 0], [2, 1, 0], [3, 1, 0], [0, 2, 1], [0, 2, 2], [3, 2, 1]]
    )
    prob = bernoulli_head_probability(triples, num_relations=4)
    assert torch.allclose(prob, torch.tensor([0.75, 0.25, 0.5, 0.5]))


def test_bernoulli_rates_against_brute_force_counts():
    kg = small_kg(seed=3, num_entities=12, num_relations=3, n=200)
    tails, heads = defaultdict(set), defaultdict(set)
    for h, r, t in kg.train.tolist():
        tails[(h, r)].add(t)
        heads[(r, t)].add(h)
    for r in range(3):
        tph = sum(len(v) for (h, rr), v in tails.items() if rr == r) / sum(1 for (_, rr) in tails if rr == r)
        hpt = sum(len(v) for (rr, t), v in heads.items() if rr == r) / sum(1 for (rr, _) in heads if rr == r)
        expected = tph / (tph + hpt)
        assert abs(float(bernoulli_head_probability(kg.train, 3)[r]) - expected) < 1e-6


def test_bernoulli_sampler_corrupts_heads_at_the_rate():
    triples = torch.tensor([[0, 0, t] for t in range(1, 10)])  # one-to-many: tph = 9, hpt = 1
    kg = KnowledgeGraph(triples, num_entities=10, num_relations=1)
    torch.manual_seed(0)
    sampler = BernoulliSampler(kg)
    pos = triples[torch.zeros(20000, dtype=torch.long)]
    rate = sampler(pos, 1).corrupt_head.float().mean().item()
    assert abs(rate - 0.9) < 0.01
    assert abs(UniformSampler(kg)(pos, 1).corrupt_head.float().mean().item() - 0.5) < 0.015


def test_filtering_leaves_no_known_positive():
    # dense graph: about a third of all (h, r, t) are true, so unfiltered draws hit positives
    # often, while every query still has unknown replacements to find
    kg = small_kg(seed=1, num_entities=8, num_relations=2, n=50)
    per_query = torch.unique(kg.train[:, :2], dim=0, return_counts=True)[1]
    assert int(per_query.max()) < 8
    torch.manual_seed(0)
    sampler = UniformSampler(kg, filtered=True, max_rounds=50)
    neg = sampler(kg.train, 16)
    known = kg.train_index().contains(neg.triples(kg.train))
    assert not bool(known.any())
    assert sampler.stats["false_negatives_left"] == 0
    unfiltered = UniformSampler(kg)(kg.train, 16)
    assert bool(kg.train_index().contains(unfiltered.triples(kg.train)).any())


def test_state_dict_round_trip_and_registry():
    kg = small_kg()
    a = build_sampler("bernoulli", kg)
    b = BernoulliSampler(small_kg(seed=9))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.head_prob, b.head_prob)
    with pytest.raises(ValueError, match="unknown sampler"):
        build_sampler("nope", kg)
