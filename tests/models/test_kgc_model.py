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


def corrupted(pos, ents, side, num_relations, reciprocal):
    """The ``[B, k, 3]`` triples that replace one side of each positive, as the model asks them."""
    triples = pos.unsqueeze(1).repeat(1, ents.size(1), 1)
    triples[side, :, 0] = ents[side]
    triples[~side, :, 2] = ents[~side]
    if reciprocal:
        flipped = torch.stack([triples[..., 2], triples[..., 1] + num_relations, triples[..., 0]], -1)
        triples = torch.where(side.view(-1, 1, 1), flipped, triples)
    return triples


DISTINCT_CASES = [
    ("transe", False, {"p": 1}),
    ("transe", True, {"p": 2}),
    ("distmult", False, {}),
    ("complex", True, {}),
    ("rotate", False, {}),
    ("rescal", True, {}),
    ("conve", True, {"height": 2}),
]


@pytest.mark.parametrize("mode", ["distinct", "triple"])
@pytest.mark.parametrize(("name", "reciprocal", "options"), DISTINCT_CASES)
def test_distinct_and_triple_negative_scoring_give_the_triples_scores_and_the_rows_gradients(
    name, reciprocal, options, mode
):
    kg = tiny_kg()
    torch.manual_seed(0)
    rows = build_model(name, kg, 8, reciprocal=reciprocal, **options)
    distinct = build_model(name, kg, 8, reciprocal=reciprocal, negative_scoring=mode, **options)
    distinct.load_state_dict(rows.state_dict())
    rows.eval(), distinct.eval()  # ConvE's dropout and batch norms off: both see the same function
    pos = kg.train[:12]
    ents = torch.randint(20, (12, 9))
    ents[:, 1] = ents[:, 0]  # repeated candidates, within a row and across rows
    ents[5] = ents[4]
    side = torch.rand(12) < 0.5
    if name == "conve":  # tail queries only; head queries go through inverse relations
        side = torch.zeros(12, dtype=torch.bool) if not reciprocal else side
    triples = corrupted(pos, ents, side, kg.num_relations, reciprocal)
    expected = rows.score(triples.view(-1, 3)).view(12, 9).detach()
    grads = []
    for model in (rows, distinct):
        p, n = model.score_batch(pos, ents, side)
        assert torch.allclose(n, expected, atol=1e-4), name
        (p.sum() - n.logsumexp(1).sum()).backward()
        grads.append([q.grad.clone() for q in model.parameters() if q.grad is not None])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4), name


@pytest.mark.parametrize("relation_dropout", [0.0, 1e-9])
@pytest.mark.parametrize(("name", "reciprocal", "options"), DISTINCT_CASES)
def test_triple_negative_scoring_with_lookup_dropout_gives_the_triples_scores_and_gradients(
    name, reciprocal, options, relation_dropout
):
    # Rates under 2**-17 drop nothing, yet the model takes its per-lookup dropout path: the triple
    # branch's one ordered lookup, its relation rows (repeated, or looked up again when dropped)
    # and its sides must give the brute-force scores and the rows' gradients.
    kg = tiny_kg()
    lookup = {"entity_dropout": 1e-9, "relation_dropout": relation_dropout, "dropout_mask": "lookup"}
    torch.manual_seed(0)
    rows = build_model(name, kg, 8, reciprocal=reciprocal, encoder_options=lookup, **options)
    triple = build_model(
        name, kg, 8, reciprocal=reciprocal, encoder_options=lookup, negative_scoring="triple", **options
    )
    triple.load_state_dict(rows.state_dict())
    rows.train(), triple.train()
    rows.decoder.eval(), triple.decoder.eval()  # ConvE's dropouts and batch norms: one function for both
    assert triple._row_dropout() is not None
    pos = kg.train[:12]
    ents = torch.randint(20, (12, 9))
    side = torch.rand(12) < 0.5
    expected = rows.score(corrupted(pos, ents, side, kg.num_relations, reciprocal).view(-1, 3)).view(12, 9)
    # The positive as the side asks it (a head query through its inverse relation when reciprocal).
    true = torch.where(side, pos[:, 0], pos[:, 2]).unsqueeze(1)
    expected_pos = rows.score(corrupted(pos, true, side, kg.num_relations, reciprocal).view(-1, 3))
    grads = []
    for model in (rows, triple):
        p, n = model.score_batch(pos, ents, side)
        assert torch.allclose(n, expected.detach(), atol=1e-4), name
        assert torch.allclose(p, expected_pos.detach(), atol=1e-4), name
        model.zero_grad()
        (p.sum() - n.logsumexp(1).sum()).backward()
        grads.append([q.grad.clone() for q in model.parameters() if q.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4), name


def test_distinct_negative_scoring_drops_each_candidate_once_per_batch():
    kg = tiny_kg()
    options = {"entity_dropout": 0.5, "dropout_mask": "lookup"}
    scores = {}
    for mode in ("rows", "distinct"):
        torch.manual_seed(0)
        model = build_model("distmult", kg, 64, encoder_options=options, negative_scoring=mode)
        model.train()
        ents = torch.full((3, 6), 7)  # one candidate, six times in each row
        _, scores[mode] = model.score_batch(kg.train[:3], ents, torch.zeros(3, dtype=torch.bool))
    # LibKGE's batch scoring embeds (and drops) each distinct candidate once: one score per row.
    assert torch.allclose(scores["distinct"], scores["distinct"][:, :1].expand(3, 6))
    # Rows draw a mask per looked-up row: six different masks of 64 entries each.
    assert scores["rows"].std(1).min() > 0


def test_triple_negative_scoring_drops_the_query_apart_for_every_negative():
    kg = tiny_kg()
    scores = {}
    options = {"entity_dropout": 0.5, "dropout_mask": "lookup"}
    for mode in ("rows", "distinct", "triple"):
        torch.manual_seed(0)
        model = build_model("transe", kg, 16, p=2, reciprocal=True, negative_scoring=mode, encoder_options=options)
        with torch.no_grad():
            model.encoder.entity.weight.fill_(1.0)
            model.encoder.entity.weight[7].zero_()  # the candidate: dropout leaves a zero row zero
            model.encoder.relation.weight.zero_()
        model.train()
        ents = torch.full((3, 40), 7)
        _, scores[mode] = model.score_batch(kg.train[:3], ents, torch.tensor([False, True, False]))
        # Every score is -||dropped(query)|| = -2 sqrt(kept coordinates of the query's mask).
        kept = (scores[mode] / 2).square()
        assert torch.allclose(kept, kept.round(), atol=1e-4), mode
    # Rows and distinct build one query per positive, so a row's negatives share its mask ...
    for mode in ("rows", "distinct"):
        assert torch.allclose(scores[mode], scores[mode][:, :1].expand(3, 40)), mode
    # ... while LibKGE's triple scoring looks the query up again for each negative: 40 masks of 16.
    assert (scores["triple"].std(1) > 0).all()
    # A score-aware sampler scores without dropout, where triples and rows are one computation.
    candidates = model.score_candidates(kg.train[:3], ents, torch.tensor([False, True, False]))
    assert model.negative_scoring == "triple" and model.training
    assert torch.equal(candidates, candidates[:, :1].expand(3, 40))


def test_triple_negative_scoring_draws_relation_masks_and_decoder_randomness_per_negative():
    kg = tiny_kg()
    side = torch.tensor([False, True, False])
    ents = torch.full((3, 40), 7)
    # Relation dropout alone: ones for the entities, zeros for the candidate, ones for the relations:
    # -||h + dropped(r) - 0||, with coordinates of 1 + 0 or 1 + 2, varies with the relation row's mask.
    scores = {}
    options = {"relation_dropout": 0.5, "dropout_mask": "lookup"}
    for mode in ("rows", "triple"):
        torch.manual_seed(0)
        model = build_model("transe", kg, 16, p=2, reciprocal=True, negative_scoring=mode, encoder_options=options)
        with torch.no_grad():
            model.encoder.entity.weight.fill_(1.0)
            model.encoder.entity.weight[7].zero_()
            model.encoder.relation.weight.fill_(1.0)
        model.train()
        _, scores[mode] = model.score_batch(kg.train[:3], ents, side)
        # sum of squares = 16 + 8 * (dropped relation coordinates of the query's mask)
        dropped = (scores[mode].square() - 16) / 8
        assert torch.allclose(dropped, dropped.round(), atol=1e-3), mode
    assert torch.allclose(scores["rows"], scores["rows"][:, :1].expand(3, 40))
    assert (scores["triple"].std(1) > 0).all()
    # ConvE in training, no per-lookup dropout: its own dropouts act inside the query, so triple
    # scoring still builds one query (and draws its masks) for every negative, as LibKGE's does.
    for mode in ("rows", "triple"):
        torch.manual_seed(0)
        model = build_model("conve", kg, 8, reciprocal=True, height=2, negative_scoring=mode)
        model.train()
        assert model._row_dropout() is None and model._random_query()
        _, scores[mode] = model.score_batch(kg.train[:3], ents, side)
    assert torch.allclose(scores["rows"], scores["rows"][:, :1].expand(3, 40))
    assert (scores["triple"].std(1) > 0).all()


def test_negative_scoring_is_checked():
    with pytest.raises(ValueError, match="negative_scoring"):
        build_model("distmult", tiny_kg(), 4, negative_scoring="unique")
