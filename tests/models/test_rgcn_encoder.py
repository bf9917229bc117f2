import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.nn import RGCNConv

from gnnns.data import KnowledgeGraph
from gnnns.models.encoders.rgcn import RGCNEncoder
from gnnns.models.encoders.rgcn_conv import GroupedRGCNConv

# 5 entities, 2 relations, (head, relation, tail). Entities 0 and 3 only have outgoing edges;
# node 1 has two in-edges of relation 0, so the mean over them matters.
TRIPLES = [(0, 0, 1), (0, 0, 2), (3, 0, 1), (1, 1, 2), (4, 1, 2), (3, 1, 4)]
NUM_RELATIONS = 2


def _graph(triples=TRIPLES, num_nodes=5) -> Data:
    t = torch.tensor(triples)
    return Data(edge_index=t[:, [0, 2]].t().contiguous(), edge_type=t[:, 1], num_nodes=num_nodes)


def _random_triples(num_entities: int, num_relations: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    heads, tails = torch.randint(num_entities, (2, n), generator=g)
    return torch.stack([heads, torch.randint(num_relations, (n,), generator=g), tails], 1)


def _relation_weights(conv: GroupedRGCNConv) -> list[torch.Tensor]:
    """W_r ([in, out], applied as x @ W_r) rebuilt from the layer's bases or blocks."""
    in_dim, out_dim = conv.in_channels, conv.out_channels
    weights = []
    for r in range(conv.num_relations):
        if conv.num_bases is not None:
            w = torch.zeros(in_dim, out_dim)
            for b in range(conv.num_bases):
                w = w + conv.comp[r, b] * conv.weight[b]
        elif conv.num_blocks is not None:
            w = torch.zeros(in_dim, out_dim)
            bi, bo = in_dim // conv.num_blocks, out_dim // conv.num_blocks
            for k in range(conv.num_blocks):
                w[k * bi : (k + 1) * bi, k * bo : (k + 1) * bo] = conv.weight[r, k]
        else:
            w = conv.weight[r]
        weights.append(w)
    return weights


def _with_inverses(triples, num_relations):
    return [(h, r, t) for h, r, t in triples] + [(t, r + num_relations, h) for h, r, t in triples]


# The hand graph's edges with their inverses, (source, relation, target).
EDGES = _with_inverses(TRIPLES, NUM_RELATIONS)


def _reference_layer(conv, x, edges, keep_root=None):
    """The R-GCN equation written out over ``edges`` (source, relation, target), inverses included:
    the self-connection (where kept) plus, per relation, the mean of the transformed sources."""
    weights = _relation_weights(conv)
    rows = []
    for i in range(x.size(0)):
        row = x[i] @ conv.root if keep_root is None or keep_root[i] else torch.zeros(conv.out_channels)
        for r in range(conv.num_relations):
            sources = [j for j, rel, t in edges if t == i and rel == r]
            if sources:
                total = torch.zeros(conv.out_channels)
                for j in sources:
                    total = total + x[j] @ weights[r]
                row = row + total / len(sources)
        rows.append(row + conv.bias)
    return torch.stack(rows)


def _encoder(**kwargs) -> RGCNEncoder:
    torch.manual_seed(0)
    defaults = dict(num_layers=1, edge_dropout=0.0, self_loop_dropout=0.0)
    return RGCNEncoder(5, NUM_RELATIONS, 4, 3, **{**defaults, **kwargs}).eval()


@pytest.mark.parametrize("decomposition", [{"num_bases": 2}, {"num_blocks": 2}, {}])
def test_one_layer_matches_the_equation_by_hand(decomposition):
    encoder = _encoder(**decomposition)
    ent, rel = encoder(_graph())
    expected = _reference_layer(encoder.convs[0], encoder.entity.weight, EDGES)
    torch.testing.assert_close(ent, expected, atol=1e-6, rtol=1e-5)
    assert rel.shape == (2, 3)


def test_two_layers_apply_relu_between_and_nothing_after():
    encoder = _encoder(num_layers=2, num_bases=2)
    ent, _ = encoder(_graph())
    hidden = _reference_layer(encoder.convs[0], encoder.entity.weight, EDGES).relu()
    expected = _reference_layer(encoder.convs[1], hidden, EDGES)
    torch.testing.assert_close(ent, expected, atol=1e-6, rtol=1e-5)
    assert (ent < 0).any()


def test_a_node_with_only_outgoing_edges_hears_its_tails_through_inverse_relations():
    encoder = _encoder(num_bases=2)
    ent, _ = encoder(_graph())
    conv, x = encoder.convs[0], encoder.entity.weight
    w_inverse_0 = _relation_weights(conv)[0 + NUM_RELATIONS]
    # Node 0 is the head of (0, r0, 1) and (0, r0, 2): it hears 1 and 2 under relation r0 + R.
    expected = x[0] @ conv.root + (x[1] @ w_inverse_0 + x[2] @ w_inverse_0) / 2 + conv.bias
    torch.testing.assert_close(ent[0], expected, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(ent[0], x[0] @ conv.root + conv.bias, atol=1e-4)


def test_hetero_data_gives_the_embeddings_of_the_equivalent_data():
    hetero = HeteroData()
    hetero["person"].num_nodes = 3
    hetero["film"].num_nodes = 2
    hetero["person", "likes", "film"].edge_index = torch.tensor([[0, 1, 2], [0, 0, 1]])
    hetero["film", "sequel", "film"].edge_index = torch.tensor([[0], [1]])
    hetero["person", "knows", "person"].edge_index = torch.tensor([[2], [0]])
    kg = KnowledgeGraph.from_hetero(hetero)
    torch.manual_seed(0)
    encoder = RGCNEncoder(kg.num_entities, kg.num_relations, 4, 3, num_bases=2, num_layers=2).eval()
    from_hetero, _ = encoder(hetero)
    from_data, _ = encoder(_graph(kg.train.tolist(), kg.num_entities))
    torch.testing.assert_close(from_hetero, from_data)
    assert kg.num_relations == 3 and len(kg.train) == 5


@pytest.mark.parametrize("decomposition", [{"num_bases": 3}, {"num_blocks": 2}])
def test_inference_in_chunks_equals_forward_in_eval_mode(decomposition):
    triples = _random_triples(40, 3, 150, seed=1)
    torch.manual_seed(0)
    encoder = RGCNEncoder(40, 3, 6, 5, hidden_dim=8, num_layers=2, dropout=0.5, **decomposition)
    graph = _graph(triples.tolist(), 40)
    encoder.train()  # inference is eval whatever the mode
    chunked, rel = encoder.inference(graph, chunk_size=7)
    encoder.eval()
    full, _ = encoder(graph)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5)
    assert not chunked.requires_grad and not rel.requires_grad
    small, _ = _encoder(num_bases=2).inference(_graph(), chunk_size=2)
    torch.testing.assert_close(small, _encoder(num_bases=2)(_graph())[0], atol=1e-5, rtol=1e-5)


def test_edge_dropout_drops_the_configured_shares_independently_and_only_in_training():
    m, num_relations = 4000, 3
    g = torch.Generator().manual_seed(2)
    # Distinct heads make every edge and its inverse identifiable.
    edge_index = torch.stack([torch.arange(m), torch.arange(m) + m])
    relation = torch.randint(num_relations, (m,), generator=g)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    edge_type = torch.cat([relation, relation + num_relations])
    encoder = RGCNEncoder(2 * m, num_relations, 4, 4, edge_dropout=0.4, self_loop_dropout=0.2)
    torch.manual_seed(3)
    kept_index, kept_type, root_mask = encoder.drop_edges(edge_index, edge_type, 2 * m)
    # Binomial standard deviations: 0.0055 for 8000 edges, 0.0063 for 4000 nodes; 5 sigma tolerances.
    assert kept_type.numel() / (2 * m) == pytest.approx(0.6, abs=0.03)
    assert root_mask.float().mean().item() == pytest.approx(0.8, abs=0.03)
    original = set(kept_index[0, kept_type < num_relations].tolist())
    inverse = set(kept_index[1, kept_type >= num_relations].tolist())
    # Independent draws keep both directions of an edge with probability 0.36, not 0.6.
    assert len(original & inverse) / m == pytest.approx(0.36, abs=0.04)
    # Kept edges keep their own relation: originals (heads < m) r, inverses r + R.
    is_original = kept_index[0] < m
    assert torch.equal(is_original, kept_type < num_relations)
    assert torch.equal(kept_type[is_original], relation[kept_index[0, is_original]])
    assert torch.equal(kept_type[~is_original], relation[kept_index[1, ~is_original]] + num_relations)

    encoder.eval()
    index, types, mask = encoder.drop_edges(edge_index, edge_type, 2 * m)
    assert index is edge_index and types is edge_type and mask is None


def test_training_pass_follows_the_equation_on_the_edges_that_remain():
    encoder = _encoder(num_bases=2, edge_dropout=0.5, self_loop_dropout=0.5).train()
    graph = _graph()
    torch.manual_seed(5)
    edge_index = torch.cat([graph.edge_index, graph.edge_index.flip(0)], 1)
    edge_type = torch.cat([graph.edge_type, graph.edge_type + NUM_RELATIONS])
    kept_index, kept_type, root_mask = encoder.drop_edges(edge_index, edge_type, 5)
    torch.manual_seed(5)
    ent, _ = encoder(graph)
    # The kept edges, inverses included, as (source, relation, target): the reference below uses
    # exactly these, so c_{i,r} counts the edges that remain.
    kept = [(h, r, t) for (h, t), r in zip(kept_index.t().tolist(), kept_type.tolist(), strict=True)]
    expected = _reference_layer(encoder.convs[0], encoder.entity.weight, kept, keep_root=root_mask.tolist())
    torch.testing.assert_close(ent, expected, atol=1e-6, rtol=1e-5)
    assert 0 < kept_type.numel() < 12 and 0 < int(root_mask.sum()) < 5  # the draw did drop some of both


def test_no_dropout_in_eval_mode():
    encoder = _encoder(num_bases=2, edge_dropout=0.9, self_loop_dropout=0.9)
    first, _ = encoder(_graph())
    second, _ = encoder(_graph())
    assert torch.equal(first, second)
    expected = _reference_layer(encoder.convs[0], encoder.entity.weight, EDGES)
    torch.testing.assert_close(first, expected, atol=1e-6, rtol=1e-5)


def test_subgraph_rows_follow_n_id():
    triples = _random_triples(30, 2, 90, seed=4)
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(0)
    encoder = RGCNEncoder(30, 2, 4, 4, num_layers=1, num_bases=2).eval()
    full, _ = encoder(_graph(triples.tolist(), 30))
    node = int(triples[0, 0])
    incident = (triples[:, 0] == node) | (triples[:, 2] == node)
    n_id = torch.unique(torch.cat([triples[incident, 0], triples[incident, 2]]))
    n_id = n_id[torch.randperm(n_id.numel(), generator=g)]
    local = torch.full((30,), -1)
    local[n_id] = torch.arange(n_id.numel())
    inside = (local[triples[:, 0]] >= 0) & (local[triples[:, 2]] >= 0)
    sub = triples[inside]
    subgraph = Data(
        edge_index=torch.stack([local[sub[:, 0]], local[sub[:, 2]]]),
        edge_type=sub[:, 1],
        num_nodes=n_id.numel(),
        n_id=n_id,
    )
    out, _ = encoder(subgraph)
    row = int(local[node])
    torch.testing.assert_close(out[row], full[node], atol=1e-6, rtol=1e-5)
    # Without edges every row is the node's own entity through the self-connection.
    empty = Data(edge_index=torch.empty(2, 0, dtype=torch.long), edge_type=torch.empty(0, dtype=torch.long), n_id=n_id)
    empty.num_nodes = n_id.numel()
    conv = encoder.convs[0]
    expected = encoder.entity.weight[n_id] @ conv.root + conv.bias
    torch.testing.assert_close(encoder(empty)[0], expected)


def test_gradients_reach_the_entity_table_relation_table_and_layers():
    torch.manual_seed(0)
    encoder = RGCNEncoder(6, NUM_RELATIONS, 4, 4, num_relation_embeddings=4, num_blocks=2)
    ent, rel = encoder(_graph(TRIPLES, 6))
    assert rel.shape == (4, 4)
    h, r, t = torch.tensor(TRIPLES).t()
    (ent[h] * rel[r] * ent[t]).sum().backward()
    assert encoder.entity.weight.grad[:5].abs().sum(1).gt(0).any()
    assert encoder.entity.weight.grad[5].eq(0).all()  # entity 5 has no edge and is not scored
    assert encoder.relation.weight.grad[:2].abs().sum(1).gt(0).all()
    assert encoder.relation.weight.grad[2:].eq(0).all()
    for parameter in encoder.convs.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_node_features_go_through_a_linear_map():
    torch.manual_seed(0)
    encoder = RGCNEncoder(5, NUM_RELATIONS, 4, 3, num_layers=1, in_features=7).eval()
    graph = _graph()
    graph.x = torch.randn(5, 7)
    ent, _ = encoder(graph)
    x = encoder.feature_proj(graph.x)
    torch.testing.assert_close(ent, _reference_layer(encoder.convs[0], x, EDGES), atol=1e-6, rtol=1e-5)
    ent.sum().backward()
    assert encoder.feature_proj.weight.grad.abs().sum() > 0 and encoder.entity is None


def test_matches_pyg_rgcnconv_values_and_gradients():
    torch.manual_seed(0)
    edge_index, edge_type = torch.randint(30, (2, 200)), torch.randint(5, (200,))
    for decomposition in ({}, {"num_bases": 3}, {"num_blocks": 4}):
        conv = GroupedRGCNConv(8, 12, 5, **decomposition)
        x = torch.randn(30, 8, requires_grad=True)
        x_dst = torch.randn(10, 8)
        into = edge_index[1] < 10
        for inputs, ei, et in ((x, edge_index, edge_type), ((x, x_dst), edge_index[:, into], edge_type[into])):
            out = conv(inputs, ei, et)
            expected = RGCNConv.forward(conv, inputs, ei, et)
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
            grads = torch.autograd.grad(out.square().sum(), [x, *conv.parameters()])
            expected_grads = torch.autograd.grad(expected.square().sum(), [x, *conv.parameters()])
            for got, want in zip(grads, expected_grads, strict=True):
                torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_argument_and_input_errors():
    with pytest.raises(ValueError, match="not both"):
        RGCNEncoder(5, 2, 4, 4, num_bases=2, num_blocks=2)
    with pytest.raises(ValueError, match="num_blocks=3 must divide hidden_dim=8 and entity_dim=6"):
        RGCNEncoder(5, 2, 6, 4, hidden_dim=8, num_blocks=3)
    with pytest.raises(ValueError, match="num_layers"):
        RGCNEncoder(5, 2, 4, 4, num_layers=0)
    with pytest.raises(ValueError, match="edge_dropout"):
        RGCNEncoder(5, 2, 4, 4, edge_dropout=1.5)
    graph = _graph()
    graph.x = torch.randn(5, 7)
    with pytest.raises(ValueError, match="in_features=7"):
        RGCNEncoder(5, 2, 4, 4)(graph)
    with pytest.raises(ValueError, match="no node features"):
        RGCNEncoder(5, 2, 4, 4, in_features=7)(_graph())
    with pytest.raises(ValueError, match=r"relations 0\.\.1, expected 0\.\.0"):
        RGCNEncoder(5, 1, 4, 4)(_graph())
    with pytest.raises(ValueError, match="n_id"):
        RGCNEncoder(4, 2, 4, 4)(_graph())


def test_reset_parameters_draws_new_xavier_tables():
    encoder = _encoder(num_bases=2)
    before = [p.detach().clone() for p in encoder.parameters()]
    encoder.reset_parameters()
    after = list(encoder.parameters())
    assert encoder.entity.weight.abs().max() <= (6 / (5 + 4)) ** 0.5
    assert encoder.relation.weight.abs().max() <= (6 / (2 + 3)) ** 0.5
    changed = [not torch.equal(b, a) for b, a in zip(before, after, strict=True) if b.abs().sum() > 0]
    assert all(changed)
