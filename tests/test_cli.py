import json

import torch

from gnnns.cli import main


def write_folder(path):
    path.mkdir()
    n = 30
    lines = [f"e{i}\tnext\te{(i + 1) % n}" for i in range(n)] + [f"e{(i + 1) % n}\tprev\te{i}" for i in range(n)]
    order = torch.randperm(len(lines), generator=torch.Generator().manual_seed(0)).tolist()
    lines = [lines[i] for i in order]
    (path / "train.txt").write_text("\n".join(lines[:50]) + "\n")
    (path / "valid.txt").write_text("\n".join(lines[50:55]) + "\n")
    (path / "test.txt").write_text("\n".join(lines[55:]) + "\n")
    return path


def test_train_and_evaluate_from_the_command_line(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    run = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: distmult\ndim: 8\nepochs: 3\nbatch-size: 16\nnum_negatives: 4\n")
    code = main(
        [
            "train",
            "--config",
            str(cfg),
            "--dataset",
            str(data),
            "--epochs",
            "2",
            "--no-progress",
            "--output",
            str(run),
            "--loss",
            "margin",
            "--margin",
            "1.0",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "test: MRR" in out
    saved = json.loads((run / "config.json").read_text())
    assert saved["epochs"] == 2 and saved["dim"] == 8 and saved["model"] == "distmult"  # flag beats file
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["test"]["mrr"] <= 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2

    assert main(["evaluate", str(run), "--split", "test", "--no-progress"]) == 0
    evaluated = json.loads((run / "evaluation_test.json").read_text())
    assert evaluated["metrics"]["mrr"] == metrics["test"]["mrr"]


def test_a_relative_dataset_folder_is_recorded_absolute(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    write_folder(work / "data")
    monkeypatch.chdir(work)
    flags = ["--dataset", "data", "--dim", "8", "--batch-size", "16", "--num-negatives", "4", "--no-progress"]
    assert main(["train", *flags, "--epochs", "1", "--output", "run"]) == 0
    saved = json.loads((work / "run" / "config.json").read_text())
    assert saved["dataset"] == str((work / "data").resolve())
    # Evaluated and resumed from another directory, it still finds its data.
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "work/run", "--split", "test", "--no-progress"]) == 0
    assert main(["train", "--resume", "--output", "work/run", "--epochs", "2", "--no-progress"]) == 0
    assert "test: MRR" in capsys.readouterr().out
    # A run saved by an older version with the folder relative resumes from where it was started.
    monkeypatch.chdir(work)
    saved["dataset"] = "data"
    (work / "run" / "config.json").write_text(json.dumps(saved))
    assert main(["train", "--resume", "--output", "run", "--epochs", "3", "--dataset", "data", "--no-progress"]) == 0


def test_errors_exit_non_zero_with_a_message(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("modle: rotate\n")
    assert main(["train", "--config", str(cfg)]) == 1
    assert "unknown setting(s) ['modle']" in capsys.readouterr().err
    cfg.write_text("model: [rotate\n")
    assert main(["train", "--config", str(cfg)]) == 1
    assert f"{cfg}:" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path / "missing"), "--no-progress"]) == 1
    assert main(["train", "--resume", "--output", str(tmp_path / "none")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_gnn_encoder_flags_reach_the_model(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--dataset", str(data), "--model", "distmult", "--dim", "8", "--epochs", "1"]
    args += ["--batch-size", "16", "--num-negatives", "4", "--no-progress", "--output", str(run)]
    args += ["--encoder", "rgcn", "--encoder-option", "num_bases=2", "--encoder-option", "num_layers=1"]
    args += ["--graph-mode", "neighbor", "--num-neighbors", "3,2"]
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["encoder_options"] == {"num_bases": 2, "num_layers": 1}
    assert config["num_neighbors"] == [3, 2] and config["graph_mode"] == "neighbor"
    state = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    assert state["encoder.convs.0.comp"].shape == (4, 2)  # 2R relations (with inverses) x 2 bases
    assert main([*args[:-2], "--output", str(tmp_path / "bad"), "--encoder-option", "num_basis=2"]) == 1
    assert "has no option ['num_basis']" in capsys.readouterr().err


def test_ctrl_c_writes_a_checkpoint_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from gnnns.training.trainer import Trainer

    data = write_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--dataset", str(data), "--model", "distmult", "--dim", "8", "--epochs", "2"]
    args += ["--batch-size", "16", "--num-negatives", "4", "--no-progress", "--output", str(run), "--eval-every", "-1"]
    original, calls = Trainer.step, [0]

    def step(self, batch):  # Ctrl-C during the 2nd step of epoch 1 (4 steps an epoch)
        calls[0] += 1
        if calls[0] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "step", step)
    assert main([*args, "--checkpoint-every", "3"]) == 130
    err = capsys.readouterr().err
    assert f"training stopped at epoch 1, step 2; checkpoint written to {run / 'checkpoint.pt'}" in err
    assert "--resume" in err
    assert json.loads((run / "config.json").read_text())["checkpoint_every"] == 3
    monkeypatch.undo()
    assert main(["train", "--resume", "--output", str(run)]) == 0
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_interrupt_outside_training_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    import gnnns.training.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gnnns.training.run, "train", interrupted)
    assert main(["train", "--no-progress", "--output", str(tmp_path / "run")]) == 130
    assert "the last checkpoint written is kept (continue with --resume)" in capsys.readouterr().err


def test_sparse_flag(tmp_path):
    data = write_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--dataset", str(data), "--model", "distmult", "--dim", "8", "--epochs", "1", "--sparse"]
    assert main([*args, "--batch-size", "16", "--no-progress", "--output", str(run), "--eval-every", "-1"]) == 0
    assert json.loads((run / "config.json").read_text())["sparse"] is True


def test_both_sides_flags_train_and_bad_settings_are_refused(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--dataset", str(data), "--model", "distmult", "--dim", "8", "--epochs", "1"]
    args += ["--batch-size", "16", "--num-negatives", "4", "--no-progress", "--eval-every", "-1"]
    assert main([*args, "--output", str(run), "--negative-sides", "both", "--num-head-negatives", "2"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["negative_sides"], config["num_head_negatives"], config["num_negatives"]) == ("both", 2, 4)
    bad = tmp_path / "bad"
    assert main([*args, "--output", str(bad), "--num-head-negatives", "2"]) == 1
    assert (
        "num_head_negatives counts the head side's negatives: it needs negative_sides: both" in capsys.readouterr().err
    )
    assert main([*args, "--output", str(bad), "--negative-sides", "both", "--num-head-negatives", "two"]) == 1
    assert "num_head_negatives must be a whole number, got 'two'" in capsys.readouterr().err
    assert main([*args, "--output", str(bad), "--negative-sides", "both", "--sampler", "bernoulli"]) == 1
    assert "sampler: bernoulli only chooses which side to corrupt" in capsys.readouterr().err


def test_precision_flag_trains_in_bf16_and_unknown_precisions_are_refused(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    args = ["train", "--dataset", str(data), "--model", "complex", "--dim", "8", "--epochs", "1"]
    args += ["--batch-size", "16", "--no-progress", "--eval-every", "0", "--training", "1vsall"]
    assert main([*args, "--output", str(tmp_path / "run"), "--precision", "bf16"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "bf16"
    assert main([*args, "--output", str(tmp_path / "bad"), "--precision", "fp16"]) == 1
    assert "precision must be one of ['fp32', 'bf16'], got 'fp16'" in capsys.readouterr().err


def test_negative_scoring_flag_reaches_the_model_and_unknown_modes_are_refused(tmp_path, capsys, monkeypatch):
    import gnnns.training.run

    built = []
    build = gnnns.training.run.build_run_model
    monkeypatch.setattr(gnnns.training.run, "build_run_model", lambda *a: built.append(build(*a)) or built[-1])
    data = write_folder(tmp_path / "data")
    args = ["train", "--dataset", str(data), "--model", "transe", "--p", "2", "--dim", "8", "--epochs", "1"]
    args += ["--batch-size", "16", "--num-negatives", "4", "--no-progress", "--eval-every", "-1"]
    assert main([*args, "--output", str(tmp_path / "run"), "--negative-scoring", "distinct"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["negative_scoring"] == "distinct"
    assert built[0].negative_scoring == "distinct"
    assert main([*args, "--output", str(tmp_path / "bad"), "--negative-scoring", "unique"]) == 1
    assert "negative_scoring must be one of ['rows', 'distinct', 'triple'], got 'unique'" in capsys.readouterr().err


def test_a_bad_value_in_a_config_file_is_named_with_its_line(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: rotate\n\n# the size\ndim: abc\nnum-head-negatives: 3\n")
    assert main(["train", "--config", str(cfg), "--no-progress"]) == 1
    assert f"{cfg}:4: dim must be a whole number, got 'abc'" in capsys.readouterr().err
    # A check across settings names the line of the setting it is about (num_head_negatives).
    assert main(["train", "--config", str(cfg), "--dim", "8", "--no-progress"]) == 1
    assert f"{cfg}:5: num_head_negatives counts the head side's negatives" in capsys.readouterr().err
    # A bad value given as a flag is not in the file: no line.
    cfg.write_text("model: rotate\ndim: 8\n")
    assert main(["train", "--config", str(cfg), "--dim", "0", "--no-progress"]) == 1
    assert capsys.readouterr().err.endswith("error: dim must be at least 1, got 0\n")


def test_resuming_with_settings_that_change_the_run_is_refused_and_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--model", "distmult", "--dim", "8", "--epochs", "1", "--no-progress", "--output", str(run)]
    assert main(base) == 0
    saved = (run / "config.json").read_text()
    # --lr would be overridden by the restored optimizer, --dim cannot load: both refused, named.
    assert main([*base, "--resume", "--epochs", "2", "--lr", "0.5", "--dim", "16"]) == 1
    err = capsys.readouterr().err
    assert "dim: 8 -> 16" in err and "lr: 0.01 -> 0.5" in err and "epochs" not in err.split("may change")[0]
    assert (run / "config.json").read_text() == saved
    assert main([*base, "--resume", "--epochs", "2"]) == 0  # when to stop may change
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


def test_bad_values_name_the_setting(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    for text, message in [
        ("dim: abc\n", "dim must be a whole number, got 'abc'"),
        ("reciprocal: 'false'\n", "reciprocal must be true or false, got 'false'"),
        ("num_negatives: 2.5\n", "num_negatives must be a whole number, got 2.5"),
        ("dim: 0\n", "dim must be at least 1, got 0"),
        ("eval_evry: 1\n", "'eval_evry': did you mean 'eval_every'?"),
        ("device: foo\n", "device must be cpu, cuda, cuda:N or another torch device, got 'foo'"),
        ("num_neighbors: 5,x\n", "num_neighbors must be positive integers or -1"),
    ]:
        cfg.write_text(text)
        assert main(["train", "--config", str(cfg), "--no-progress", "--output", str(tmp_path / "r")]) == 1, text
        assert message in capsys.readouterr().err, text
    assert main(["train", "--resume"]) == 1
    assert "--resume needs --output RUN_DIR" in capsys.readouterr().err
    assert main(["train", "--resume", "--overwrite", "--output", str(tmp_path / "r")]) == 1
    assert "--resume continues the run in --output and --overwrite deletes it" in capsys.readouterr().err


def test_an_unreadable_checkpoint_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dim", "8", "--epochs", "1", "--no-progress", "--output", str(run)]) == 0
    (run / "best.pt").write_bytes(b"")
    assert main(["evaluate", str(run), "--no-progress"]) == 1
    assert f"{run / 'best.pt'}: not a readable gnnns checkpoint" in capsys.readouterr().err
