import pytest
import torch
from torch_geometric.data import HeteroData

from gnnns.data import KnowledgeGraph


def small_hetero() -> HeteroData:
    data = HeteroData()
    data["author"].num_nodes = 3
    data["paper"].num_nodes = 4
    data["author", "writes", "paper"].edge_index = torch.tensor([[0, 1, 2, 2], [0, 1, 1, 3]])
    data["paper", "cites", "paper"].edge_index = torch.tensor([[1, 3], [0, 2]])
    data["paper", "about", "author"].edge_index = torch.tensor([[2], [0]])
    return data


def test_to_pyg_fields():
    train = torch.tensor([[0, 1, 2], [2, 0, 3], [3, 1, 0]])
    kg = KnowledgeGraph(train, num_entities=5, num_relations=2)
    data = kg.to_pyg()
    assert torch.equal(data.edge_index, torch.tensor([[0, 2, 3], [2, 3, 0]]))
    assert torch.equal(data.edge_type, torch.tensor([1, 0, 1]))
    assert data.num_nodes == 5
    assert "node_type" not in data


def test_to_pyg_node_type_only_with_one_type_per_entity():
    train = torch.tensor([[0, 0, 1]])
    one_each = KnowledgeGraph(train, num_entities=3, entity_types=torch.tensor([[0, 1], [1, 0], [2, 1]]))
    assert torch.equal(one_each.to_pyg().node_type, torch.tensor([1, 0, 1]))
    two_for_one = KnowledgeGraph(train, num_entities=3, entity_types=torch.tensor([[0, 1], [0, 0], [2, 1]]))
    assert "node_type" not in two_for_one.to_pyg()


def test_from_hetero_gives_hand_computed_global_ids():
    kg = KnowledgeGraph.from_hetero(small_hetero())
    # authors are 0..2, papers 3..6; relations in edge-type order
    expected = torch.tensor(
        [[0, 0, 3], [1, 0, 4], [2, 0, 4], [2, 0, 6], [4, 1, 3], [6, 1, 5], [5, 2, 0]],
    )
    assert torch.equal(kg.train, expected)
    assert kg.num_entities == 7 and kg.num_relations == 3
    assert torch.equal(kg.node_type, torch.tensor([0, 0, 0, 1, 1, 1, 1]))
    assert kg.type_names == ["author", "paper"]


def test_from_hetero_to_hetero_round_trip():
    data = small_hetero()
    valid = HeteroData()
    valid["author", "writes", "paper"].edge_index = torch.tensor([[1], [2]])
    kg = KnowledgeGraph.from_hetero(data, valid=valid)
    assert torch.equal(kg.valid, torch.tensor([[1, 0, 5]]))
    back = kg.to_hetero()
    assert set(back.node_types) == set(data.node_types)
    for node_type in data.node_types:
        assert back[node_type].num_nodes == data[node_type].num_nodes
    assert set(back.edge_types) == set(data.edge_types)
    for edge_type in data.edge_types:
        assert torch.equal(back[edge_type].edge_index, data[edge_type].edge_index)
    assert torch.equal(kg.to_hetero("valid")["author", "writes", "paper"].edge_index, torch.tensor([[1], [2]]))


def test_from_hetero_refuses_what_it_would_misread():
    data = small_hetero()  # 3 authors, 4 papers
    stray = HeteroData()
    stray["paper", "cites", "author"].edge_index = torch.tensor([[0], [1]])  # not a training edge type
    with pytest.raises(ValueError, match=r"valid has edge type\(s\) \[\('paper', 'cites', 'author'\)\]"):
        KnowledgeGraph.from_hetero(data, valid=stray)
    past_end = HeteroData()
    past_end["author", "writes", "paper"].edge_index = torch.tensor([[3], [0]])  # author 3 would be paper 0
    with pytest.raises(ValueError, match=r"source ids 3..3; expected ids in \[0, 3\) of node type 'author'"):
        KnowledgeGraph.from_hetero(data, test=past_end)


def test_to_hetero_keeps_relations_whose_short_names_collide_apart():
    # Relation 0 came from from_hetero ('a__likes__b'), relation 1 is a plain 'likes' between the
    # same types: both would be ('a', 'likes', 'b'), and one would overwrite the other's edges.
    types = torch.tensor([[0, 0], [1, 0], [2, 1], [3, 1]])  # (entity, type) pairs
    triples = torch.tensor([[0, 0, 2], [1, 1, 3], [0, 1, 3]])
    kg = KnowledgeGraph(triples, relation_names=["a__likes__b", "likes"], entity_types=types, type_names=["a", "b"])
    data = kg.to_hetero()
    assert torch.equal(data["a", "a__likes__b", "b"].edge_index, torch.tensor([[0], [0]]))
    assert torch.equal(data["a", "likes", "b"].edge_index, torch.tensor([[1, 0], [1, 1]]))
    assert sum(data[et].edge_index.size(1) for et in data.edge_types) == 3
    twins = KnowledgeGraph(triples, relation_names=["likes", "likes"], entity_types=types, type_names=["a", "b"])
    with pytest.raises(ValueError, match="relations 0 and 1 are both named 'likes' between 'a' and 'b'"):
        twins.to_hetero()


def test_to_hetero_needs_one_type_per_entity():
    with pytest.raises(ValueError, match="exactly one type"):
        KnowledgeGraph(torch.tensor([[0, 0, 1]])).to_hetero()


def test_unseen_entities_hand_case():
    train = torch.tensor([[0, 0, 1], [1, 0, 2]])
    valid = torch.tensor([[2, 0, 3]])  # 3 is unseen
    test = torch.tensor([[4, 0, 0], [3, 0, 4]])  # 4 is unseen; 5 occurs nowhere
    kg = KnowledgeGraph(train, valid, test, num_entities=6)
    assert kg.unseen_entities.tolist() == [3, 4]
    assert kg.statistics()["unseen_entities"] == 2


def test_rejects_ids_beyond_the_declared_counts():
    with pytest.raises(ValueError, match="beyond"):
        KnowledgeGraph(torch.tensor([[0, 0, 5]]), num_entities=5)
