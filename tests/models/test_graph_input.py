import pytest
import torch
from torch_geometric.data import Data, HeteroData

from gnnns.data import KnowledgeGraph
from gnnns.models.encoders.graph_input import add_inverse_edges, as_graph, global_ids, node_degree


def _hetero(with_x: bool = True) -> HeteroData:
    data = HeteroData()
    data["person"].num_nodes = 3
    data["film"].num_nodes = 2
    data["person", "likes", "film"].edge_index = torch.tensor([[0, 2, 2], [1, 0, 1]])
    data["person", "knows", "person"].edge_index = torch.tensor([[1, 0], [2, 1]])
    data["film", "sequel", "film"].edge_index = torch.tensor([[0], [1]])
    if with_x:
        data["person"].x = torch.arange(6.0).view(3, 2)
        data["film"].x = -torch.arange(1.0, 5.0).view(2, 2)
    return data


def test_as_graph_returns_a_data_unchanged():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), edge_type=torch.tensor([1, 0]), num_nodes=3)
    assert as_graph(data) is data


def test_as_graph_rejects_a_data_without_edge_type():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=3)
    with pytest.raises(ValueError, match="edge_type"):
        as_graph(data)


def test_as_graph_rejects_a_data_without_edge_index():
    data = Data(edge_type=torch.tensor([0, 1]), num_nodes=3)
    with pytest.raises(ValueError, match="edge_index"):
        as_graph(data)


def test_as_graph_rejects_mismatched_lengths():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), edge_type=torch.tensor([0, 1, 1]), num_nodes=3)
    with pytest.raises(ValueError, match="3 entries but edge_index has 2 edges"):
        as_graph(data)


def test_as_graph_rejects_other_types():
    with pytest.raises(TypeError, match="Data or HeteroData"):
        as_graph({"edge_index": torch.zeros(2, 0, dtype=torch.long)})


def test_as_graph_flattens_hetero_data_with_offsets_and_relation_ids():
    out = as_graph(_hetero())
    # person -> ids 0..2, film -> ids 3..4; relations numbered in edge_types order.
    expected_index = torch.tensor([[0, 2, 2, 1, 0, 3], [4, 3, 4, 2, 1, 4]])
    expected_type = torch.tensor([0, 0, 0, 1, 1, 2])
    assert out.num_nodes == 5
    assert torch.equal(out.edge_index, expected_index)
    assert torch.equal(out.edge_type, expected_type)
    assert torch.equal(out.node_type, torch.tensor([0, 0, 0, 1, 1]))
    assert torch.equal(out.x, torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [-1.0, -2.0], [-3.0, -4.0]]))


def test_as_graph_numbers_hetero_data_as_knowledge_graph_from_hetero():
    data = _hetero()
    out = as_graph(data)
    triples = torch.stack([out.edge_index[0], out.edge_type, out.edge_index[1]], 1)
    kg = KnowledgeGraph.from_hetero(data)
    assert kg.num_entities == out.num_nodes
    assert sorted(map(tuple, triples.tolist())) == sorted(map(tuple, kg.train.tolist()))


def test_as_graph_drops_x_unless_every_node_type_has_it_with_one_width():
    assert as_graph(_hetero(with_x=False)).x is None
    partial = _hetero(with_x=False)
    partial["person"].x = torch.ones(3, 2)
    assert as_graph(partial).x is None
    mixed = _hetero()
    mixed["film"].x = torch.ones(2, 4)
    assert as_graph(mixed).x is None


def test_add_inverse_edges_appends_flipped_edges_with_shifted_relations():
    edge_index = torch.tensor([[0, 3, 1], [2, 0, 1]])
    edge_type = torch.tensor([1, 0, 2])
    index, types = add_inverse_edges(edge_index, edge_type, num_relations=3)
    assert torch.equal(index, torch.tensor([[0, 3, 1, 2, 0, 1], [2, 0, 1, 0, 3, 1]]))
    assert torch.equal(types, torch.tensor([1, 0, 2, 4, 3, 5]))


def test_node_degree_counts_out_and_in_edges():
    edge_index = torch.tensor([[0, 0, 1, 3, 3, 3], [1, 2, 2, 0, 0, 3]])
    expected = torch.tensor([[2, 2], [1, 1], [0, 2], [3, 1], [0, 0]])
    assert torch.equal(node_degree(edge_index, num_nodes=5), expected)


def test_global_ids_are_n_id_or_the_node_range():
    data = Data(edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([0]), num_nodes=3)
    assert torch.equal(global_ids(data), torch.tensor([0, 1, 2]))
    data.n_id = torch.tensor([7, 2, 9])
    assert torch.equal(global_ids(data), torch.tensor([7, 2, 9]))


def test_hetero_subgraph_with_per_type_n_id_is_refused():
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["a"].num_nodes = 2
    data["a"].n_id = torch.tensor([5, 7])
    data["a", "r", "a"].edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="per-type n_id"):
        as_graph(data)
