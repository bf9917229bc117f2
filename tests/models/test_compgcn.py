import math

import pytest
import torch
from torch_geometric.data import Data, HeteroData

from gnnns.models.encoders.compgcn import CompGCNEncoder
from gnnns.models.encoders.compgcn_conv import CompGCNConv, circular_correlation

# (head, relation, tail) on 5 nodes and 2 relations, with a self-loop triple (4, 0, 4).
TRIPLES = [(0, 0, 1), (0, 1, 2), (1, 0, 2), (2, 1, 3), (3, 0, 0), (4, 1, 0), (1, 1, 4), (0, 0, 3), (4, 0, 4)]
N, R, INIT, DIM = 5, 2, 5, 4


def as_data(triples, **attrs) -> Data:
    t = torch.tensor(triples)
    return Data(edge_index=t[:, [0, 2]].t().contiguous(), edge_type=t[:, 1], num_nodes=N, **attrs)


def explicit_correlation(a, b):
    d = a.numel()
    return torch.stack([sum(a[i] * b[(k + i) % d] for i in range(d)) for k in range(d)])


def compose(name, x, z):
    return {"sub": lambda: x - z, "mult": lambda: x * z, "corr": lambda: explicit_correlation(x, z)}[name]()


def hand_degree(triples=TRIPLES) -> torch.Tensor:
    """Out- and in-degree of each node, ``[N, 2]``."""
    return torch.tensor([[sum(h == v for h, _, _ in triples), sum(t == v for _, _, t in triples)] for v in range(N)])


def reference_layer(conv, x, rel, present, full=TRIPLES, training=True):
    """Eq. 4-5 by hand: node v receives phi(x_t, z_r) W_O for each (v, r, t) and phi(x_h, z_{r+R}) W_I
    for each (h, r, v), weighted 1/sqrt(out(h) in(t)) * D_v / S_v, with degrees of ``full``."""
    out_deg, in_deg = hand_degree(full).t().tolist()
    rows = []
    for v in range(N):
        s_out = sum(h == v for h, _, _ in present)
        s_in = sum(t == v for _, _, t in present)
        h_v = compose(conv.composition, x[v], conv.self_relation[0]) @ conv.weight_self
        for h, r, t in present:
            norm = 1 / math.sqrt(out_deg[h] * in_deg[t])
            if h == v:
                h_v = h_v + norm * out_deg[v] / s_out * (compose(conv.composition, x[t], rel[r]) @ conv.weight_original)
            if t == v:
                h_v = h_v + norm * in_deg[v] / s_in * (
                    compose(conv.composition, x[h], rel[r + R]) @ conv.weight_inverse
                )
        rows.append(h_v / 3 + conv.bias)
    out = torch.stack(rows)
    bn = conv.batch_norm
    if training:
        mean, var = out.mean(0), out.var(0, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    out = (out - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    return torch.tanh(out), rel @ conv.weight_relation


def make_encoder(composition="corr", seed=0, **kwargs) -> CompGCNEncoder:
    torch.manual_seed(seed)
    kwargs = {"init_dim": INIT, "dropout": 0.0, **kwargs}
    encoder = CompGCNEncoder(N, R, DIM, DIM, composition=composition, **kwargs).double()
    with torch.no_grad():  # make bias and batch norm matter: they start at 0 / identity
        for conv in encoder.convs:
            conv.bias.normal_()
            conv.batch_norm.weight.uniform_(0.5, 1.5)
            conv.batch_norm.bias.normal_()
            conv.batch_norm.running_mean.normal_()
            conv.batch_norm.running_var.uniform_(0.5, 2.0)
    return encoder


@pytest.mark.parametrize("d", [7, 8])
def test_circular_correlation_is_the_explicit_sum(d):
    a, b = torch.randn(3, d, dtype=torch.float64), torch.randn(3, d, dtype=torch.float64)
    expected = torch.stack([explicit_correlation(a[i], b[i]) for i in range(3)])
    torch.testing.assert_close(circular_correlation(a, b), expected)


@pytest.mark.parametrize("composition", ["sub", "mult", "corr"])
@pytest.mark.parametrize("training", [True, False])
def test_one_layer_is_the_papers_equation(composition, training):
    encoder = make_encoder(composition).train(training)
    ent, rel = encoder(as_data(TRIPLES))
    conv = encoder.convs[0]
    expected_ent, expected_rel = reference_layer(
        conv, encoder.entity.weight, encoder.relation, TRIPLES, training=training
    )
    torch.testing.assert_close(ent, expected_ent)
    torch.testing.assert_close(rel, expected_rel)
    assert rel.shape == (2 * R, DIM)


def test_layer_counts_degrees_itself_on_a_full_graph():
    encoder = make_encoder("corr")
    conv = encoder.convs[0]
    t = torch.tensor(TRIPLES)
    # Built by hand: head <- tail through r, tail <- head through r + R.
    edge_index = torch.cat([t[:, [2, 0]].t(), t[:, [0, 2]].t()], 1)
    edge_type = torch.cat([t[:, 1], t[:, 1] + R])
    ent, _ = conv(encoder.entity.weight, edge_index, edge_type, encoder.relation)
    expected, _ = reference_layer(conv, encoder.entity.weight, encoder.relation, TRIPLES)
    torch.testing.assert_close(ent, expected)


def test_relation_bases_combine_into_the_initial_relations():
    encoder = make_encoder("mult", num_bases=3)
    basis, coefficient = encoder.relation_basis, encoder.relation_coefficient
    combined = torch.stack([sum(coefficient[r, b] * basis[b] for b in range(3)) for r in range(2 * R)])
    torch.testing.assert_close(encoder.initial_relations(), combined)
    ent, rel = encoder(as_data(TRIPLES))
    expected_ent, expected_rel = reference_layer(encoder.convs[0], encoder.entity.weight, combined, TRIPLES)
    torch.testing.assert_close(ent, expected_ent)
    torch.testing.assert_close(rel, expected_rel)


def test_hetero_data_gives_the_embeddings_of_the_equivalent_data():
    hetero = HeteroData()
    hetero["a"].num_nodes = 3
    hetero["b"].num_nodes = 2
    hetero["a", "likes", "b"].edge_index = torch.tensor([[0, 2, 1], [1, 0, 0]])
    hetero["b", "knows", "a"].edge_index = torch.tensor([[1, 0], [2, 0]])
    # Node type b follows a (ids 3, 4); edge types are relations 0 and 1 in that order.
    data = as_data([(0, 0, 4), (2, 0, 3), (1, 0, 3), (4, 1, 2), (3, 1, 0)])
    encoder = make_encoder("corr")
    for expected, got in zip(encoder(data), encoder(hetero), strict=True):
        torch.testing.assert_close(got, expected)


def test_subgraph_with_every_edge_into_a_node_matches_the_full_graph():
    encoder = make_encoder("corr").eval()
    full, _ = encoder(as_data(TRIPLES))
    degree = hand_degree()
    # Node 2's edges: (0, 1, 2), (1, 0, 2), (2, 1, 3); in the subgraph nodes are numbered by n_id.
    n_id = torch.tensor([3, 2, 1, 0])
    local = {int(g): i for i, g in enumerate(n_id)}
    sub = [(local[h], r, local[t]) for h, r, t in [(0, 1, 2), (1, 0, 2), (2, 1, 3)]]
    graph = as_data(sub, n_id=n_id, node_degree=degree[n_id])
    graph.num_nodes = 4
    out, _ = encoder(graph)
    torch.testing.assert_close(out[local[2]], full[2])
    # Node 0 lost edges here, so its row must differ: the check above is not vacuous.
    assert not torch.allclose(out[local[0]], full[0])


@pytest.mark.parametrize("composition", ["sub", "corr"])
def test_subgraph_rescales_messages_by_full_over_present_degree(composition):
    encoder = make_encoder(composition).eval()
    # (0, 0, 1) is missing: node 0 keeps 2 of its 3 outgoing triples (scaled by 3/2) and node 1
    # keeps none of its incoming ones (its inverse term is empty).
    present = [triple for triple in TRIPLES if triple != (0, 0, 1)]
    out, _ = encoder(as_data(present, node_degree=hand_degree()))
    expected, _ = reference_layer(encoder.convs[0], encoder.entity.weight, encoder.relation, present, training=False)
    torch.testing.assert_close(out, expected)
    without_degree, _ = encoder(as_data(present))
    assert not torch.allclose(without_degree, expected)


@pytest.mark.parametrize("composition", ["sub", "mult", "corr"])
def test_inference_in_small_chunks_equals_forward_in_eval(composition):
    encoder = make_encoder(composition, num_layers=2, hidden_dim=6, num_bases=3).float()
    encoder.relation_projection = torch.nn.Linear(DIM, 3)
    encoder.train()
    graph = as_data(TRIPLES[1:], n_id=torch.tensor([4, 0, 3, 1, 2]), node_degree=hand_degree())
    ent, rel = encoder.inference(graph, chunk_size=2)
    assert encoder.training and encoder.convs[1].batch_norm.training
    encoder.eval()
    with torch.no_grad():
        expected_ent, expected_rel = encoder(graph)
    torch.testing.assert_close(ent, expected_ent, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rel, expected_rel, atol=1e-5, rtol=1e-5)
    assert rel.shape == (2 * R, 3)


def test_gradients_reach_every_parameter():
    for kwargs, unused in [({"num_bases": 3}, set()), ({"in_features": 3}, {"entity.weight"})]:
        encoder = make_encoder("corr", num_layers=2, hidden_dim=6, num_relation_embeddings=R, **kwargs)
        encoder.relation_projection = torch.nn.Linear(DIM, 3).double()
        graph = as_data(TRIPLES)
        if "in_features" in kwargs:
            graph.x = torch.randn(N, 3, dtype=torch.float64)
        ent, rel = encoder(graph)
        assert rel.shape == (R, 3)
        # Random weights: a plain sum of batch-normalised rows has zero gradient.
        (ent * torch.randn_like(ent)).sum().add((rel * torch.randn_like(rel)).sum()).backward()
        for name, param in encoder.named_parameters():
            if name not in unused:
                assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_relation_rows_are_the_first_of_the_two_r_and_projection_follows_relation_dim():
    full = make_encoder("mult")
    first = make_encoder("mult", num_relation_embeddings=R)
    first.load_state_dict(full.state_dict())
    graph = as_data(TRIPLES)
    torch.testing.assert_close(first(graph)[1], full(graph)[1][:R])
    assert full.relation_projection is None
    assert CompGCNEncoder(N, R, DIM, 7).relation_projection.out_features == 7


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="composition"):
        CompGCNConv(4, 4, composition="rotate")
    with pytest.raises(ValueError, match="in_features"):
        make_encoder()(as_data(TRIPLES, x=torch.randn(N, 3)))
    with pytest.raises(ValueError, match="num_relation_embeddings"):
        CompGCNEncoder(N, R, DIM, DIM, num_relation_embeddings=2 * R + 1)


def test_output_dropout_zeroes_and_rescales_entity_rows_in_training_only():
    plain = make_encoder()  # no message dropout: the output dropout is the only randomness
    dropped = make_encoder(output_dropout=0.5)
    graph = as_data(TRIPLES)
    torch.testing.assert_close(dropped.eval()(graph)[0], plain.eval()(graph)[0])
    out, reference = dropped.train()(graph)[0].detach(), plain.train()(graph)[0].detach()
    kept = out != 0
    assert 0.2 < kept.double().mean() < 0.8
    torch.testing.assert_close(out[kept], 2 * reference[kept])


def test_batch_norm_scale_sets_gamma_and_scales_the_normalised_output():
    graph = as_data(TRIPLES)
    one = make_encoder()
    small = make_encoder()
    small.batch_norm_scale = 0.1
    small.reset_parameters()
    one.reset_parameters()  # same seeds would differ after make_encoder's perturbation: compare fresh resets
    small.load_state_dict({k: v for k, v in one.state_dict().items() if "batch_norm.weight" not in k}, strict=False)
    assert all(bool((conv.batch_norm.weight == 0.1).all()) for conv in small.convs)
    # Train mode, batch statistics, zero BN shift: the output is tanh(gamma * z) for the same z.
    pre = torch.atanh(one.train()(graph)[0])
    torch.testing.assert_close(torch.atanh(small.train()(graph)[0]), 0.1 * pre)
