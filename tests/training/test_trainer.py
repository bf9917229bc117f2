import itertools
import json

import pytest
import torch

from gnnns.loaders import TripleLoader
from gnnns.losses import NSSALoss
from gnnns.models import build_model
from gnnns.sampling import UniformSampler
from gnnns.training import Trainer, TrainingDiverged
from gnnns.training.checkpoint import load
from gnnns.training.run import train
from tests.graphs import small_run


def config(tmp_path, name, **kw):
    return small_run(tmp_path, name, **{"dataset": "ring", "epochs": 4, "eval_every": -1, **kw})


def test_resume_reproduces_uninterrupted_run_bit_for_bit(tmp_path, ring_kg):
    train(config(tmp_path, "full", epochs=4), kg=ring_kg)
    train(config(tmp_path, "split", epochs=2), kg=ring_kg)
    train(config(tmp_path, "split", epochs=4), resume=True, kg=ring_kg)
    full = load(tmp_path / "full" / "checkpoint.pt")
    split = load(tmp_path / "split" / "checkpoint.pt")
    assert full["epoch"] == split["epoch"] == 4
    for key, value in full["model"].items():
        assert torch.equal(value, split["model"][key]), key

    def losses(d):
        return [json.loads(x)["loss"] for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]

    assert losses("full") == losses("split") and len(losses("full")) == 4


def test_same_seed_same_result_other_seed_differs(tmp_path, ring_kg):
    a = train(config(tmp_path, "a", epochs=2, eval_every=0), kg=ring_kg)
    b = train(config(tmp_path, "b", epochs=2, eval_every=0), kg=ring_kg)
    c = train(config(tmp_path, "c", epochs=2, eval_every=0, seed=1), kg=ring_kg)
    assert a["test"]["mrr"] == b["test"]["mrr"]
    assert a["test"]["mrr"] != c["test"]["mrr"]


@pytest.mark.parametrize("training,loss", [("negative", "nssa"), ("1vsall", "sce"), ("kvsall", "bce")])
def test_training_learns_the_ring(tmp_path, ring_kg, training, loss):
    kw = dict(training=training, loss=loss, model="complex", dim=16, epochs=60, lr=0.05, eval_every=0)
    if training != "negative":
        kw.update(label_smoothing=0.1, batch_size=64)
    result = train(config(tmp_path, training, **kw), kg=ring_kg)
    assert result["test"]["mrr"] > 0.5  # random ranking gives about 0.08 on 60 entities
    saved = json.loads((tmp_path / training / "metrics.json").read_text())
    assert saved["test"]["mrr"] == pytest.approx(result["test"]["mrr"])


class NaNAfter(NSSALoss):
    def __init__(self, steps):
        super().__init__(margin=2.0)
        self.steps, self.calls = steps, 0

    def forward(self, pos, neg, weight=None):
        self.calls += 1
        loss = super().forward(pos, neg, weight)
        return loss * float("nan") if self.calls > self.steps else loss


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, ring_kg):
    model = build_model("distmult", ring_kg, 8)
    loader = TripleLoader(ring_kg.train, 50)  # 3 steps per epoch
    trainer = Trainer(
        model,
        ring_kg,
        NaNAfter(steps=4),
        torch.optim.Adam(model.parameters()),
        loader,
        sampler=UniformSampler(ring_kg),
        num_negatives=4,
        run_dir=tmp_path,
        eval_every=-1,
        progress=False,
    )
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2.*checkpoint.*\(epoch 1\) is intact"):
        trainer.fit(5)
    saved = load(tmp_path / "checkpoint.pt")
    assert saved["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


def test_early_stopping(tmp_path, ring_kg):
    result = train(config(tmp_path, "es", lr=0.0, epochs=10, eval_every=1, patience=2), kg=ring_kg)
    assert result["summary"]["stopped_early"] and result["summary"]["epochs_trained"] == 3
    assert result["summary"]["best_epoch"] == 1


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_time_budget_stops_after_the_step_that_spends_it(tmp_path, ring_kg, clock):
    result = train(config(tmp_path, clock, epochs=4, time_budget=1e-9, budget_clock=clock), kg=ring_kg)
    records = [json.loads(x) for x in (tmp_path / clock / "metrics.jsonl").read_text().splitlines()]
    # The epoch was cut after its first step: recorded as partial, not counted as trained.
    assert [(r["epoch"], r["steps"], r.get("partial")) for r in records] == [(1, 1, True)]
    assert result["summary"]["budget_spent"] and result["summary"]["epochs_trained"] == 0


def test_unknown_budget_clock(tmp_path, ring_kg):
    with pytest.raises(ValueError, match="budget_clock"):
        train(config(tmp_path, "x", budget_clock="sundial"), kg=ring_kg)


def test_samplers_see_training_progress_by_epochs_or_by_time_budget(ring_kg):
    seen = []

    class Recording(UniformSampler):
        def set_progress(self, fraction):
            seen.append(fraction)
            super().set_progress(fraction)

    def trainer(**kw):
        model = build_model("distmult", ring_kg, 8)
        optimizer = torch.optim.Adam(model.parameters())
        loader = TripleLoader(ring_kg.train, 32)  # 150 triples: 5 batches an epoch
        return Trainer(model, ring_kg, NSSALoss(), optimizer, loader, Recording(ring_kg), 4, progress=False, **kw)

    trainer().fit(2)
    assert seen == pytest.approx([(e + s / 5) / 2 for e in range(2) for s in range(5)])
    # With a budget, progress is the share of the budget used when that is further along.
    budgeted = trainer(time_budget=10.0)
    budgeted.budget_used = 9.9
    seen.clear()
    budgeted.fit(1000)
    assert seen[0] >= 0.99 and all(b >= a for a, b in itertools.pairwise(seen))


def test_sparse_setting_gives_sparse_embedding_gradients(tmp_path, ring_kg):
    from gnnns.training.run import build_run_model

    assert build_run_model(config(tmp_path, "s", sparse=True), ring_kg).sparse
    assert not build_run_model(config(tmp_path, "d"), ring_kg).sparse
    result = train(config(tmp_path, "sparse", sparse=True, epochs=30, eval_every=0), kg=ring_kg)
    assert result["test"]["mrr"] > 0.3  # learns: random ranking gives about 0.08


def test_checkpoint_intervals_must_not_be_negative(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every and checkpoint_seconds must be >= 0"):
        config(tmp_path, "x", checkpoint_every=-1)
    with pytest.raises(ValueError, match="checkpoint_every and checkpoint_seconds must be >= 0"):
        config(tmp_path, "x", checkpoint_seconds=-5.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"time_budget": -100}, "time_budget must be >= 0"),
        ({"eval_every": -7}, "eval_every must be >= -1"),
        ({"patience": -3}, "patience must be >= 0"),
        ({"epochs": -1}, "epochs must be >= 0"),
        ({"diagnostics_every": -2}, "diagnostics_every must be >= 0"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"patience": 2, "eval_every": 0}, "patience needs validation during training, but eval_every is 0"),
        ({"lr_scheduler": "plateau", "eval_every": -1}, "lr_scheduler: plateau needs validation"),
    ],
)
def test_settings_that_would_be_ignored_or_misread_are_refused(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, "x", **settings)


def test_plateau_schedule_lowers_the_rate_after_validations_and_resumes_with_it(tmp_path, ring_kg):
    # A threshold of 10 makes no validation after the first count as better, so with patience 0
    # every later validation halves the rate: 0.05, then 0.025, 0.0125, 0.00625.
    schedule = {"lr_scheduler": "plateau", "lr_scheduler_options": {"factor": 0.5, "patience": 0, "threshold": 10}}
    train(config(tmp_path, "full", epochs=4, eval_every=1, **schedule), kg=ring_kg)
    records = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.025, 0.0125, 0.00625])
    saved = load(tmp_path / "full" / "checkpoint.pt")
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.00625)
    assert saved["lr_schedule"]["bad"] == 0 and saved["lr_schedule"]["best"] == records[0]["valid"]["mrr"]
    # Stopped after two epochs and resumed, the run reaches the same weights and rates.
    train(config(tmp_path, "split", epochs=2, eval_every=1, **schedule), kg=ring_kg)
    train(config(tmp_path, "split", epochs=4, eval_every=1, **schedule), resume=True, kg=ring_kg)
    split = load(tmp_path / "split" / "checkpoint.pt")
    assert split["lr_schedule"] == saved["lr_schedule"]
    for key, value in saved["model"].items():
        assert torch.equal(value, split["model"][key]), key


def test_step_schedule_sets_each_epochs_rate_and_a_resumed_run_follows_it(tmp_path, ring_kg):
    schedule = {"lr_scheduler": "step", "lr_scheduler_options": {"milestones": [1, 3], "factor": 0.5}}
    train(config(tmp_path, "full", epochs=4, **schedule), kg=ring_kg)
    records = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.025, 0.025, 0.0125])
    saved = load(tmp_path / "full" / "checkpoint.pt")
    train(config(tmp_path, "split", epochs=2, **schedule), kg=ring_kg)
    train(config(tmp_path, "split", epochs=4, **schedule), resume=True, kg=ring_kg)
    split = load(tmp_path / "split" / "checkpoint.pt")
    assert split["lr_schedule"] == saved["lr_schedule"] == {"base": [0.05]}
    for key, value in saved["model"].items():
        assert torch.equal(value, split["model"][key]), key


def test_embedding_dropout_changes_training_but_not_evaluation(tmp_path, ring_kg):
    plain = train(config(tmp_path, "plain", epochs=2, eval_every=0), kg=ring_kg)
    dropped = train(
        config(tmp_path, "dropped", epochs=2, eval_every=0, encoder_options={"entity_dropout": 0.5}), kg=ring_kg
    )
    assert plain["test"]["mrr"] != dropped["test"]["mrr"]
    # Evaluating the trained model twice gives the same ranks: no dropout outside training.
    from gnnns.evaluation import evaluate

    model = build_model("distmult", ring_kg, 16, encoder_options={"entity_dropout": 0.5})
    model.load_state_dict(load(tmp_path / "dropped" / "checkpoint.pt")["model"])
    model.eval()
    first = evaluate(model, ring_kg, "test")
    assert evaluate(model, ring_kg, "test") == first


def test_direct_head_queries_score_every_head_with_the_relation_itself(tmp_path, ring_kg):
    """1-N training without inverse relations (LibKGE without reciprocal_relations_model): the
    loader's head query (t, r + R) is scored as s(e, r, t) for every entity e, brute force."""
    from gnnns.training.run import build_trainer

    cfg = config(tmp_path, "direct", model="complex", training="1vsall", loss="sce", head_queries="direct")
    cfg.regularizer_weight = 0.01
    trainer = build_trainer(cfg, ring_kg, None)
    model = trainer.model
    assert not model.reciprocal and model.encoder.relation.weight.shape[0] == ring_kg.num_relations
    queries, answers = next(iter(trainer.loader))
    assert (queries[:, 1] >= ring_kg.num_relations).any() and (queries[:, 1] < ring_kg.num_relations).any()
    model.eval()  # no dropout in ComplEx; eval only to be explicit
    with torch.no_grad():
        got = trainer._one_to_n_loss(queries, answers)
        R, E = ring_kg.num_relations, ring_kg.num_entities
        losses, n3 = [], []
        ent, rel = model.encoder.entity.weight, model.encoder.relation.weight
        for (kept, r), answer in zip(queries.tolist(), answers.tolist(), strict=True):
            others = torch.arange(E)
            if r >= R:  # (?, r - R, kept)
                triples = torch.stack([others, torch.full_like(others, r - R), torch.full_like(others, kept)], 1)
            else:
                triples = torch.stack([torch.full_like(others, kept), torch.full_like(others, r), others], 1)
            scores = model.score(triples)
            losses.append(torch.logsumexp(scores, 0) - scores[answer])
            n3.append(sum(x.abs().pow(3).sum() for x in (ent[kept], rel[r % R], ent[answer])))
        expected = torch.stack(losses).mean() + 0.01 * torch.stack(n3).mean()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_direct_head_queries_are_refused_where_they_do_not_apply(tmp_path, ring_kg):
    from gnnns.training.run import build_trainer

    for bad in (
        dict(head_queries="direct"),  # negative sampling
        dict(training="1vsall", loss="sce", head_queries="direct", model="conve", dim=8),
        dict(training="1vsall", loss="sce", head_queries="direct", reciprocal=True),
    ):
        with pytest.raises(ValueError, match="head_queries: direct is for 1-N training"):
            build_trainer(config(tmp_path, "bad", **bad), ring_kg, None)
    with pytest.raises(ValueError, match="head_queries must be 'inverse' or 'direct'"):
        build_trainer(config(tmp_path, "bad", training="1vsall", loss="sce", head_queries="both"), ring_kg, None)


@pytest.mark.parametrize("training,loss", [("negative", "nssa"), ("1vsall", "sce")])
def test_n3_penalises_the_parameters_not_their_dropped_out_copy(tmp_path, ring_kg, training, loss):
    from gnnns.training.run import build_trainer

    cfg = config(tmp_path, "n3", training=training, loss=loss, encoder_options={"entity_dropout": 0.5})
    trainer = build_trainer(cfg, ring_kg, None)
    trainer.model.train()
    triples = ring_kg.train[:7]
    ent, rel = trainer.model.encoder.entity.weight, trainer.model.encoder.relation.weight
    with torch.no_grad():
        expected = ent[triples[:, 0]].abs() ** 3 + rel[triples[:, 1]].abs() ** 3 + ent[triples[:, 2]].abs() ** 3
        expected = expected.sum(1).mean()
        one_to_n = training == "1vsall"
        got = trainer._n3_queries(triples[:, :2], triples[:, 2]) if one_to_n else trainer._n3(triples)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("training,loss", [("negative", "nssa"), ("1vsall", "sce")])
def test_l2_penalty_on_the_batch_rows_with_its_own_relation_weight(tmp_path, ring_kg, training, loss):
    from gnnns.training.run import build_trainer

    settings = dict(regularizer="l2", regularizer_weight=0.01, relation_regularizer_weight="1e-04")
    trainer = build_trainer(config(tmp_path, "l2", training=training, loss=loss, **settings), ring_kg, None)
    triples = ring_kg.train[:7]
    ent, rel = trainer.model.encoder.entity.weight, trainer.model.encoder.relation.weight
    with torch.no_grad():
        # LibKGE's weighted lp penalty, p = 2: each row as often as the batch holds it, the relation
        # rows at their own weight (here 1/100 of the entities').
        squares = ent[triples[:, 0]] ** 2 + ent[triples[:, 2]] ** 2 + 0.01 * rel[triples[:, 1]] ** 2
        expected = squares.sum(1).mean()
        one_to_n = training == "1vsall"
        got = trainer._n3_queries(triples[:, :2], triples[:, 2]) if one_to_n else trainer._n3(triples)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="regularizer must be 'n3' or 'l2'"):
        build_trainer(config(tmp_path, "l3", regularizer="l3"), ring_kg, None)


class Shifted(UniformSampler):
    """Fixed negatives: the replaced entity shifted by 1, 2, ..., k (mod E)."""

    def draw(self, positives, num_negatives, corrupt_head):
        true = torch.where(corrupt_head, positives[:, 0], positives[:, 2])
        return (true.unsqueeze(1) + torch.arange(1, num_negatives + 1)) % self.num_entities


def _cross_entropy_by_hand(model, positives, entities, head_side):
    """Softmax cross-entropy of each positive against its corruptions, from model.score alone."""
    losses = []
    for triple, row in zip(positives.tolist(), entities.tolist(), strict=True):
        corrupted = [[e, triple[1], triple[2]] if head_side else [triple[0], triple[1], e] for e in row]
        scores = model.score(torch.tensor([triple, *corrupted]))
        losses.append(scores.logsumexp(0) - scores[0])
    return torch.stack(losses).mean()


def test_both_sides_loss_is_the_mean_of_each_sides_cross_entropy(tmp_path, ring_kg):
    from gnnns.losses import SoftmaxCrossEntropyLoss
    from gnnns.sampling import NegativeDiagnostics

    model = build_model("distmult", ring_kg, 8)
    diagnostics = NegativeDiagnostics(ring_kg, every=1, hardness_queries=0)

    def trainer(**sides):
        return Trainer(
            model,
            ring_kg,
            SoftmaxCrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            TripleLoader(ring_kg.train, 16),
            sampler=Shifted(ring_kg),
            num_negatives=5,
            eval_every=-1,
            progress=False,
            diagnostics=diagnostics,
            **sides,
        )

    positives = ring_kg.train[:16]
    heads = torch.stack([(positives[:, 0] + j) % 60 for j in range(1, 6)], 1)
    tails = torch.stack([(positives[:, 2] + j) % 60 for j in range(1, 6)], 1)
    with torch.no_grad():
        head_side = _cross_entropy_by_hand(model, positives, heads[:, :3], True)
        expected = (head_side + _cross_entropy_by_hand(model, positives, tails, False)) / 2
        got = trainer(negative_sides="both", num_head_negatives=3)._batch_loss(positives)
    torch.testing.assert_close(got, expected)
    # both sides measured: 16 x (3 + 5) negatives in the known-positive rate's count
    assert diagnostics.counts["known_positive_rate"] == 16 * 8
    # one random side per positive (the default): each positive against its side's 5, a different loss
    one_side = trainer()
    torch.manual_seed(0)
    with torch.no_grad():
        random_side = one_side._batch_loss(positives)
    torch.manual_seed(0)
    sides = (torch.rand(16) < 0.5).tolist()  # the sampler's fair coin, drawn again
    with torch.no_grad():
        one = [
            _cross_entropy_by_hand(model, positives[i : i + 1], (heads if s else tails)[i : i + 1], s)
            for i, s in enumerate(sides)
        ]
    torch.testing.assert_close(random_side, torch.stack(one).mean())
    assert not torch.allclose(random_side, expected)
    with pytest.raises(ValueError, match="negative_sides must be 'random' or 'both'"):
        trainer(negative_sides="all")
    with pytest.raises(ValueError, match="num_head_negatives"):
        trainer(num_head_negatives=3)
