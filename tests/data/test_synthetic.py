from collections import defaultdict

import pytest
import torch

from gnnns.data import synthetic_kg
from gnnns.data.synthetic import DEFAULT_STATS, RELATIONS, TYPE_NAMES


@pytest.fixture(scope="module")
def kg():
    return synthetic_kg(seed=0)


@pytest.fixture(scope="module")
def facts(kg) -> dict[str, set[tuple[int, int]]]:
    """Every relation of the full graph (train ∪ valid ∪ test) as a set of (head, tail) pairs."""
    out = defaultdict(set)
    for h, r, t in torch.cat([kg.train, kg.valid, kg.test]).tolist():
        out[kg.relation_names[r]].add((h, t))
    return out


def compose(first: set, second: set, drop_self: bool = False) -> set:
    after = defaultdict(set)
    for b, c in second:
        after[b].add(c)
    return {(a, c) for a, b in first for c in after[b] if not (drop_self and a == c)}


def flip(pairs: set) -> set:
    return {(t, h) for h, t in pairs}


def test_same_seed_same_tensors_other_seed_other_graph(kg):
    again = synthetic_kg(seed=0)
    for split in ("train", "valid", "test"):
        assert torch.equal(kg.split(split), again.split(split))
    assert torch.equal(kg.entity_types, again.entity_types)
    other = synthetic_kg(seed=1)
    assert not torch.equal(kg.train[:100], other.train[:100])


def test_sizes_match_the_documented_defaults(kg):
    stats = kg.statistics()
    assert {key: stats[key] for key in DEFAULT_STATS} == DEFAULT_STATS
    total = stats["train"] + stats["valid"] + stats["test"]
    assert 2500 <= stats["entities"] <= 3500 and 25_000 <= total <= 40_000
    assert abs(stats["valid"] - 0.05 * total) <= 1 and abs(stats["test"] - 0.05 * total) <= 1
    assert kg.report["duplicates"] == {"train": 0, "valid": 0, "test": 0}
    assert set(kg.report["overlaps"].values()) == {0}


def test_typed_and_readable(kg):
    assert kg.type_names == list(TYPE_NAMES)
    node_type = kg.node_type
    assert node_type is not None  # exactly one type per entity
    assert torch.bincount(node_type, minlength=len(TYPE_NAMES)).min() > 0
    prefixes = dict(zip(TYPE_NAMES, ["person_", "city_", "country_", "continent_", "org_", "club_"], strict=True))
    for entity, t in enumerate(node_type.tolist()):
        assert kg.entity_names[entity].startswith(prefixes[TYPE_NAMES[t]])
    assert kg.entity_names[0] == "person_0" and kg.relation_names == list(RELATIONS)
    assert set(kg.to_hetero().node_types) == set(TYPE_NAMES)


def cardinality(pairs: set) -> str:
    heads, tails = defaultdict(int), defaultdict(int)
    for h, t in pairs:
        heads[h] += 1
        tails[t] += 1
    tph, hpt = len(pairs) / len(heads), len(pairs) / len(tails)
    return f"{'N' if hpt >= 1.5 else '1'}-{'N' if tph >= 1.5 else '1'}"


def test_every_cardinality_class(facts):
    classes = {rel: cardinality(pairs) for rel, pairs in facts.items()}
    assert set(classes.values()) == {"1-1", "1-N", "N-1", "N-N"}
    for rel in ("spouse_of", "capital_of", "ceo_of"):
        assert classes[rel] == "1-1", rel
    assert classes["employs"] == "1-N"
    for rel in ("works_for", "born_in", "lives_in", "located_in", "headquartered_in", "lives_in_country"):
        assert classes[rel] == "N-1", rel
    for rel in ("friend_of", "member_of", "parent_of", "sibling_of", "colleague_of", "grandparent_of"):
        assert classes[rel] == "N-N", rel


@pytest.mark.parametrize("relation", ["spouse_of", "sibling_of", "friend_of", "colleague_of"])
def test_symmetric_relations_are_symmetric(facts, relation):
    pairs = facts[relation]
    assert pairs and pairs == flip(pairs)
    assert all(h != t for h, t in pairs)


@pytest.mark.parametrize(("relation", "inverse"), [("parent_of", "child_of"), ("employs", "works_for")])
def test_inverse_pairs(facts, relation, inverse):
    assert facts[relation] and facts[relation] == flip(facts[inverse])


def test_compositions_hold(facts):
    assert facts["grandparent_of"] == compose(facts["parent_of"], facts["parent_of"])
    assert facts["lives_in_country"] == compose(facts["lives_in"], facts["located_in"])
    assert facts["citizen_of"] == compose(facts["born_in"], facts["located_in"])
    assert facts["colleague_of"] == compose(facts["works_for"], facts["employs"], drop_self=True)
    assert facts["sibling_of"] == compose(facts["child_of"], facts["parent_of"], drop_self=True)


def test_people_have_one_home_and_two_parents_or_none(kg, facts):
    people = {e for e, t in enumerate(kg.node_type.tolist()) if TYPE_NAMES[t] == "person"}
    for relation in ("lives_in", "born_in"):
        assert sorted(h for h, _ in facts[relation]) == sorted(people)
    parents = defaultdict(int)
    for _, child in facts["parent_of"]:
        parents[child] += 1
    assert set(parents.values()) == {2}
    home = dict(facts["lives_in"])
    assert all(home[a] == home[b] for a, b in facts["spouse_of"])  # a couple shares one home
    assert not facts["spouse_of"] & facts["sibling_of"]  # siblings never marry


def test_held_out_triples_are_implied_by_training_patterns(kg):
    train = defaultdict(set)
    for h, r, t in kg.train.tolist():
        train[kg.relation_names[r]].add((h, t))
    partner = {
        "parent_of": "child_of",
        "child_of": "parent_of",
        "employs": "works_for",
        "works_for": "employs",
    }
    partner |= {rel: rel for rel in ("spouse_of", "sibling_of", "friend_of", "colleague_of")}
    paths = {
        "grandparent_of": compose(train["parent_of"], train["parent_of"]),
        "lives_in_country": compose(train["lives_in"], train["located_in"]),
        "citizen_of": compose(train["born_in"], train["located_in"]),
    }
    implied = [
        (t, h) in train.get(partner.get(rel, ""), ()) or (h, t) in paths.get(rel, ())
        for h, r, t in kg.test.tolist()
        for rel in [kg.relation_names[r]]
    ]
    assert sum(implied) / len(implied) > 0.55


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="num_countries"):
        synthetic_kg(num_cities=3)
    with pytest.raises(ValueError, match="num_people >= 100"):
        synthetic_kg(num_people=10)
    small = synthetic_kg(num_people=300, num_orgs=40, num_clubs=10, seed=3)
    assert small.num_entities == 300 + 80 + 12 + 4 + 40 + 10
