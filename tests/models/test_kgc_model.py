import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.models import build_model


def tiny_kg():
    g = torch.Generator().manual_seed(0)
    triples = torch.stack(
        [
            torch.randint(20, (50,), generator=g),
            torch.randint(3, (50,), generator=g),
            torch.randint(20, (50,), generator=g),
        ],
        1,
    )
    return KnowledgeGraph(triples, num_entities=20, num_relations=3)


@pytest.mark.parametrize("reciprocal", [False, True])
def test_score_batch_agrees_with_score(reciprocal):
    kg = tiny_kg()
    torch.manual_seed(0)
    model = build_model("complex", kg, 4, reciprocal=reciprocal)
    pos = kg.train[:6]
    ents = torch.randint(20, (6, 5))
    side = torch.tensor([True, False, True, False, True, False])
    p, n = model.score_batch(pos, ents, side)
    if not reciprocal:
        assert torch.allclose(p, model.score(pos), atol=1e-6)
    triples = pos.unsqueeze(1).repeat(1, 5, 1)
    triples[side, :, 0] = ents[side]
    triples[~side, :, 2] = ents[~side]
    if reciprocal:  # (?, r, t) is asked as (t, r + R, ?)
        flipped = torch.stack([triples[..., 2], triples[..., 1] + kg.num_relations, triples[..., 0]], -1)
        triples = torch.where(side.view(-1, 1, 1), flipped, triples)
    assert torch.allclose(n, model.score(triples.view(-1, 3)).view(6, 5), atol=1e-6)


@pytest.mark.parametrize("name", ["rotate", "complex"])
def test_compiled_kernels_match_eager(name):
    kg = tiny_kg()
    torch.manual_seed(0)
    eager = build_model(name, kg, 8)
    compiled = build_model(name, kg, 8, compile=True)
    compiled.load_state_dict(eager.state_dict())
    pos, ents, side = kg.train[:16], torch.randint(20, (16, 7)), torch.rand(16) < 0.5
    grads = []
    for model in (eager, compiled):
        p, n = model.score_batch(pos, ents, side)
        (p.sum() - n.logsumexp(1).sum()).backward()
        grads.append((p.detach(), n.detach(), model.encoder.entity.weight.grad.clone()))
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    with torch.no_grad():
        kept, rel = kg.train[:9, 0], kg.train[:9, 1]
        assert torch.allclose(
            eager.score_all(kept, rel, True), compiled.score_all(kept, rel, True, chunk_size=4), atol=1e-4
        )
