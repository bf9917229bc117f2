from collections import Counter, defaultdict

import pytest
import torch

from gnnns.data import KnowledgeGraph, synthetic_kg
from gnnns.sampling.typed import TypedSampler

# Types of entities 0..13: 0..3 person, 4..7 city, 8..11 org; 3 is also a city, 9 also a person,
# 12 is the only entity of type 3, and 13 has no type. The person group {0, 1, 2, 3, 9} is not a
# run of consecutive ids, so batches touching it take the lookup path.
TYPES = {0: {0}, 1: {0}, 2: {0}, 3: {0, 1}, 4: {1}, 5: {1}, 6: {1}, 7: {1}, 8: {2}, 9: {2, 0}, 10: {2}, 11: {2}}
TYPES[12] = {3}


def typed_kg() -> KnowledgeGraph:
    pairs = torch.tensor([(e, t) for e, types in TYPES.items() for t in sorted(types)])
    triples = torch.tensor([[0, 0, 4], [1, 0, 5], [3, 0, 6], [9, 1, 8], [2, 1, 10], [12, 2, 13], [11, 0, 7]])
    return KnowledgeGraph(triples, num_entities=14, num_relations=3, entity_types=pairs)


def members(type_id: int) -> set[int]:
    return {e for e, types in TYPES.items() if type_id in types}


def test_shapes_ranges_and_source():
    kg = typed_kg()
    sampler = TypedSampler(kg)
    assert sampler.source == "types"
    assert TypedSampler(kg, use_types=False).source == "domain_range"
    neg = sampler(kg.train, 9)
    assert neg.entities.shape == (7, 9) and neg.entities.dtype == torch.long and neg.weight is None
    assert int(neg.entities.min()) >= 0 and int(neg.entities.max()) < kg.num_entities
    sides = torch.tensor([True, False, True, False, True, False, True])
    assert torch.equal(sampler.sample(kg.train, 2, sides).corrupt_head, sides)
    with pytest.raises(ValueError, match="entity_types"):
        TypedSampler(KnowledgeGraph(kg.train, num_entities=14), use_types=True)


def test_multi_type_entity_draws_from_each_of_its_types_in_proportion():
    torch.manual_seed(0)
    sampler = TypedSampler(typed_kg())
    # Replace head 3 (person and city) of (3, 0, 6): half the rows draw a person other than 3
    # (0, 1, 2, 9: 1/8 each), half a city other than 3 (4, 5, 6, 7: 1/8 each).
    pos = torch.tensor([[3, 0, 6]]).repeat(4000, 1)
    entities = sampler.sample(pos, 2, torch.ones(4000, dtype=torch.bool)).entities
    counts = Counter(entities.flatten().tolist())
    assert set(counts) == (members(0) | members(1)) - {3}
    for entity in counts:
        assert abs(counts[entity] / entities.numel() - 1 / 8) < 0.015  # sd ~0.0026 over 8000 draws


def test_every_candidate_shares_a_type_with_the_replaced_entity():
    torch.manual_seed(1)
    kg = typed_kg()
    sampler = TypedSampler(kg)
    pos = kg.train[:5].repeat(40, 1)  # rows whose replaced entity has a type with other members
    sides = torch.rand(len(pos)) < 0.5
    entities = sampler.sample(pos, 16, sides).entities
    for (h, _, t), head, row in zip(pos.tolist(), sides.tolist(), entities.tolist(), strict=True):
        true = h if head else t
        allowed = set().union(*(members(ty) for ty in TYPES[true])) - {true}
        assert set(row) <= allowed
    assert sampler.epoch_stats() == {"fallback_rate": 0.0}


def test_sole_member_and_untyped_entities_fall_back_to_uniform():
    torch.manual_seed(0)
    sampler = TypedSampler(typed_kg())
    # (12, 2, 13): head 12 is alone in type 3, tail 13 has no type; (0, 0, 4) is fine.
    pos = torch.tensor([[12, 2, 13], [12, 2, 13], [0, 0, 4]])
    sides = torch.tensor([True, False, False])
    entities = sampler.sample(pos, 300, sides).entities
    assert 12 not in entities[0].tolist() and 13 not in entities[1].tolist()
    assert len(set(entities[0].tolist())) == 13  # uniform over the 13 others: all hit in 300 draws
    assert set(entities[2].tolist()) <= members(1) - {4}
    assert sampler.epoch_stats()["fallback_rate"] == pytest.approx(2 / 3)


def test_domain_and_range_without_types():
    kg = synthetic_kg()
    no_types = KnowledgeGraph(kg.train, num_entities=kg.num_entities, num_relations=kg.num_relations)
    sampler = TypedSampler(no_types)
    assert sampler.source == "domain_range"
    heads, tails = defaultdict(set), defaultdict(set)
    for h, r, t in kg.train.tolist():
        heads[r].add(h)
        tails[r].add(t)
    torch.manual_seed(0)
    pos = kg.train[torch.randint(len(kg.train), (300,))]
    neg = sampler(pos, 20)
    for (h, r, t), head, row in zip(pos.tolist(), neg.corrupt_head.tolist(), neg.entities.tolist(), strict=True):
        group, true = (heads[r], h) if head else (tails[r], t)
        assert set(row) <= group - {true}


def test_domain_range_fallback_when_the_group_is_only_the_true_entity():
    # Relation 1 has a single head (0) and tails 1..3: replacing its head leaves no other candidate.
    triples = torch.tensor([[0, 1, 1], [0, 1, 2], [0, 1, 3], [4, 0, 5], [6, 0, 7]])
    sampler = TypedSampler(KnowledgeGraph(triples, num_entities=8, num_relations=2))
    torch.manual_seed(0)
    entities = sampler.sample(triples[:2], 200, torch.tensor([True, False])).entities
    assert 0 not in entities[0].tolist() and len(set(entities[0].tolist())) == 7
    assert set(entities[1].tolist()) == {1, 3}  # tails of relation 1 but the true tail 2
    assert sampler.epoch_stats()["fallback_rate"] == 0.5


def test_filtered_leaves_no_known_positive():
    # Entities 0..7 share type 0; 1 and 2 are known heads of (?, 0, 8), so unfiltered draws for the
    # head of (0, 0, 8) hit a known triple 2 times in 7, and 11 draws all known is (2/7)**11.
    triples = torch.tensor([[0, 0, 8], [1, 0, 8], [2, 0, 8], [3, 1, 4]])
    types = torch.tensor([[e, 0] for e in range(8)] + [[8, 1]])
    kg = KnowledgeGraph(triples, num_entities=9, num_relations=2, entity_types=types)
    torch.manual_seed(0)
    pos = torch.tensor([[0, 0, 8]]).repeat(50, 1)
    head = torch.ones(50, dtype=torch.bool)
    sampler = TypedSampler(kg, filtered=True)
    assert set(sampler.sample(pos, 10, head).entities.flatten().tolist()) == {3, 4, 5, 6, 7}
    assert sampler.epoch_stats()["false_negatives_left"] == 0.0
    loose = TypedSampler(kg).sample(pos, 10, head).entities
    assert set(loose.flatten().tolist()) == {1, 2, 3, 4, 5, 6, 7}


def test_state_dict_round_trip_gives_the_same_draws():
    kg = synthetic_kg()
    first, second = TypedSampler(kg), TypedSampler(kg)
    second.load_state_dict(first.state_dict())
    pos = kg.train[:256]
    torch.manual_seed(3)
    a = first(pos, 32)
    torch.manual_seed(3)
    b = second(pos, 32)
    assert torch.equal(a.entities, b.entities) and torch.equal(a.corrupt_head, b.corrupt_head)


def test_hetero_node_types_are_kept():
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["user"].num_nodes = 5
    data["item"].num_nodes = 7
    data["user", "buys", "item"].edge_index = torch.tensor([[0, 1, 2, 3, 4], [0, 2, 4, 6, 1]])
    data["item", "similar", "item"].edge_index = torch.tensor([[0, 1, 2], [3, 4, 5]])
    kg = KnowledgeGraph.from_hetero(data)
    torch.manual_seed(0)
    sampler = TypedSampler(kg)
    neg = sampler(kg.train.repeat(20, 1), 12)
    node_type = kg.node_type
    true = torch.where(neg.corrupt_head, kg.train.repeat(20, 1)[:, 0], kg.train.repeat(20, 1)[:, 2])
    assert torch.equal(node_type[neg.entities], node_type[true].unsqueeze(1).expand(-1, 12))
    assert not bool((neg.entities == true.unsqueeze(1)).any())


@pytest.mark.parametrize("use_types", [True, False])
def test_synthetic_batch_is_vectorised(use_types):
    kg = synthetic_kg()
    sampler = TypedSampler(kg, use_types=use_types)
    pos = kg.train[:1024]
    neg = sampler(pos, 128)
    assert neg.entities.shape == (1024, 128)
    true = torch.where(neg.corrupt_head, pos[:, 0], pos[:, 2])
    assert not bool((neg.entities == true.unsqueeze(1)).any())
    if use_types:
        assert torch.equal(kg.node_type[neg.entities], kg.node_type[true].unsqueeze(1).expand(-1, 128))
