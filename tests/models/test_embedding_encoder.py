import math

import pytest
import torch
import torch.nn.functional as F

from gnnns.models.decoders import ComplEx, RotatE
from gnnns.models.encoders import EmbeddingEncoder
from gnnns.models.encoders.embedding import embedding_dropout


def test_shapes_and_graph_is_ignored():
    encoder = EmbeddingEncoder(10, 3, 8, 4)
    ent, rel = encoder()
    assert ent.shape == (10, 8)
    assert rel.shape == (3, 4)
    ent2, _ = encoder(graph=object())
    assert ent2 is ent


def test_returns_the_weights_themselves():
    encoder = EmbeddingEncoder(10, 3, 8, 4)
    ent, rel = encoder()
    assert ent is encoder.entity.weight and rel is encoder.relation.weight
    assert ent.data_ptr() == encoder.entity.weight.data_ptr()
    ent[torch.tensor([1, 1, 4])].sum().backward()
    grad = encoder.entity.weight.grad
    assert grad[1].eq(2).all() and grad[4].eq(1).all() and grad[0].eq(0).all()


def test_sparse_gradients_through_functional_embedding():
    encoder = EmbeddingEncoder(10, 3, 8, 4, sparse=True)
    ent, _ = encoder()
    F.embedding(torch.tensor([2, 5]), ent, sparse=encoder.sparse).sum().backward()
    assert encoder.entity.weight.grad.is_sparse


def test_default_initialisation_is_xavier_uniform():
    encoder = EmbeddingEncoder(500, 40, 20, 30)
    ent, rel = encoder()
    assert ent.abs().max() <= math.sqrt(6.0 / (500 + 20))
    assert rel.abs().max() <= math.sqrt(6.0 / (40 + 30))
    before = ent.detach().clone()
    encoder.reset_parameters()
    assert not torch.equal(before, encoder.entity.weight)


def test_rotate_initialisation_ranges():
    decoder = RotatE(50, margin=9.0)
    encoder = EmbeddingEncoder(2000, 30, decoder.entity_dim, decoder.relation_dim, decoder=decoder)
    ent, rel = encoder()
    bound = (9.0 + 2.0) / 50
    assert ent.abs().max() <= bound
    assert ent.max() > 0.99 * bound and ent.min() < -0.99 * bound
    assert rel.abs().max() <= math.pi
    assert rel.max() > 0.99 * math.pi and rel.min() < -0.99 * math.pi


def test_decoder_is_not_registered_twice():
    decoder = ComplEx(4)
    encoder = EmbeddingEncoder(10, 3, decoder.entity_dim, decoder.relation_dim, decoder=decoder)
    assert set(encoder.state_dict()) == {"entity.weight", "relation.weight"}
    assert len(list(encoder.children())) == 2


def test_dimension_mismatch_with_decoder_raises():
    with pytest.raises(ValueError, match="do not match RotatE"):
        EmbeddingEncoder(10, 3, 8, 8, decoder=RotatE(4))


def _reference_dropout(x, p):
    """The documented draw, written out: 64-bit words from the default generator, each cut into
    four 16-bit two's-complement numbers s (low bits first); keep when s >= k - 32768 with
    k = round(65536 p), scale by 65536 / (65536 - k)."""
    k = round(p * 65536)
    words = torch.empty(-(-x.numel() // 4), dtype=torch.int64).random_(-(2**63), None)
    shifts = torch.tensor([0, 16, 32, 48])
    u = ((words.unsqueeze(1) >> shifts) & 0xFFFF).reshape(-1)[: x.numel()].view(x.shape)
    s = torch.where(u >= 32768, u - 65536, u)
    return x * (s >= k - 32768) * (65536 / (65536 - k))


def test_embedding_dropout_zeroes_a_fraction_p_and_rescales_the_rest():
    p = 0.3
    encoder = EmbeddingEncoder(400, 20, 50, 10, entity_dropout=p, relation_dropout=0.5)
    weight, rel_weight = encoder.entity.weight.detach(), encoder.relation.weight.detach()
    torch.manual_seed(0)
    ent, rel = encoder()
    kept = ent != 0
    # Inverted dropout: kept coordinates are w / (1 - p'), dropped ones 0, with the rate
    # p' = round(0.3 * 2^16) / 2^16 = 19,661 / 65,536 the 16-bit draw can express.
    torch.testing.assert_close(ent[kept], weight[kept] * (65536 / (65536 - 19661)))
    assert abs((~kept).float().mean().item() - p) < 0.01  # 20,000 coordinates: sd 0.003
    rel_kept = rel != 0
    torch.testing.assert_close(rel[rel_kept], rel_weight[rel_kept] / 0.5)
    assert abs((~rel_kept).float().mean().item() - 0.5) < 0.05
    # The gradient reaches the kept coordinates only, scaled as they are.
    upstream = torch.randn_like(ent)
    (ent * upstream).sum().backward()
    grad = encoder.entity.weight.grad
    torch.testing.assert_close(grad, upstream * kept * (65536 / (65536 - 19661)))


def test_embedding_dropout_matches_the_documented_draw_and_is_unbiased():
    x = torch.randn(301, 7)  # 2,107 entries: the last 64-bit word is only partly used
    for p in (0.1594, 0.5, 0.9):
        torch.manual_seed(3)
        ours = embedding_dropout(x, p)
        torch.manual_seed(3)
        torch.testing.assert_close(ours, _reference_dropout(x, p), rtol=0, atol=0)
    # Over 4M entries the rate is p' (sd 0.0002) and the mean of dropout(1) is 1 (sd 0.0003);
    # the four numbers cut from one word are independent: both of a pair dropped with p'^2.
    torch.manual_seed(0)
    ones = embedding_dropout(torch.ones(1 << 22), 0.3)
    dropped = ones == 0
    assert abs(dropped.float().mean().item() - 19661 / 65536) < 0.001
    assert abs(ones.mean().item() - 1.0) < 0.002
    pairs = dropped.view(-1, 4)
    for a, b in ((0, 1), (1, 2), (2, 3), (0, 3)):
        assert abs((pairs[:, a] & pairs[:, b]).float().mean().item() - 0.09) < 0.002
    # Rates the draw cannot express: under 2^-17 is none, near 1 keeps 1 in 65,536.
    assert embedding_dropout(x, 1e-6) is x
    assert embedding_dropout(torch.ones(1 << 20), 0.999999).max().item() == 65536.0


def test_embedding_dropout_is_off_in_eval_mode_and_by_default():
    encoder = EmbeddingEncoder(40, 3, 8, 4, entity_dropout=0.5, relation_dropout=0.5).eval()
    ent, rel = encoder()
    assert ent is encoder.entity.weight and rel is encoder.relation.weight
    plain = EmbeddingEncoder(40, 3, 8, 4)
    assert plain()[0] is plain.entity.weight


def test_embedding_dropout_draws_a_new_mask_per_call():
    encoder = EmbeddingEncoder(100, 3, 16, 4, entity_dropout=0.5)
    first, second = encoder()[0] != 0, encoder()[0] != 0
    assert not torch.equal(first, second)


def test_embedding_dropout_rejects_bad_settings():
    with pytest.raises(ValueError, match="entity_dropout must be in"):
        EmbeddingEncoder(10, 3, 8, 4, entity_dropout=1.0)
    with pytest.raises(ValueError, match="relation_dropout must be in"):
        EmbeddingEncoder(10, 3, 8, 4, relation_dropout=-0.1)
    with pytest.raises(ValueError, match="sparse=True"):
        EmbeddingEncoder(10, 3, 8, 4, sparse=True, entity_dropout=0.1)


def test_build_model_passes_embedding_dropout_and_names_the_options():
    from gnnns.data import KnowledgeGraph
    from gnnns.models import build_model

    kg = KnowledgeGraph(torch.tensor([[0, 0, 1], [1, 1, 2]]), num_entities=3, num_relations=2)
    model = build_model("complex", kg, 4, encoder_options={"entity_dropout": 0.2, "relation_dropout": 0.1})
    assert (model.encoder.entity_dropout, model.encoder.relation_dropout) == (0.2, 0.1)
    with pytest.raises(ValueError, match=r"no option \['num_layers'\].*entity_dropout"):
        build_model("complex", kg, 4, encoder_options={"num_layers": 2})


@pytest.mark.parametrize(
    "init,scale,check",
    [
        (
            "uniform",
            0.28,
            lambda w: w.abs().max() <= 0.28 and w.abs().max() > 0.27 and abs(w.std() - 0.28 / 3**0.5) < 0.01,
        ),
        ("normal", 0.1225, lambda w: abs(w.mean()) < 0.005 and abs(w.std() - 0.1225) < 0.005),
        ("xavier_normal", None, lambda w: abs(w.std() - math.sqrt(2 / (2000 + 64))) < 0.001),
    ],
)
def test_init_overrides_the_decoder_scheme(init, scale, check):
    decoder = RotatE(32, margin=9.0)  # its own scheme would be uniform in +-11/32 and phases in +-pi
    encoder = EmbeddingEncoder(
        2000, 30, decoder.entity_dim, decoder.relation_dim, decoder=decoder, init=init, init_scale=scale
    )
    assert check(encoder.entity.weight.detach())


def test_init_keeps_the_conve_bias_column_at_zero():
    from gnnns.models.decoders import ConvE

    decoder = ConvE(32, height=4)
    encoder = EmbeddingEncoder(
        50, 6, decoder.entity_dim, decoder.relation_dim, decoder=decoder, init="normal", init_scale=0.5
    )
    assert encoder.entity.weight[:, -1].eq(0).all() and encoder.entity.weight[:, :-1].ne(0).all()


def test_init_settings_are_checked():
    with pytest.raises(ValueError, match="unknown init 'kaiming'"):
        EmbeddingEncoder(10, 3, 8, 4, init="kaiming")
    with pytest.raises(ValueError, match="init_scale must be a positive number"):
        EmbeddingEncoder(10, 3, 8, 4, init="uniform")
    with pytest.raises(ValueError, match="init_scale must be a positive number"):
        EmbeddingEncoder(10, 3, 8, 4, init="xavier_normal", init_scale=0.1)
    with pytest.raises(ValueError, match="init_scale must be a positive number"):
        EmbeddingEncoder(10, 3, 8, 4, init="normal", init_scale="1e-05")  # YAML 1.1 reads 1e-05 as text


def _lookup_model(dropout_mask, p_ent=0.4, p_rel=0.3, decoder="complex", dim=4):
    from gnnns.data import KnowledgeGraph
    from gnnns.models import build_model

    kg = KnowledgeGraph(torch.tensor([[0, 0, 1], [1, 1, 2], [2, 0, 3]]), num_entities=6, num_relations=2)
    options = {"entity_dropout": p_ent, "relation_dropout": p_rel, "dropout_mask": dropout_mask}
    torch.manual_seed(0)
    return build_model(decoder, kg, dim, encoder_options=options)


def test_lookup_dropout_leaves_the_tables_and_drops_each_lookup_as_libkge_does():
    model = _lookup_model("lookup").train()
    ent, rel = model.encoder.entity.weight, model.encoder.relation.weight
    assert model.encoder() == (ent, rel)  # forward returns the tables untouched
    kept, relation = torch.tensor([0, 0, 2]), torch.tensor([1, 1, 0])
    torch.manual_seed(5)
    scores = model.score_all(kept, relation, predict_head=False)
    # Brute force, in the documented order: the query's entity rows, its relation rows, then the
    # candidate table, each with its own mask (see _reference_dropout).
    torch.manual_seed(5)
    drop = _reference_dropout

    h, r = drop(ent[kept], 0.4), drop(rel[relation], 0.3)
    cand = drop(ent, 0.4)
    h_re, h_im = h.detach().chunk(2, -1)
    r_re, r_im = r.detach().chunk(2, -1)
    c_re, c_im = cand.detach().chunk(2, -1)
    expected = (h_re * r_re - h_im * r_im) @ c_re.t() + (h_re * r_im + h_im * r_re) @ c_im.t()
    torch.testing.assert_close(scores.detach(), expected)
    # The same query asked twice in one batch is dropped twice: its scores differ.
    assert not torch.allclose(scores[0], scores[1])


def test_table_dropout_gives_repeated_queries_of_a_step_the_same_mask():
    model = _lookup_model("table").train()
    scores = model.score_all(torch.tensor([0, 0]), torch.tensor([1, 1]), predict_head=False)
    torch.testing.assert_close(scores[0], scores[1])


def test_lookup_dropout_in_negative_sampling_scores_and_eval_mode():
    # 64 coordinates: at 4, a DistMult score is 0 (every coordinate dropped in some factor) one time in three.
    wide = _lookup_model("lookup", decoder="distmult", dim=64)
    positives = torch.tensor([[0, 1, 2], [0, 1, 2]])
    negatives = torch.tensor([[3, 4], [3, 4]])
    side = torch.tensor([False, False])
    wide.eval()
    clean_pos, _ = wide.score_batch(positives, negatives, side)
    torch.testing.assert_close(clean_pos, wide.score(positives))  # no dropout outside training
    wide.train()
    pos, neg = wide.score_batch(positives, negatives, side)
    assert not torch.allclose(pos[0], pos[1]) and not torch.allclose(neg[0], neg[1])
    model = _lookup_model("lookup", decoder="distmult")
    # Unbiased: DistMult is linear in each row and every row has its own mask, so the mean over
    # many draws is the clean score (a table mask would bias a triple whose head is its tail).
    torch.manual_seed(1)
    with torch.no_grad():
        model.encoder.entity.weight[1] = 1.0
        model.encoder.relation.weight[0] = 1.0
        many = torch.stack([model.score(torch.tensor([[1, 0, 1]])) for _ in range(20000)]).mean()
        clean = model.eval().score(torch.tensor([[1, 0, 1]]))
    assert float(clean) == 4.0  # a table mask would make the mean 4 / (1 - 0.4)
    assert abs(float(many - clean)) < 0.05 * abs(float(clean))


def test_dropout_mask_is_checked():
    with pytest.raises(ValueError, match=r"unknown dropout_mask 'rows'.*'lookup'"):
        EmbeddingEncoder(10, 3, 8, 4, entity_dropout=0.1, dropout_mask="rows")
