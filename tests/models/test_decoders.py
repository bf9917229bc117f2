import math

import pytest
import torch

from gnnns.models.decoders import DECODERS, RESCAL, ComplEx, Decoder, DistMult, RotatE, TransE

# Every decoder configuration the generic checks run on.
CONFIGS = {
    "transe-l1": lambda dim: TransE(dim, p=1),
    "transe-l2": lambda dim: TransE(dim, p=2),
    "distmult": DistMult,
    "complex": ComplEx,
    "rotate": RotatE,
    "rescal": RESCAL,
}


def vec(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def random_embeddings(decoder: Decoder, *shape: int, dtype=torch.float64):
    ent = torch.randn(*shape, decoder.entity_dim, dtype=dtype)
    rel = torch.randn(*shape, decoder.relation_dim, dtype=dtype)
    return ent, rel


# Scores worked out by hand; see each comment.
HAND_CASES = [
    # h + r = [1.5, 1]; h + r - t = [-0.5, 1]; L1 = 1.5.
    (TransE(2, p=1), vec(1, 2), vec(0.5, -1), vec(2, 0), -1.5),
    # L2 = sqrt(0.25 + 1).
    (TransE(2, p=2), vec(1, 2), vec(0.5, -1), vec(2, 0), -math.sqrt(1.25)),
    # 1 * 3 * 0.5 + 2 * (-1) * 4 = 1.5 - 8.
    (DistMult(2), vec(1, 2), vec(3, -1), vec(0.5, 4), -6.5),
    # h = (1+2i, i), r = (3-i, 1), t = (2+i, 1-i); rows are [re | im].
    # (1+2i)(3-i)(2-i) = (5+5i)(2-i) = 15+5i;  i * 1 * (1+i) = -1+i;  Re sum = 14.
    (ComplEx(2), vec(1, 0, 2, 1), vec(3, 1, -1, 0), vec(2, 1, 1, -1), 14.0),
    # Swapped: (2+i)(3-i)(1-2i) = (7+i)(1-2i) = 9-13i;  (1-i) * 1 * (-i) = -1-i;  Re sum = 8.
    (ComplEx(2), vec(2, 1, 1, -1), vec(3, 1, -1, 0), vec(1, 0, 2, 1), 8.0),
    # h = (1, 3+4i), theta = (pi/2, 0), t = (0, 4i):  |1 * i - 0| + |3+4i - 4i| = 1 + 3.
    (RotatE(2), vec(1, 3, 0, 4), vec(math.pi / 2, 0), vec(0, 0, 0, 4), -4.0),
    # M = [[1, 2], [3, 4]] row-major; h^T M = [7, 10]; dot [1, -1] = -3.
    (RESCAL(2), vec(1, 2), vec(1, 2, 3, 4), vec(1, -1), -3.0),
]


@pytest.mark.parametrize(("decoder", "h", "r", "t", "expected"), HAND_CASES)
def test_hand_computed_score(decoder, h, r, t, expected):
    assert decoder(h, r, t).item() == pytest.approx(expected, abs=1e-12)
    # The head query reaches the same score.
    assert decoder.match(decoder.query(t, r, True), h).item() == pytest.approx(expected, abs=1e-12)


def test_registry_and_dims():
    assert set(DECODERS) == {"transe", "distmult", "complex", "rotate", "rescal", "conve"}
    dims = {name: (cls(6).entity_dim, cls(6).relation_dim) for name, cls in DECODERS.items()}
    assert dims == {
        "transe": (6, 6),
        "distmult": (6, 6),
        "complex": (12, 12),
        "rotate": (12, 6),
        "rescal": (6, 36),
        "conve": (7, 6),  # the last entity column is the bias b_t
    }
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        TransE(4, p=3)


@pytest.mark.parametrize("name", CONFIGS)
def test_both_queries_match_the_triple_score(name):
    torch.manual_seed(0)
    decoder = CONFIGS[name](4)
    (h, r), (t, _) = random_embeddings(decoder, 6), random_embeddings(decoder, 6)
    score = decoder(h, r, t)
    assert score.shape == (6,)
    torch.testing.assert_close(decoder.match(decoder.query(h, r, False), t), score)
    torch.testing.assert_close(decoder.match(decoder.query(t, r, True), h), score)


@pytest.mark.parametrize("name", CONFIGS)
def test_match_all_equals_brute_force(name):
    torch.manual_seed(1)
    decoder = CONFIGS[name](8)
    ent, _ = random_embeddings(decoder, 13, dtype=torch.float32)
    kept, rel = random_embeddings(decoder, 5, dtype=torch.float32)
    tails = decoder.match_all(decoder.query(kept, rel, False), ent)
    heads = decoder.match_all(decoder.query(kept, rel, True), ent)
    assert tails.shape == heads.shape == (5, 13)
    for q in range(5):
        for e in range(13):
            expected_tail = decoder(kept[q].double(), rel[q].double(), ent[e].double()).float()
            expected_head = decoder(ent[e].double(), rel[q].double(), kept[q].double()).float()
            torch.testing.assert_close(tails[q, e], expected_tail, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(heads[q, e], expected_head, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CONFIGS)
def test_candidates_broadcast(name):
    torch.manual_seed(2)
    decoder = CONFIGS[name](4)
    kept, rel = random_embeddings(decoder, 3)
    cand, _ = random_embeddings(decoder, 3, 7)
    query = decoder.query(kept, rel, False)
    scores = decoder.match(query.unsqueeze(1), cand)
    assert scores.shape == (3, 7)
    expected = torch.stack([decoder.match(query, cand[:, j]) for j in range(7)], dim=1)
    torch.testing.assert_close(scores, expected)
    # forward broadcasts as well: [3, 1, d] heads against [3, 7, d] tails.
    torch.testing.assert_close(decoder(kept.unsqueeze(1), rel.unsqueeze(1), cand), expected)


@pytest.mark.parametrize("name", CONFIGS)
def test_per_row_side_mask(name):
    torch.manual_seed(3)
    decoder = CONFIGS[name](4)
    kept, rel = random_embeddings(decoder, 6)
    mask = torch.tensor([True, False, False, True, True, False])
    query = decoder.query(kept, rel, mask)
    expected = torch.where(mask.unsqueeze(-1), decoder.query(kept, rel, True), decoder.query(kept, rel, False))
    torch.testing.assert_close(query, expected)
    # A 0-dim mask behaves like the Python bool.
    torch.testing.assert_close(decoder.query(kept, rel, torch.tensor(True)), decoder.query(kept, rel, True))


@pytest.mark.parametrize("name", ["rotate", "transe-l1", "transe-l2"])
def test_distance_gradient_is_finite_at_zero_distance(name):
    decoder = CONFIGS[name](3)
    query = torch.randn(4, decoder.entity_dim, requires_grad=True)
    cand = query.detach().clone().requires_grad_()
    score = decoder.match(query, cand)
    assert torch.equal(score, torch.zeros(4))
    score.sum().backward()
    assert torch.isfinite(query.grad).all()
    assert torch.isfinite(cand.grad).all()


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_match_finite_differences(name):
    torch.manual_seed(6)
    decoder = CONFIGS[name](3)
    kept, rel = random_embeddings(decoder, 2)
    cand, _ = random_embeddings(decoder, 2, 4)
    for tensor in (kept, rel, cand):
        tensor.requires_grad_()

    def score(kept, rel, cand):
        side = torch.tensor([True, False])
        return decoder.match(decoder.query(kept, rel, side).unsqueeze(1), cand)

    assert torch.autograd.gradcheck(score, (kept, rel, cand))


def test_rotate_values_are_exact_near_zero():
    # No epsilon inside a square root: a distance of 1e-6 per coordinate stays 1e-6.
    decoder = RotatE(2)
    query = torch.zeros(1, 4, dtype=torch.float64)
    cand = torch.tensor([[1e-6, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert decoder.match(query, cand).item() == pytest.approx(-1e-6, rel=1e-12)


def test_transe_l2_match_all_at_zero_distance():
    torch.manual_seed(5)
    decoder = TransE(4, p=2)
    ent = torch.randn(5, 4, requires_grad=True)
    scores = decoder.match_all(ent, ent)
    # The GEMM expansion cancels ||q||^2 + ||c||^2 - 2 q.c: in float32 a zero distance comes out
    # as up to sqrt(eps) * ||q|| (about 2e-3 for norms near 2), never NaN.
    assert scores.diagonal().abs().max() < 1e-2
    exact = TransE(4, p=2).match_all(ent.detach().double(), ent.detach().double())
    assert exact.diagonal().abs().max() < 1e-7
    scores.sum().backward()
    assert torch.isfinite(ent.grad).all()


def test_rotate_match_all_chunks():
    torch.manual_seed(4)
    decoder = RotatE(4)
    query, cand = torch.randn(9, 8), torch.randn(11, 8)
    expected = decoder.match(query.unsqueeze(1), cand.unsqueeze(0))
    # 100 bytes fit three candidate rows of 2 * 4 floats: chunks of both queries and candidates.
    decoder.max_chunk_bytes = 100
    torch.testing.assert_close(decoder.match_all(query, cand), expected)
    decoder.max_chunk_bytes = 1
    torch.testing.assert_close(decoder.match_all(query, cand), expected)


@pytest.mark.parametrize("max_chunk_bytes", [100, 1000])
def test_rotate_match_all_respects_the_memory_bound(max_chunk_bytes):
    decoder = RotatE(4, max_chunk_bytes=max_chunk_bytes)
    sizes = []

    def recording_match(query, cand):
        sizes.append(query.size(0) * cand.size(1) * query.size(-1) * query.element_size())
        return RotatE.match(decoder, query, cand)

    decoder.match = recording_match
    decoder.match_all(torch.randn(9, 8), torch.randn(11, 8))
    assert len(sizes) > 1
    assert max(sizes) <= max_chunk_bytes


def test_transe_reset_embeddings_normalises_rows():
    decoder = TransE(16)
    entity, relation = torch.empty(30, 16), torch.empty(4, 16)
    decoder.reset_embeddings(entity, relation)
    torch.testing.assert_close(entity.norm(dim=-1), torch.ones(30))
    torch.testing.assert_close(relation.norm(dim=-1), torch.ones(4))


def test_rescal_reset_embeddings_scales_per_matrix():
    decoder = RESCAL(10)
    entity, relation = torch.empty(50, 10), torch.empty(1000, 100)
    decoder.reset_embeddings(entity, relation)
    bound = math.sqrt(6.0 / 20)
    assert relation.abs().max() <= bound
    assert relation.abs().max() > 0.9 * bound
