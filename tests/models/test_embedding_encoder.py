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
