"""The equal-budget comparison (benchmarks/budget_compare.py) ranks every library the same way."""

from __future__ import annotations

import pytest
import torch

from gnnns.data import synthetic_kg
from gnnns.evaluation import evaluate
from gnnns.models import build_model
from tests.benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def budget():
    with benchmark_script("budget_compare") as module:
        yield module


def brute_l2_rotate(entities, relations, kept, rel, predict_head, offset):
    """offset - ||h o r - t||_2 for every entity in the missing place, one triple at a time."""
    out = torch.empty(len(kept), len(entities), dtype=torch.float64)
    for i, (k, r) in enumerate(zip(kept.tolist(), rel.tolist(), strict=True)):
        for e in range(len(entities)):
            h, t = (entities[e], entities[k]) if predict_head else (entities[k], entities[e])
            diff = h * relations[r] - t
            out[i, e] = offset - diff.abs().square().sum().sqrt()
    return out


def test_l2_rotate_scorer_matches_the_definition_on_both_sides(budget):
    g = torch.Generator().manual_seed(0)
    entities = torch.randn(7, 5, dtype=torch.complex128, generator=g)
    relations = torch.randn(3, 5, dtype=torch.complex128, generator=g)  # not unit modulus: no shortcut
    score = budget.l2_rotate_scorer(entities, relations, offset=9.0)
    kept, rel = torch.tensor([0, 3, 6, 3]), torch.tensor([2, 0, 1, 1])
    for predict_head in (True, False):
        expected = brute_l2_rotate(entities, relations, kept, rel, predict_head, 9.0)
        torch.testing.assert_close(score(kept, rel, predict_head), expected, rtol=0, atol=1e-9)


def test_l2_rotate_scorer_reproduces_pyg_rotate_forward(budget):
    from torch_geometric.nn.kge import RotatE

    torch.manual_seed(0)
    model = RotatE(11, 4, hidden_channels=6, margin=9.0)
    for emb in (model.node_emb, model.node_emb_im):  # scale up so distances are not all near zero
        emb.weight.data.mul_(40)
    entities = torch.complex(model.node_emb.weight, model.node_emb_im.weight)
    phase = model.rel_emb.weight
    fast = budget.l2_rotate_scorer(entities, torch.polar(torch.ones_like(phase), phase), 9.0)

    @torch.no_grad()
    def own(kept, rel, predict_head):
        every = torch.arange(11).repeat(len(kept))
        kept, rel = kept.repeat_interleave(11), rel.repeat_interleave(11)
        return (model(every, rel, kept) if predict_head else model(kept, rel, every)).view(-1, 11)

    triples = torch.tensor([[0, 1, 5], [4, 3, 2], [10, 0, 7], [9, 2, 9], [1, 1, 1]])
    assert budget.check_scorer(fast, own, triples, tolerance=1e-4) <= 1e-4
    with pytest.raises(AssertionError, match="differs from the model's own scores"):
        budget.check_scorer(lambda *a: own(*a) + 0.01, own, triples, tolerance=1e-3)


def test_side_ranks_equal_gnnns_evaluate(budget):
    kg = synthetic_kg(num_people=100, num_cities=6, num_countries=3, num_continents=2, num_orgs=8, num_clubs=4)
    torch.manual_seed(0)
    model = build_model("distmult", kg, dim=8).eval()

    def score(kept, rel, predict_head):
        return model.score_all(kept, rel, predict_head=predict_head)

    ranks = budget.side_ranks(score, kg.test, kg.index(), batch_size=7)
    expected = evaluate(model, kg, "test", progress=False)
    assert ranks.shape == (len(kg.test), 2)
    assert budget.metrics(ranks)["mrr"] == pytest.approx(expected["mrr"], abs=1e-12)
    assert float((1 / ranks[:, 0]).mean()) == pytest.approx(expected["head"]["mrr"], abs=1e-12)
    assert budget.metrics(ranks)["hits@10"] == pytest.approx(expected["hits@10"], abs=1e-12)


def test_clock_evaluates_at_the_marks_with_the_clock_paused(budget, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(budget.time, "perf_counter", lambda: now[0])

    def evaluate_costs_50_seconds():
        now[0] += 50.0
        return {"mrr": 0.5}

    clock = budget.Clock(budget=100.0, points=2, evaluate=evaluate_costs_50_seconds)
    spent = []
    for _ in range(12):  # steps of 10 s of training each
        now[0] += 10.0
        spent.append(clock.tick(batch_size=4))
    # marks at 50 and 100 s of training; evaluation time never counts
    assert [c["train_seconds"] for c in clock.curve] == [50.0, 100.0]
    assert [c["steps"] for c in clock.curve] == [5, 10] and clock.curve[1]["triples"] == 40
    assert spent.index(True) == 9 and clock.elapsed() == 120.0


def test_eval_subset_is_seeded_sorted_and_whole_when_small(budget):
    test = torch.arange(30).view(10, 3)
    a, b = budget.eval_subset(test, 4, seed=0), budget.eval_subset(test, 4, seed=0)
    assert torch.equal(a, b) and len(a) == 4 and torch.all(a[1:, 0] > a[:-1, 0])
    assert torch.equal(budget.eval_subset(test, 0), test) and torch.equal(budget.eval_subset(test, 50), test)


def test_product_scorer_reproduces_pyg_distmult_forward(budget):
    from torch_geometric.nn.kge import DistMult

    torch.manual_seed(0)
    model = DistMult(9, 3, hidden_channels=5)
    fast = budget.product_scorer(model.node_emb.weight, model.rel_emb.weight)

    @torch.no_grad()
    def own(kept, rel, predict_head):
        every = torch.arange(9).repeat(len(kept))
        kept, rel = kept.repeat_interleave(9), rel.repeat_interleave(9)
        return (model(every, rel, kept) if predict_head else model(kept, rel, every)).view(-1, 9)

    triples = torch.tensor([[0, 1, 5], [4, 2, 2], [8, 0, 7], [3, 2, 3]])
    assert budget.check_scorer(fast, own, triples, tolerance=1e-6) <= 1e-6


def test_pykeen_plain_distmult_has_no_constraint_and_no_penalty(budget):
    # PyKEEN is a peer of the benchmarks (the bench extra), not of the test extra.
    TriplesFactory = pytest.importorskip("pykeen.triples").TriplesFactory

    kg = synthetic_kg(num_people=100, num_cities=4, num_countries=2, num_continents=1, num_orgs=3, num_clubs=2)
    tf = TriplesFactory(
        mapped_triples=kg.train,
        entity_to_id={n: i for i, n in enumerate(kg.entity_names)},
        relation_to_id={n: i for i, n in enumerate(kg.relation_names)},
    )
    default = budget.pykeen_model("distmult", tf, 0)
    plain = budget.pykeen_model("distmult", tf, 0, plain=True)
    # PyKEEN's default DistMult keeps entities at unit norm and penalises relations.
    assert default.entity_representations[0].constrainer is not None
    assert plain.entity_representations[0].constrainer is None
    assert plain.entity_representations[0].regularizer is None
    assert plain.relation_representations[0].regularizer is None
    plain.post_parameter_update()
    norms = plain.entity_representations[0](indices=None).norm(dim=-1)
    assert not torch.allclose(norms, torch.ones_like(norms))


def test_a_merged_side_is_reported_with_when_it_ran(budget):
    curve = [dict(mrr=0.3, **{"hits@1": 0.2, "hits@10": 0.5}, steps=100, train_seconds=60.0)]
    machine = dict(
        cpu="X", cores=2, torch="2", torch_threads=2, pykeen="1", python="3", gnnns_commit="c", date="d",
        loadavg_at_start=[1.5, 1, 1], loadavg_at_end=[1, 1, 1],
    )  # fmt: skip
    payload = dict(
        machine=machine, dataset="wn18rr", budget_seconds=60, eval_triples=10, order="gnnns,pykeen,pyg",
        settings=dict(model="DistMult", dim=200, batch_size=512, negatives=128, loss="NSSA", optimizer="Adam"),
        command="python benchmarks/budget_compare.py",
        sides={
            "gnnns": dict(curve=curve, epochs=1.0, command="gnnns"),
            "pykeen-plain": dict(
                curve=[dict(curve[0], mrr=0.25, steps=50)], epochs=0.5, command="p",
                merged=dict(machine=dict(machine, loadavg_at_start=[0.7, 1, 1]), date="2026-11-21 15:00"),
            ),
        },
    )  # fmt: skip
    text = budget.markdown(payload)
    assert "| PyKEEN, no constraints | 0.2500 |" in text
    assert "gnnns − PyKEEN, no constraints: **+0.0500** MRR" in text and "(2.00× the steps)" in text
    merged = "PyKEEN, no constraints was run later and merged in (2026-11-21 15:00, load average 0.70 at its start)."
    assert merged in text
