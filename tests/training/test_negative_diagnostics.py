import json

import pytest

from gnnns.cli import main
from gnnns.plots import panels_for, plot_runs, read_metrics
from gnnns.training.run import train
from tests.graphs import small_run


def run_config(tmp_path, name, **kw):
    settings = dict(dataset="ring", eval_every=1, diagnostics_every=1, loss="sce", margin=6.0)
    return small_run(tmp_path, name, **{**settings, **kw})


def test_every_epoch_logs_the_negatives(tmp_path, ring_kg):
    train(run_config(tmp_path, "run"), kg=ring_kg)
    records = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for record in records:
        negatives = record["negatives"]
        # 150 training triples in batches of 32: 5 batches, each measured (diagnostics_every=1).
        assert negatives["batches"] == 5
        assert 0.0 <= negatives["false_negative_rate"] <= 0.05
        # About one uniform corruption in 60 hits a training triple of the ring (one answer of 60).
        assert 0.0 < negatives["known_positive_rate"] < 0.1
        assert 0.0 < negatives["distinct_share"] <= 1.0
        # 32 x 8 uniform draws from the ring's 60 entities: as many distinct ones as uniform draws give.
        assert negatives["distinct_vs_uniform"] == pytest.approx(1.0, abs=0.05)
        assert 0.0 < negatives["sample_share"] < 1.0
    # Uniform negatives: their mean percentile among all entities is about one half, whatever the model.
    hardness = [r["negatives"]["hardness"] for r in records]
    assert sum(hardness) / len(hardness) == pytest.approx(0.5, abs=0.08)


def test_plot_draws_a_png_for_one_or_several_runs(tmp_path, ring_kg):
    train(run_config(tmp_path, "a", epochs=2), kg=ring_kg)
    train(run_config(tmp_path, "b", epochs=2, seed=1), kg=ring_kg)
    png = plot_runs([tmp_path / "a"])
    assert png == tmp_path / "a" / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(tmp_path / "both.png")]) == 0
    assert (tmp_path / "both.png").stat().st_size > 1000


def test_diversity_panel_falls_back_to_the_share_for_older_runs():
    new = [{"epoch": 1, "loss": 1.0, "negatives": {"distinct_share": 0.2, "distinct_vs_uniform": 0.98}}]
    old = [{"epoch": 1, "loss": 1.0, "negatives": {"distinct_share": 0.2}}]
    assert [p[1] for p in panels_for([new])] == [("loss",), ("negatives", "distinct_vs_uniform")]
    assert [p[1] for p in panels_for([old])] == [("loss",), ("negatives", "distinct_share")]
    assert [p[1] for p in panels_for([old, new])] == [("loss",), ("negatives", "distinct_vs_uniform")]


def test_plot_names_the_bad_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "loss": 1.0}) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="gnnns run directory"):
        read_metrics(tmp_path / "missing")


def test_sampler_options_from_the_command_line(tmp_path, capsys):
    from gnnns.cli import _config_from_args, build_parser

    cfg = tmp_path / "run.yaml"
    cfg.write_text("sampler: khop\nsampler_options:\n  k: 3\n  rounds: 2\n")
    args = build_parser().parse_args(
        ["train", "--config", str(cfg), "--sampler-option", "k=1", "--sampler-option", "mode=top"]
    )
    config = _config_from_args(args)
    assert config.sampler_options == {"k": 1, "rounds": 2, "mode": "top"}
    bad = build_parser().parse_args(["train", "--sampler-option", "k"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _config_from_args(bad)


def test_measuring_leaves_batch_norm_statistics_alone(tmp_path, ring_kg):
    import itertools

    import torch

    from gnnns.training.run import build_trainer, seed_everything

    def buffers_after_steps(every):
        config = run_config(tmp_path, f"conve{every}", model="conve", dim=32, diagnostics_every=every)
        seed_everything(0)
        trainer = build_trainer(config, ring_kg, None)
        for batch in itertools.islice(trainer.loader, 3):
            trainer.step(batch)
        return {k: v.clone() for k, v in trainer.model.state_dict().items() if "running" in k}

    # Measuring every batch (in eval mode) must leave ConvE's batch-norm running statistics as an
    # unmeasured run leaves them: evaluation reads them.
    measured, unmeasured = buffers_after_steps(1), buffers_after_steps(0)
    assert measured and measured.keys() == unmeasured.keys()
    assert all(torch.equal(measured[k], unmeasured[k]) for k in measured)
