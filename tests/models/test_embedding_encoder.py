import math

import pytest
import torch
import torch.nn.functional as F

from gnnns.models.decoders import ComplEx, RotatE
from gnnns.models.encoders import EmbeddingEncoder


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


def test_embedding_dropout_zeroes_a_fraction_p_and_rescales_the_rest():
    p = 0.3
    encoder = EmbeddingEncoder(400, 20, 50, 10, entity_dropout=p, relation_dropout=0.5)
    weight, rel_weight = encoder.entity.weight.detach(), encoder.relation.weight.detach()
    torch.manual_seed(0)
    ent, rel = encoder()
    kept = ent != 0
    # Inverted dropout: kept coordinates are w / (1 - p), dropped ones 0.
    torch.testing.assert_close(ent[kept], weight[kept] / (1 - p))
    assert abs((~kept).float().mean().item() - p) < 0.01  # 20,000 coordinates: sd 0.003
    rel_kept = rel != 0
    torch.testing.assert_close(rel[rel_kept], rel_weight[rel_kept] / 0.5)
    assert abs((~rel_kept).float().mean().item() - 0.5) < 0.05
    # The gradient reaches the kept coordinates only, scaled as they are.
    ent.sum().backward()
    grad = encoder.entity.weight.grad
    torch.testing.assert_close(grad, kept.float() / (1 - p))


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
