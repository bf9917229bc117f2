import math

import pytest
import torch
from torch.nn import functional as F

from gnnns.losses import BCELoss
from gnnns.models.decoders.conve import ConvE, default_height
from gnnns.models.encoders import EmbeddingEncoder
from gnnns.models.kgc import KGCModel

DIM = 12  # reshaped 4 x 3 by default: an 8 x 3 image, 6 x 1 feature maps


def randomise(decoder: ConvE, seed: int = 0) -> ConvE:
    """Non-trivial weights and running statistics, so every batch norm changes its input."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in decoder.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        for norm in (decoder.input_norm, decoder.feature_norm, decoder.hidden_norm):
            norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=gen))
            norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=gen) + 0.5)
    return decoder


def embeddings(decoder: ConvE, *shape: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    ent = torch.randn(*shape, decoder.entity_dim, generator=gen, dtype=torch.float64)
    rel = torch.randn(*shape, decoder.relation_dim, generator=gen, dtype=torch.float64)
    return ent, rel


def reference_scores(decoder: ConvE, head: torch.Tensor, rel: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """The ConvE equation with the module's weights in eval mode, from functional ops: ``[B] x 3 -> [B]``."""
    d, h, w = decoder.dim, decoder.height, decoder.width
    e_h = head[:, :d]
    if decoder.stacking == "stack":
        image = torch.cat((e_h.view(-1, 1, h, w), rel.view(-1, 1, h, w)), dim=2)
    else:
        flat = torch.empty(e_h.size(0), 2 * d, dtype=e_h.dtype)
        flat[:, 0::2], flat[:, 1::2] = e_h, rel
        image = flat.view(-1, 1, 2 * h, w)

    def norm(x, bn):
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)

    x = F.conv2d(norm(image, decoder.input_norm), decoder.conv.weight)
    x = F.relu(norm(x, decoder.feature_norm)).flatten(1)
    x = F.relu(norm(F.linear(x, decoder.fc.weight, decoder.fc.bias), decoder.hidden_norm))
    score = (x * tail[:, :d]).sum(-1)
    return score + tail[:, d] if decoder.bias else score


def test_dimensions_and_default_shape():
    decoder = ConvE(200)
    # The official code: embedding-shape1 20 and hidden size 9728 = 32 * 38 * 8 for dim 200.
    assert (decoder.height, decoder.width, decoder.fc.in_features) == (20, 10, 9728)
    assert (decoder.entity_dim, decoder.relation_dim) == (201, 200)
    assert ConvE(200, bias=False).entity_dim == 200
    # CompGCN's setting: k_w = 10, k_h = 20, 200 filters 7 x 7 -> 14 x 14 maps.
    compgcn = ConvE(200, height=10, num_filters=200, kernel_size=7, stacking="interleave")
    assert compgcn.fc.in_features == 200 * 14 * 14
    # sqrt(24) ~ 4.9: the divisors 4 and 6 are 0.9 and 1.1 away.
    assert default_height(12) == 4
    # A width of 1 does not fit a 3 x 3 kernel, so 7 rows of 1 are not chosen for a prime dim.
    with pytest.raises(ValueError, match="no reshape"):
        default_height(7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 5}, "divisor"),
        ({"height": 12}, "does not fit"),
        ({"stacking": "checker"}, "stacking"),
    ],
)
def test_invalid_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvE(DIM, **kwargs)


def test_stacking_layouts_by_hand():
    e = torch.tensor([[1.0, 2, 3, 4, 5, 6]])
    r = -e
    stack = ConvE(6, height=2, kernel_size=1, stacking="stack").image(e, r)
    assert stack.tolist() == [[[[1, 2, 3], [4, 5, 6], [-1, -2, -3], [-4, -5, -6]]]]
    # Pairs (e_i, r_i) written row by row: with an even width the columns alternate e, r ...
    even = ConvE(6, height=3, kernel_size=1, stacking="interleave").image(e, r)
    assert even.tolist() == [[[[1, -1], [2, -2], [3, -3], [4, -4], [5, -5], [6, -6]]]]
    # ... and with an odd width the pattern shifts from one row to the next.
    odd = ConvE(6, height=2, kernel_size=1, stacking="interleave").image(e, r)
    assert odd.tolist() == [[[[1, -1, 2], [-2, 3, -3], [4, -4, 5], [-5, 6, -6]]]]


@pytest.mark.parametrize("stacking", ["stack", "interleave"])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_the_equation(stacking, bias):
    decoder = randomise(ConvE(DIM, stacking=stacking, bias=bias, num_filters=4).double()).eval()
    ent, rel = embeddings(decoder, 3, 5)
    h, t = ent[0], ent[1]
    if bias:
        assert t[:, -1].abs().min() > 0  # the bias column matters in this check
    expected = reference_scores(decoder, h, rel[0], t)
    torch.testing.assert_close(decoder(h, rel[0], t), expected)


def test_query_shapes_and_broadcasting():
    decoder = randomise(ConvE(DIM, num_filters=4).double()).eval()
    ent, rel = embeddings(decoder, 2, 3)
    query = decoder.query(ent, rel, False)
    assert query.shape == (2, 3, DIM + 1)
    assert torch.equal(query[..., -1], torch.ones(2, 3, dtype=torch.float64))
    # Leading dimensions are only flattened: the same rows as a flat batch.
    torch.testing.assert_close(query.reshape(6, -1), decoder.query(ent.reshape(6, -1), rel.reshape(6, -1), False))
    # forward broadcasts [B, 1] heads and relations against [B, k] tails.
    tails, _ = embeddings(decoder, 2, 4, seed=2)
    scores = decoder(ent[:, :1], rel[:, :1], tails)
    assert scores.shape == (2, 4)
    expected = reference_scores(
        decoder, ent[:, 0].repeat_interleave(4, 0), rel[:, 0].repeat_interleave(4, 0), tails.reshape(8, -1)
    )
    torch.testing.assert_close(scores, expected.view(2, 4))


def test_match_all_equals_broadcast_match():
    decoder = randomise(ConvE(DIM, num_filters=4).double()).eval()
    ent, rel = embeddings(decoder, 5)
    cand, _ = embeddings(decoder, 7, seed=3)
    query = decoder.query(ent, rel, False)
    all_scores = decoder.match_all(query, cand)
    assert all_scores.shape == (5, 7)
    torch.testing.assert_close(all_scores, decoder.match(query.unsqueeze(1), cand.unsqueeze(0)))


def test_head_queries_are_refused():
    decoder = ConvE(DIM).eval()
    ent, rel = embeddings(decoder, 3)
    ent, rel = ent.float(), rel.float()
    with pytest.raises(ValueError, match="reciprocal=True"):
        decoder.query(ent, rel, True)
    with pytest.raises(ValueError, match="tail queries"):
        decoder.query(ent, rel, torch.tensor([False, True, False]))
    torch.testing.assert_close(
        decoder.query(ent, rel, torch.zeros(3, dtype=torch.bool)), decoder.query(ent, rel, False)
    )


def test_dropout_and_batch_norm_follow_the_mode():
    torch.manual_seed(0)
    decoder = randomise(ConvE(DIM, num_filters=4))
    ent, rel = embeddings(decoder, 16)
    ent, rel = ent.float(), rel.float()
    decoder.train()
    assert not torch.allclose(decoder.query(ent, rel, False), decoder.query(ent, rel, False))
    decoder.eval()
    eval_query = decoder.query(ent, rel, False)
    torch.testing.assert_close(decoder.query(ent, rel, False), eval_query)
    # Without dropout, training mode is deterministic but normalises with the batch statistics.
    plain = randomise(ConvE(DIM, num_filters=4, input_dropout=0.0, feature_dropout=0.0, hidden_dropout=0.0)).train()
    first = plain.query(ent, rel, False)
    torch.testing.assert_close(plain.query(ent, rel, False), first)
    assert not torch.allclose(first, plain.eval().query(ent, rel, False))


def test_feature_dropout_drops_whole_maps():
    torch.manual_seed(0)
    decoder = ConvE(DIM, num_filters=8, input_dropout=0.0, feature_dropout=0.5, hidden_dropout=0.0).train()
    seen = {}
    decoder.fc.register_forward_hook(lambda module, args, out: seen.update(features=args[0]))
    ent, rel = embeddings(decoder, 32)
    decoder.query(ent.float(), rel.float(), False)
    maps = seen["features"].view(32, 8, -1)  # [N, filters, 6 x 1 map]
    # ReLU zeroes single pixels; Dropout2d zeroes all pixels of a map, and about half of them.
    dropped = (maps == 0).all(-1).float().mean().item()
    assert 0.3 < dropped < 0.7


def test_gradients_reach_embeddings_and_layers():
    decoder = ConvE(DIM, num_filters=4).train()
    ent, rel = embeddings(decoder, 6)
    ent, rel = ent.float().requires_grad_(), rel.float().requires_grad_()
    decoder.match_all(decoder.query(ent[:4], rel[:4], False), ent).sum().backward()
    assert ent.grad[:, :DIM].abs().sum() > 0
    assert torch.equal(ent.grad[:, DIM], torch.full((6,), 4.0))  # d/db_t of the summed [4, 6] scores
    assert rel.grad[:4].abs().sum() > 0
    for name in (
        "conv.weight",
        "fc.weight",
        "fc.bias",
        "input_norm.weight",
        "feature_norm.weight",
        "hidden_norm.weight",
    ):
        assert decoder.get_parameter(name).grad.abs().sum() > 0, name


def test_reset_embeddings_and_parameters():
    torch.manual_seed(0)
    decoder = ConvE(DIM)
    entity, relation = torch.ones(4000, decoder.entity_dim), torch.ones(50, decoder.relation_dim)
    decoder.reset_embeddings(entity, relation)
    assert torch.equal(entity[:, DIM], torch.zeros(4000))
    # Xavier-normal: std sqrt(2 / (fan_in + fan_out)) over the [E, dim] part.
    assert entity[:, :DIM].std().item() == pytest.approx(math.sqrt(2 / (4000 + DIM)), rel=0.05)
    assert relation.std().item() == pytest.approx(math.sqrt(2 / (50 + DIM)), rel=0.1)
    # Normal, not uniform: a uniform with that std never exceeds sqrt(3) std; 8% of normal draws do.
    for table, std in ((entity[:, :DIM], math.sqrt(2 / (4000 + DIM))), (relation, math.sqrt(2 / (50 + DIM)))):
        assert (table.abs() > math.sqrt(3) * std).float().mean() > 0.04
    randomise(decoder)
    decoder.reset_parameters()
    for norm in (decoder.input_norm, decoder.feature_norm, decoder.hidden_norm):
        assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
    # PyTorch's default for the filters: uniform within 1 / sqrt(fan_in) = 1 / 3 (never 0.5-scale normal).
    assert decoder.conv.weight.abs().max() <= 1 / 3


def toy_model(num_entities: int = 10, num_relations: int = 3) -> KGCModel:
    decoder = ConvE(DIM, num_filters=4, input_dropout=0.0, feature_dropout=0.0, hidden_dropout=0.0)
    encoder = EmbeddingEncoder(
        num_entities, 2 * num_relations, decoder.entity_dim, decoder.relation_dim, decoder=decoder
    )
    return KGCModel(encoder, decoder, num_relations, reciprocal=True)


def test_kgc_model_scores_with_inverse_relations():
    torch.manual_seed(0)
    model = toy_model()
    with torch.no_grad():
        model.encoder.entity.weight[:, DIM].normal_()  # a non-zero bias column
    model.eval()
    ent, rel = model.embeddings()
    positives = torch.tensor([[0, 1, 2], [3, 2, 4], [5, 0, 6]])
    negatives = torch.tensor([[7, 8], [9, 1], [2, 3]])
    corrupt_head = torch.tensor([False, True, False])
    pos, neg = model.score_batch(positives, negatives, corrupt_head)
    assert pos.shape == (3,) and neg.shape == (3, 2)
    # Row 1 replaces the head of (3, 2, 4): it is scored as (4, 2 + R, ?) against 3, 9 and 1.
    decoder = model.decoder
    query = decoder.query(ent[4], rel[2 + 3], False)
    torch.testing.assert_close(pos[1], decoder.match(query, ent[3]))
    torch.testing.assert_close(neg[1], decoder.match(query, ent[[9, 1]]))
    torch.testing.assert_close(neg[0], model.score(torch.tensor([[0, 1, 7], [0, 1, 8]])))
    all_tails = model.score_all(torch.tensor([0, 4]), torch.tensor([1, 2]), False)
    all_heads = model.score_all(torch.tensor([4]), torch.tensor([2]), True)
    assert all_tails.shape == (2, 10)
    every_tail = torch.stack([torch.zeros(10, dtype=torch.long), torch.ones(10, dtype=torch.long), torch.arange(10)], 1)
    torch.testing.assert_close(all_tails[0], model.score(every_tail))
    torch.testing.assert_close(all_heads[0], decoder.match_all(query[None], ent)[0])
    torch.testing.assert_close(all_heads[0, [3, 9, 1]], torch.cat([pos[1:2], neg[1]]))


def test_one_step_lowers_the_one_to_n_loss():
    torch.manual_seed(0)
    model = toy_model().train()
    # (h, r) -> every true tail, with inverse relations for the head side.
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 1, 3], [2, 2, 4], [5, 1, 6], [7, 0, 8]])
    kept = torch.cat([triples[:, 0], triples[:, 2]])
    relation = torch.cat([triples[:, 1], triples[:, 1]])
    predict_head = torch.cat([torch.zeros(6, dtype=torch.bool), torch.ones(6, dtype=torch.bool)])
    answer = torch.cat([triples[:, 2], triples[:, 0]])
    targets = torch.zeros(12, 10)
    targets[torch.arange(12), answer] = 1.0
    targets[0, 2] = targets[1, 1] = 1.0  # (0, 0, ?) has two answers
    loss_fn = BCELoss(label_smoothing=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def loss() -> torch.Tensor:
        return loss_fn.forward_all(model.score_all(kept, relation, predict_head), targets)

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert loss().item() < before.item()


def test_libkge_layout_has_no_input_norm_and_no_affine_norms():
    """LibKGE's ConvE: conv -> BN (no scale/shift) -> ReLU -> projection -> BN -> ReLU, no batch
    norm of the image; written out with functional ops in eval mode."""
    decoder = ConvE(DIM, input_norm=False, norm_affine=False).double().eval()
    assert decoder.feature_norm.weight is None and decoder.hidden_norm.weight is None
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in decoder.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        for bn in (decoder.feature_norm, decoder.hidden_norm):
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=gen))
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) + 0.5)
    head, rel = embeddings(decoder, 5)
    tail, _ = embeddings(decoder, 5, seed=2)
    h, w = decoder.height, decoder.width
    image = torch.cat((head[:, :DIM].view(-1, 1, h, w), rel.view(-1, 1, h, w)), dim=2)

    def bn(x, m):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - m.running_mean.view(shape)) / (m.running_var.view(shape) + m.eps).sqrt()

    x = F.relu(bn(F.conv2d(image, decoder.conv.weight), decoder.feature_norm)).flatten(1)
    x = F.relu(bn(x @ decoder.fc.weight.t() + decoder.fc.bias, decoder.hidden_norm))
    expected = (x * tail[:, :DIM]).sum(-1) + tail[:, DIM]
    torch.testing.assert_close(decoder(head, rel, tail), expected)
    decoder.reset_parameters()  # an Identity input norm has nothing to reset
