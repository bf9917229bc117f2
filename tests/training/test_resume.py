"""Stopping a run in the middle of an epoch (crash, Ctrl-C) and resuming it bit for bit."""

import json
import os
import signal

import pytest
import torch

from gnnns.loaders import TripleLoader
from gnnns.training.checkpoint import load
from gnnns.training.run import train
from gnnns.training.trainer import Trainer, TrainingInterrupted
from tests.graphs import small_run

# Wall-clock figures differ between any two runs; everything else must not.
TIMING = {"train_seconds", "triples_per_second", "sample_ms", "step_ms", "sample_share"}


class Crash(Exception):
    """Stands for a process killed in the middle of a step."""


def crash():
    raise Crash


def config(tmp_path, name, **kw):
    # 150 ring triples in batches of 32: 5 steps an epoch.
    return small_run(tmp_path, name, **{"dataset": "ring", "eval_every": -1, "diagnostics_every": 2, **kw})


def patch_step(monkeypatch, action, call):
    """Run ``action()`` at the start of the ``call``-th training step (counted over the run)."""
    original, calls = Trainer.step, [0]

    def step(self, batch):
        calls[0] += 1
        if calls[0] == call:
            action()
        return original(self, batch)

    monkeypatch.setattr(Trainer, "step", step)


def records(run_dir):
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING}
        return value

    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [strip(json.loads(line)) for line in lines]


def assert_same_run(a, b):
    first, second = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert first["epoch"] == second["epoch"] and second["batches_done"] == 0
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    assert records(a) == records(b)


def test_loader_regenerates_any_epoch_and_starts_anywhere():
    triples = torch.arange(60).view(20, 3)
    loader = TripleLoader(triples, batch_size=6, seed=5)
    again = TripleLoader(triples, batch_size=6, seed=5)
    epoch_2 = list(loader.batches(2))
    assert [len(b) for b in epoch_2] == [6, 6, 6, 2]
    assert torch.equal(torch.cat(epoch_2)[:, 0].sort().values, triples[:, 0])
    # Regenerated from (seed, epoch) alone, by another loader, and resumable at any batch.
    assert all(torch.equal(x, y) for x, y in zip(epoch_2, again.batches(2), strict=True))
    assert all(torch.equal(x, y) for x, y in zip(epoch_2[2:], again.batches(2, start=2), strict=True))
    assert not torch.equal(loader.order(1), loader.order(2))
    assert not torch.equal(loader.order(2), TripleLoader(triples, 6, seed=6).order(2))
    # Iterating the loader itself walks through the epochs 0, 1, 2, ...
    iterated = [torch.cat(list(loader)) for _ in range(3)]
    assert torch.equal(iterated[2], torch.cat(epoch_2))


@pytest.mark.parametrize("sampler", ["uniform", "dynamic", "nscaching"])
def test_crash_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path, ring_kg, monkeypatch, sampler):
    train(config(tmp_path, "full", sampler=sampler, checkpoint_every=2), kg=ring_kg)
    # Steps 6..10 are epoch 2; checkpoints after its steps 2 and 4. Dying in step 9 (its 4th)
    # leaves the one of step 2, so steps 3 and 4 are redone after the resume.
    patch_step(monkeypatch, crash, call=9)
    with pytest.raises(Crash):
        train(config(tmp_path, "crashed", sampler=sampler, checkpoint_every=2), kg=ring_kg)
    saved = load(tmp_path / "crashed" / "checkpoint.pt")
    assert (saved["epoch"], saved["batches_done"]) == (1, 2)
    assert saved["sums"]["rows"] == 64 and saved["sums"]["steps"] == 2
    monkeypatch.undo()
    train(config(tmp_path, "crashed", sampler=sampler, checkpoint_every=2), resume=True, kg=ring_kg)
    assert_same_run(tmp_path / "full", tmp_path / "crashed")


def test_one_to_n_training_resumes_mid_epoch(tmp_path, ring_kg, monkeypatch):
    # 1-N batches come in an order drawn from the global generator: the resume replays it.
    kw = dict(training="1vsall", loss="sce", batch_size=64, checkpoint_every=2, diagnostics_every=0)
    train(config(tmp_path, "full", **kw), kg=ring_kg)
    patch_step(monkeypatch, crash, call=8)
    with pytest.raises(Crash):
        train(config(tmp_path, "crashed", **kw), kg=ring_kg)
    assert load(tmp_path / "crashed" / "checkpoint.pt")["batches_done"] == 2
    monkeypatch.undo()
    train(config(tmp_path, "crashed", **kw), resume=True, kg=ring_kg)
    assert_same_run(tmp_path / "full", tmp_path / "crashed")


def test_checkpoint_seconds_writes_after_every_step_when_due(tmp_path, ring_kg, monkeypatch):
    patch_step(monkeypatch, crash, call=4)
    with pytest.raises(Crash):
        train(config(tmp_path, "timed", checkpoint_seconds=1e-9), kg=ring_kg)
    assert load(tmp_path / "timed" / "checkpoint.pt")["batches_done"] == 3


@pytest.mark.parametrize("call,position", [(7, (1, 2)), (5, (1, 0))])
def test_ctrl_c_finishes_the_step_writes_a_checkpoint_and_resumes(tmp_path, ring_kg, monkeypatch, call, position):
    train(config(tmp_path, "full", sampler="dynamic"), kg=ring_kg)
    patch_step(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGINT), call=call)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(config(tmp_path, "stopped", sampler="dynamic"), kg=ring_kg)
    saved = load(tmp_path / "stopped" / "checkpoint.pt")
    # The step during which Ctrl-C came was completed and is in the checkpoint.
    assert (saved["epoch"], saved["batches_done"]) == position
    assert stopped.value.checkpoint == tmp_path / "stopped" / "checkpoint.pt"
    where = "at epoch 2, step 2" if position[1] else "after epoch 1"
    assert f"training stopped {where}" in str(stopped.value)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    monkeypatch.undo()
    train(config(tmp_path, "stopped", sampler="dynamic"), resume=True, kg=ring_kg)
    assert_same_run(tmp_path / "full", tmp_path / "stopped")


def test_second_ctrl_c_stops_at_once_without_a_new_checkpoint(tmp_path, ring_kg, monkeypatch):
    patch_step(monkeypatch, lambda: [os.kill(os.getpid(), signal.SIGINT) for _ in range(2)], call=7)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(config(tmp_path, "twice"), kg=ring_kg)
    assert not isinstance(stopped.value, TrainingInterrupted)
    saved = load(tmp_path / "twice" / "checkpoint.pt")
    assert (saved["epoch"], saved["batches_done"]) == (1, 0)  # the last epoch end


def test_a_budget_spent_mid_epoch_is_resumed_where_it_stopped(tmp_path, ring_kg, monkeypatch):
    train(config(tmp_path, "full", sampler="nscaching"), kg=ring_kg)
    steps, original = [0], Trainer.step

    def step(self, batch):
        steps[0] += 1
        return original(self, batch)

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(Trainer, "budget_spent", lambda self: steps[0] >= 7)  # spent in epoch 2, step 2
    result = train(config(tmp_path, "cut", sampler="nscaching"), kg=ring_kg)
    assert result["summary"]["epochs_trained"] == 1 and result["summary"]["budget_spent"]
    saved = load(tmp_path / "cut" / "checkpoint.pt")
    assert (saved["epoch"], saved["batches_done"]) == (1, 2)
    lines = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["steps"], r.get("partial", False)) for r in lines] == [(1, 5, False), (2, 2, True)]
    monkeypatch.undo()
    # A larger budget (here none) finishes epoch 2 from its step 3: the same run as without the cut.
    train(config(tmp_path, "cut", sampler="nscaching"), resume=True, kg=ring_kg)
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_a_run_that_stopped_early_stays_stopped_when_resumed(tmp_path, ring_kg):
    settings = dict(lr=0.0, epochs=10, eval_every=1, patience=2)
    first = train(config(tmp_path, "es", **settings), kg=ring_kg)
    assert first["summary"]["stopped_early"] and first["summary"]["epochs_trained"] == 3
    again = train(config(tmp_path, "es", **settings), resume=True, kg=ring_kg)
    assert again["summary"]["stopped_early"] and again["summary"]["epochs_trained"] == 3
    assert [r["epoch"] for r in records(tmp_path / "es")] == [1, 2, 3]


def test_a_fresh_run_in_a_used_folder_reads_nothing_of_the_old_run(tmp_path, ring_kg):
    train(config(tmp_path, "used", epochs=1, eval_every=1, lr=0.0), kg=ring_kg)  # leaves best.pt of epoch 1
    assert (tmp_path / "used" / "best.pt").exists()
    settings = dict(epochs=3, eval_every=0, lr=0.05)  # validation only at the end: no best.pt of its own
    reused = train(config(tmp_path, "used", **settings), kg=ring_kg)
    clean = train(config(tmp_path, "clean", **settings), kg=ring_kg)
    assert reused["test"] == clean["test"] and not (tmp_path / "used" / "best.pt").exists()


def test_diagnostics_generator_is_checkpointed():
    from types import SimpleNamespace

    from gnnns.training.checkpoint import diagnostics_state, load_diagnostics_state

    def fresh():
        return SimpleNamespace(batches=0, sums={}, counts={}, _generator=torch.Generator().manual_seed(0))

    running = fresh()
    running._sampled = True  # this epoch's hardness was estimated from a sample: the record says so
    torch.randint(100, (5,), generator=running._generator)
    restored = fresh()
    restored._sampled = False
    load_diagnostics_state(restored, diagnostics_state(running))
    assert restored._sampled
    assert torch.equal(
        torch.randint(100, (5,), generator=restored._generator), torch.randint(100, (5,), generator=running._generator)
    )


def test_a_fresh_run_refuses_to_delete_an_interrupted_run(tmp_path, ring_kg, monkeypatch):
    patch_step(monkeypatch, crash, call=4)
    with pytest.raises(Crash):
        train(config(tmp_path, "cut", checkpoint_every=1), kg=ring_kg)
    monkeypatch.undo()
    saved = (tmp_path / "cut" / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"unfinished run.*--resume.*--overwrite"):
        train(config(tmp_path, "cut", checkpoint_every=1), kg=ring_kg)
    assert (tmp_path / "cut" / "checkpoint.pt").read_bytes() == saved  # untouched
    # --overwrite starts again there: the same run as in a clean folder.
    train(config(tmp_path, "cut", checkpoint_every=1), kg=ring_kg, overwrite=True)
    train(config(tmp_path, "clean", checkpoint_every=1), kg=ring_kg)
    assert_same_run(tmp_path / "clean", tmp_path / "cut")
    # A finished run is replaced without asking (the benchmarks rerun into their folders).
    train(config(tmp_path, "cut", checkpoint_every=1), kg=ring_kg)


def test_a_resumed_run_is_unfinished_until_it_ends_again(tmp_path, ring_kg, monkeypatch):
    train(config(tmp_path, "run", epochs=1), kg=ring_kg)
    assert (tmp_path / "run" / "metrics.json").exists()
    # Resumed for more epochs and killed: the old metrics.json no longer stands for the run.
    patch_step(monkeypatch, crash, call=2)
    with pytest.raises(Crash):
        train(config(tmp_path, "run", epochs=3), resume=True, kg=ring_kg)
    monkeypatch.undo()
    assert not (tmp_path / "run" / "metrics.json").exists()
    with pytest.raises(FileExistsError, match="unfinished run"):
        train(config(tmp_path, "run", epochs=3), kg=ring_kg)
    train(config(tmp_path, "run", epochs=3), resume=True, kg=ring_kg)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]["epochs_trained"] == 3


def _budget_after(monkeypatch, steps_allowed):
    """Make the time budget run out after ``steps_allowed`` training steps of the run."""
    steps, original = [0], Trainer.step

    def step(self, batch):
        steps[0] += 1
        return original(self, batch)

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(Trainer, "budget_spent", lambda self: steps[0] >= steps_allowed)


def _valid_mrr(run_dir, ring_kg, weights):
    """Validation MRR of the weights in ``run_dir/weights``, through a model built afresh."""
    from gnnns.config import RunConfig
    from gnnns.evaluation import evaluate
    from gnnns.training.run import build_run_model

    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    model = build_run_model(config, ring_kg)
    model.load_state_dict(load(run_dir / weights)["model"])
    return evaluate(model.eval(), ring_kg, "valid", 64)["mrr"]


# lr 0.2: the weights where the budget stopped validate at 0.20 against epoch 2's 0.07, so they are tested;
# 0.05: at 0.11 against 0.12, so epoch 2's are; 0: the weights never change, a tie that keeps epoch 2's.
@pytest.mark.parametrize(("lr", "better"), [(0.2, True), (0.05, False), (0.0, False)])
def test_a_budget_spent_after_the_last_validation_validates_there_and_tests_the_better_weights(
    tmp_path, ring_kg, monkeypatch, lr, better
):
    settings = dict(eval_every=2, epochs=4, lr=lr, sampler="nscaching")
    train(config(tmp_path, "full", **settings), kg=ring_kg)
    _budget_after(monkeypatch, 13)  # validated at epoch 2 (step 10), stopped in epoch 3 at its step 3
    result = train(config(tmp_path, "cut", **settings), kg=ring_kg)
    at_end = result["summary"]["budget_validation"]
    assert (at_end["epoch"], at_end["step"]) == (2, 3)
    # The checkpoint holds the weights where the budget stopped, written before they were validated.
    assert at_end["valid"]["mrr"] == pytest.approx(_valid_mrr(tmp_path / "cut", ring_kg, "checkpoint.pt"))
    best = [r["valid"]["mrr"] for r in records(tmp_path / "cut") if "valid" in r]
    assert len(best) == 1 and at_end["better"] == (at_end["valid"]["mrr"] > best[0])
    # The test is of the weights with the higher validation MRR: lr 0 never changes them, so epoch 2's.
    assert result["valid"]["mrr"] == pytest.approx(max(best[0], at_end["valid"]["mrr"]))
    assert at_end["better"] is better and (result["valid"]["mrr"] > best[0]) is better
    assert _valid_mrr(tmp_path / "cut", ring_kg, "best.pt") == pytest.approx(best[0])  # best.pt untouched
    monkeypatch.undo()
    # Resumed with a larger budget (here none), the run is the one that was not cut.
    train(config(tmp_path, "cut", **settings), resume=True, kg=ring_kg)
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_a_budget_spent_at_a_validated_epoch_end_validates_nothing_more(tmp_path, ring_kg, monkeypatch, capsys):
    _budget_after(monkeypatch, 10)  # the last step of epoch 2, which is validated
    result = train(config(tmp_path, "cut", eval_every=2, epochs=4), kg=ring_kg)
    assert result["summary"]["epochs_trained"] == 2 and "budget_validation" not in result["summary"]
    _budget_after(monkeypatch, 5)  # the end of epoch 1, which is not
    result = train(config(tmp_path, "odd", eval_every=2, epochs=4), kg=ring_kg)
    assert result["summary"]["budget_validation"]["epoch"] == 1
    assert result["summary"]["budget_validation"]["step"] == 0
    assert "where the budget stopped (epoch 1); no epoch had been validated" in capsys.readouterr().out
