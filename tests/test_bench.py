import json
from pathlib import Path

import pytest
import yaml

from gnnns import bench
from gnnns.cli import main

TINY = (
    "dataset: synthetic\nmodel: distmult\ndim: 8\nepochs: 2\nnum_negatives: 4\nprogress: false\ndiagnostics_every: 0\n"
)


def entry(name: str = "tiny", **changes) -> dict:
    values = {
        "name": name,
        "config": "benchmarks/configs/tiny.yaml",
        "dataset": "Synthetic",
        "model": "DistMult",
        "published": {"mrr": 0.5, "hits@10": 0.7, "source": "Doe, 2020"},
        "hardware": "cpu",
        "expected_time": "~5 s",
    }
    return {**values, **changes}


def write_repo(root: Path, entries: list[dict] | None = None) -> Path:
    """A fake repository: a registry, the tiny config and a script that records its arguments."""
    (root / "benchmarks" / "configs").mkdir(parents=True)
    (root / "benchmarks" / "configs" / "tiny.yaml").write_text(TINY)
    (root / "benchmarks" / "echo_args.py").write_text(
        "import json, pathlib, sys\npathlib.Path('echo.json').write_text(json.dumps(sys.argv[1:]))\n"
    )
    (root / "benchmarks" / "_helper.py").write_text("")
    path = root / "benchmarks" / "reproductions.yaml"
    path.write_text(yaml.safe_dump({"reproductions": entries if entries is not None else [entry()]}))
    return path


def test_registry_loads_and_resolves_config_paths(tmp_path):
    path = write_repo(tmp_path, [entry("a"), entry("b", hardware="gpu")])
    registry = bench.load_registry(path)
    assert [e["name"] for e in registry] == ["a", "b"]
    assert registry[0]["config_path"] == tmp_path.resolve() / "benchmarks" / "configs" / "tiny.yaml"
    assert registry[1]["hardware"] == "gpu"
    assert sorted(bench.scripts(tmp_path)) == ["echo_args"]  # _helper.py is not a benchmark


@pytest.mark.parametrize(
    "entries, error, message",
    [
        (
            [{k: v for k, v in entry().items() if k != "hardware"}],
            ValueError,
            r"entry 0 \('tiny'\): missing key\(s\) \['hardware'\]",
        ),
        ([entry("a"), entry("a")], ValueError, r"entry 1 \('a'\): duplicate name"),
        (
            [entry(config="benchmarks/configs/gone.yaml")],
            FileNotFoundError,
            r"entry 0 \('tiny'\): config file .*gone.yaml",
        ),
        ([entry(hardware="tpu")], ValueError, r"hardware must be one of \['cpu', 'gpu'\], got 'tpu'"),
        ([entry(published={"mrr": 0.3})], ValueError, r"published needs a 'source'"),
        ([entry("list")], ValueError, r"name must be a non-empty string other than"),
    ],
)
def test_registry_errors_name_the_file_the_entry_and_the_problem(tmp_path, entries, error, message):
    path = write_repo(tmp_path, entries)
    with pytest.raises(error, match=message) as info:
        bench.load_registry(path)
    assert str(path) in str(info.value)


def test_a_config_with_an_unknown_setting_is_refused_at_load_time(tmp_path):
    path = write_repo(tmp_path)
    (tmp_path / "benchmarks" / "configs" / "tiny.yaml").write_text("modle: rotate\n")
    with pytest.raises(ValueError, match=r"tiny.yaml: unknown setting\(s\) \['modle'\]"):
        bench.load_registry(path)


def test_the_registry_is_found_from_a_subfolder_and_its_absence_says_where_it_looked(tmp_path, monkeypatch):
    write_repo(tmp_path / "repo")
    (tmp_path / "repo" / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "repo" / "docs")
    assert bench.find_root() == (tmp_path / "repo").resolve()
    with pytest.raises(FileNotFoundError, match="looked at .*" + str(tmp_path.resolve() / "benchmarks")):
        bench.find_root(tmp_path)


def test_reached_allows_up_to_one_hundredth_below_the_published_mrr():
    assert bench.reached(0.327, 0.337)  # exactly 0.01 below
    assert not bench.reached(0.3269, 0.337)
    assert bench.reached(0.40, 0.337)  # above is reached, however far
    assert bench.reached(0.337, 0.337)


def test_run_kind_tells_full_from_shortened_runs():
    config = {"epochs": 10}
    assert bench.run_kind(config, {}) == "full"
    assert bench.run_kind(config, {"device": "cuda", "epochs": 10}) == "full"
    assert bench.run_kind(config, {"epochs": 1}) == "shortened"
    assert bench.run_kind(config, {"time_budget": 60}) == "shortened"
    assert bench.run_kind({"epochs": 10, "time_budget": 60}, {"time_budget": 120}) == "changed"
    assert bench.run_kind(config, {"epochs": 20}) == "changed"
    assert bench.run_kind({}, {"epochs": 15}) == "full"  # the RunConfig default


def test_run_reproduction_writes_the_run_metrics_and_its_context(tmp_path):
    registry = bench.load_registry(write_repo(tmp_path))
    record = bench.run_reproduction(registry[0], {"epochs": 1}, tmp_path / "results", tmp_path / "run")
    saved = json.loads((tmp_path / "results" / "repro_tiny.json").read_text())
    assert saved == json.loads(json.dumps(record))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for split in ("test", "valid"):
        for key in ("mrr", "hits@1", "hits@3", "hits@10"):
            assert saved[split][key] == metrics[split][key]
    assert saved["reached"] is (metrics["test"]["mrr"] >= 0.49)
    assert (saved["name"], saved["dataset"], saved["model"]) == ("tiny", "Synthetic", "DistMult")
    assert saved["config"] == "benchmarks/configs/tiny.yaml" and saved["overrides"] == {"epochs": 1}
    assert saved["published"] == {"mrr": 0.5, "hits@10": 0.7, "source": "Doe, 2020"}
    assert saved["run"] == "shortened" and saved["epochs_trained"] == 1 and saved["run_config"]["dim"] == 8
    assert saved["run_config"]["output"] == saved["run_dir"] == "run"  # not where the checkout is
    assert saved["wall_seconds"] >= saved["train_seconds"] > 0
    assert saved["machine"]["cores"] >= 1 and "cpu" in saved["machine"] and "gpu" in saved["machine"]
    assert isinstance(saved["machine"]["freed_memory_kept"], bool)
    assert saved["torch"] and saved["gnnns"] and "commit" in saved["git"] and saved["date"]
    assert saved["command"] == "gnnns bench tiny --epochs 1"
    assert saved["plot"] == "results/repro_tiny.png"
    assert (tmp_path / saved["plot"]).read_bytes().startswith(b"\x89PNG")


def test_a_copy_without_git_names_its_commit_through_the_environment(tmp_path, monkeypatch):
    import shutil
    import subprocess

    monkeypatch.delenv("GNNNS_GIT_COMMIT", raising=False)
    assert bench.git_commit(tmp_path) == {"commit": None, "dirty": None}
    monkeypatch.setenv("GNNNS_GIT_COMMIT", "0123abc")
    assert bench.git_commit(tmp_path) == {"commit": "0123abc", "dirty": None, "source": "GNNNS_GIT_COMMIT"}
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    # In a checkout its own commit wins over the variable, and a changed tracked file makes it dirty.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert bench.git_commit(repo) == {"commit": head, "dirty": False}
    (repo / "a.txt").write_text("2\n")
    assert bench.git_commit(repo) == {"commit": head, "dirty": True}


def hand_made_result(results: Path, name: str, mrr: float, hits: float, run: str, machine: dict, wall: float) -> None:
    results.mkdir(parents=True, exist_ok=True)
    record = {"test": {"mrr": mrr, "hits@10": hits}, "run": run, "machine": machine, "wall_seconds": wall}
    (results / f"repro_{name}.json").write_text(json.dumps(record))


def test_render_table_rows_come_from_result_files(tmp_path):
    registry = [
        entry("done", published={"mrr": 0.337, "hits@10": 0.533, "source": "Sun et al., ICLR 2019"}),
        entry("short", dataset="WN18RR", model="RotatE", published={"mrr": 0.476, "source": "Sun"}),
        entry("todo", dataset="FB15k-237", model="ConvE", hardware="gpu", expected_time="~3 h on one GPU"),
    ]
    results = tmp_path / "benchmarks" / "results"
    hand_made_result(results, "done", 0.3312, 0.5291, "full", {"cpu": "X", "cores": 16, "gpu": "NVIDIA H200"}, 3723)
    hand_made_result(results, "short", 0.2, 0.3, "shortened", {"cpu": "AMD EPYC", "cores": 2, "gpu": None}, 42.4)
    expected = (
        "| dataset | model | published MRR / Hits@10 | ours MRR / Hits@10 | reached | hardware, time "
        "| result | command |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| Synthetic | DistMult | 0.337 / 0.533 (Sun et al., ICLR 2019) | 0.331 / 0.529 | yes "
        "| NVIDIA H200, 1 h 02 min "
        "| [benchmarks/results/repro_done.json](benchmarks/results/repro_done.json) | `gnnns bench done` |\n"
        "| WN18RR | RotatE | 0.476 / – (Sun) | 0.200 / 0.300 | no (shortened run) | AMD EPYC (2 cores), 42 s "
        "| [benchmarks/results/repro_short.json](benchmarks/results/repro_short.json) | `gnnns bench short` |\n"
        "| FB15k-237 | ConvE | 0.500 / 0.700 (Doe, 2020) | not yet run | not run | gpu, expected ~3 h on one GPU | – "
        "| `gnnns bench todo` |\n"
    )
    assert bench.render_table(registry, results, root=tmp_path) == expected


def test_a_run_of_ours_has_no_published_figure_and_no_verdict(tmp_path):
    registry = [entry("ours", published=None)]
    results = tmp_path / "benchmarks" / "results"
    hand_made_result(results, "ours", 0.6886, 0.8504, "full", {"cpu": "AMD EPYC", "cores": 2, "gpu": None}, 12.3)
    row = bench.render_table(registry, results, root=tmp_path).splitlines()[2]
    assert row == (
        "| Synthetic | DistMult | – (a run of ours) | 0.689 / 0.850 | – | AMD EPYC (2 cores), 12 s "
        "| [benchmarks/results/repro_ours.json](benchmarks/results/repro_ours.json) | `gnnns bench ours` |"
    )


def test_update_readme_replaces_only_between_the_markers_and_is_idempotent(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\nintro\n{bench.START}\nold table\n{bench.END}\nafter\n")
    diff = bench.update_readme(readme, "| a |\n|---|\n")
    assert readme.read_text() == f"# Title\nintro\n{bench.START}\n| a |\n|---|\n{bench.END}\nafter\n"
    assert "-old table" in diff and "+| a |" in diff
    assert bench.update_readme(readme, "| a |\n|---|\n") == []
    assert readme.read_text() == f"# Title\nintro\n{bench.START}\n| a |\n|---|\n{bench.END}\nafter\n"

    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match=r"README\.md: expected one <!-- bench:results:start -->"):
        bench.update_readme(readme, "| a |\n")
    readme.write_text(f"{bench.END}\n{bench.START}\n")
    with pytest.raises(ValueError, match="followed by"):
        bench.update_readme(readme, "| a |\n")


def budget_record(dataset: str = "wn18rr") -> dict:
    """A ``budget_compare.py`` result: gnnns and PyKEEN evaluated twice, PyG failed."""

    def curve(*points):
        return [
            {"train_seconds": t, "steps": s, "triples": 512 * s, "mrr": m, "hits@1": m / 2, "hits@10": h, "queries": 8}
            for t, s, m, h in points
        ]

    return {
        "dataset": dataset,
        "budget_seconds": 600.0,
        "settings": {"model": "RotatE"},
        "command": f"python benchmarks/budget_compare.py --dataset {dataset}",
        "sides": {
            "gnnns": {"curve": curve((300, 900, 0.21, 0.40), (600, 1800, 0.3125, 0.5)), "epochs": 10.625},
            "pykeen": {"curve": curve((301, 200, 0.05, 0.1), (602, 410, 0.0625, 0.125)), "epochs": 2.5},
            "pyg": {"error": "worker failed (1):\nTraceback ...\nMemoryError: too big"},
        },
    }


def test_budget_table_rows_come_from_budget_files(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "budget_wn18rr.json").write_text(json.dumps(budget_record()))
    (results / "budget_wn18rr.png").write_bytes(b"png")
    link = "[benchmarks/results/budget_wn18rr.json](benchmarks/results/budget_wn18rr.json)"
    expected = "\n".join(
        [
            "| dataset | model | budget | library | test MRR | Hits@10 | steps | epochs | gnnns ahead by | result |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| wn18rr | RotatE | 10 min | gnnns | 0.312 | 0.500 | 1,800 | 10.62 | – | {link} |",
            # 0.3125 - 0.0625 = 0.25
            f"| wn18rr | RotatE | 10 min | PyKEEN | 0.062 | 0.125 | 410 | 2.50 | +0.250 | {link} |",
            f"| wn18rr | RotatE | 10 min | PyG kge | failed: MemoryError: too big | | | | | {link} |",
            "",
            "wn18rr, RotatE: `python benchmarks/budget_compare.py --dataset wn18rr`; plot "
            "[benchmarks/results/budget_wn18rr.png](benchmarks/results/budget_wn18rr.png).",
        ]
    )
    assert bench.render_budget_table(results, root=tmp_path) == expected + "\n"
    (results / "budget_fb15k-237.json").write_text(json.dumps(budget_record("fb15k-237")))
    datasets = [row.split(" | ")[0] for row in bench.render_budget_table(results, root=tmp_path).splitlines()[2:8]]
    assert datasets == ["| fb15k-237"] * 3 + ["| wn18rr"] * 3


def test_cli_lists_runs_and_renders_the_readme(tmp_path, monkeypatch, capsys):
    write_repo(tmp_path, [entry("tiny"), entry("later", hardware="gpu")])
    (tmp_path / "README.md").write_text(
        f"# R\n{bench.START}\n{bench.END}\n## budget\n{bench.BUDGET_START}\n{bench.BUDGET_END}\n"
    )
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "budget_wn18rr.json").write_text(json.dumps(budget_record()))
    monkeypatch.chdir(tmp_path)

    assert main(["bench", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [
        ["tiny", "reproduction", "cpu", "no"],
        ["later", "reproduction", "gpu", "no"],
        ["echo_args", "script", "cpu", "no"],
    ]
    # A script's files: its own stem, stem_variant, and any JSON whose command ran it; not a stem
    # that merely starts with the name, a record of another script, or a file that is not JSON.
    results = tmp_path / "benchmarks" / "results"
    (results / "echo_args_long.json").write_text("{}")
    (results / "by_dataset.json").write_text(json.dumps({"command": "python benchmarks/echo_args.py --x 1"}))
    (results / "echo_argsx.json").write_text("{}")
    (results / "other.json").write_text(json.dumps({"command": "python benchmarks/echo_args_more.py"}))
    (results / "broken.json").write_text("{not json")
    assert main(["bench", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["echo_args", "script", "cpu", "yes", "(2)"]

    assert main(["bench", "tiny", "--epochs", "1"]) == 0
    assert "test MRR" in capsys.readouterr().out
    saved = json.loads((tmp_path / "benchmarks" / "results" / "repro_tiny.json").read_text())
    metrics = json.loads((tmp_path / "runs" / "bench" / "tiny" / "metrics.json").read_text())
    assert saved["test"]["mrr"] == metrics["test"]["mrr"] and saved["run_dir"] == "runs/bench/tiny"
    assert saved["command"] == "gnnns bench tiny --epochs 1"
    assert saved["plot"] == "benchmarks/results/repro_tiny.png"
    assert (tmp_path / saved["plot"]).read_bytes().startswith(b"\x89PNG")

    assert main(["bench", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["tiny", "reproduction", "cpu", "yes"]

    assert main(["bench", "readme"]) == 0
    assert "+| Synthetic | DistMult |" in capsys.readouterr().out
    text = (tmp_path / "README.md").read_text()
    assert text.count("| Synthetic | DistMult |") == 2 and "[benchmarks/results/repro_tiny.json]" in text
    assert "[plot](benchmarks/results/repro_tiny.png)" in text
    assert "not yet run" in text and f"{metrics['test']['mrr']:.3f} / {metrics['test']['hits@10']:.3f}" in text
    budget = text.split(bench.BUDGET_START)[1].split(bench.BUDGET_END)[0]
    assert "| wn18rr | RotatE | 10 min | PyKEEN | 0.062 | 0.125 | 410 | 2.50 | +0.250 |" in budget
    assert main(["bench", "readme"]) == 0
    assert capsys.readouterr().out.count("up to date") == 2
    (tmp_path / "README.md").write_text(f"# R\n{bench.START}\n{bench.END}\n")
    assert main(["bench", "readme"]) == 0
    assert "no equal-budget table written" in capsys.readouterr().out


def test_cli_runs_scripts_with_the_words_after_the_double_dash(tmp_path, monkeypatch, capsys):
    write_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "echo_args", "--", "--max-triples", "20", "--order", "a,b"]) == 0
    assert json.loads((tmp_path / "echo.json").read_text()) == ["--max-triples", "20", "--order", "a,b"]

    assert main(["bench", "echo_args", "--epochs", "1"]) == 1
    assert "pass its own options after --" in capsys.readouterr().err
    assert main(["bench", "tiny", "--", "--x"]) == 1
    assert "arguments after -- are for scripts" in capsys.readouterr().err
    assert main(["bench", "nope"]) == 1
    assert "unknown benchmark 'nope'; reproductions: ['tiny']; scripts: ['echo_args']" in capsys.readouterr().err


def test_cli_runs_an_entry_of_ours_without_a_published_figure(tmp_path, monkeypatch, capsys):
    write_repo(tmp_path, [entry("ours", published=None)])
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "ours", "--epochs", "1"]) == 0
    assert "no published figure" in capsys.readouterr().out
    saved = json.loads((tmp_path / "benchmarks" / "results" / "repro_ours.json").read_text())
    assert saved["published"] is None and saved["reached"] is None


def test_a_result_trained_with_other_settings_than_its_config_is_marked_stale(tmp_path):
    registry = bench.load_registry(write_repo(tmp_path))
    bench.run_reproduction(registry[0], {"epochs": 1}, tmp_path / "results", tmp_path / "run")

    def verdict() -> str:
        return bench.render_table(registry, tmp_path / "results", root=tmp_path).splitlines()[2].split(" | ")[4]

    assert verdict().endswith("(shortened run)")  # the override is part of how it was run, not a change
    config = tmp_path / "benchmarks" / "configs" / "tiny.yaml"
    config.write_text(TINY.replace("dim: 8", "dim: 16") + "lr_scheduler: plateau\neval_every: 1\n")
    assert verdict().endswith("(shortened run); config changed since (dim, eval_every, lr_scheduler): rerun")
    # A setting written out at its default value is no change.
    config.write_text(TINY + "margin: 6.0\n")
    assert verdict().endswith("(shortened run)")


def test_an_interrupted_reproduction_resumes_from_its_checkpoint(tmp_path):
    registry = bench.load_registry(write_repo(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"checkpoint\.pt does not exist"):
        bench.run_reproduction(registry[0], {}, tmp_path / "results", tmp_path / "run", resume=True)
    # One epoch, then the rest of the config's two as a resumed run: the same weights as in one go.
    bench.run_reproduction(registry[0], {"epochs": 1}, tmp_path / "results", tmp_path / "run")
    record = bench.run_reproduction(registry[0], {}, tmp_path / "results", tmp_path / "run", resume=True)
    whole = bench.run_reproduction(registry[0], {}, tmp_path / "other", tmp_path / "whole")
    assert record["resumed"]["from_epoch"] == 1 and record["epochs_trained"] == 2 and record["run"] == "full"
    assert record["test"] == whole["test"]
    epochs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert record["train_seconds"] == pytest.approx(sum(e["train_seconds"] for e in epochs))
    row = bench.render_table(registry, tmp_path / "results", root=tmp_path).splitlines()[2]
    assert "(resumed at epoch 1)" in row and "resumed" not in whole


def test_a_reproduction_records_every_validation_of_its_run_resumes_included(tmp_path):
    registry = bench.load_registry(write_repo(tmp_path))
    bench.run_reproduction(registry[0], {"epochs": 1, "eval_every": 1}, tmp_path / "results", tmp_path / "run")
    record = bench.run_reproduction(
        registry[0], {"epochs": 3, "eval_every": 1}, tmp_path / "results", tmp_path / "run", resume=True
    )
    epochs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [(e["epoch"], e["valid"]["mrr"], e["valid"]["hits@10"], e.get("lr")) for e in epochs]
    assert [c[0] for c in curve] == [1, 2, 3]  # the first process's epoch, then the resumed ones
    assert [(c["epoch"], c["mrr"], c["hits@10"], c.get("lr")) for c in record["validation_curve"]] == curve


def test_bench_refuses_to_restart_over_an_unfinished_reproduction(tmp_path, monkeypatch, capsys):
    write_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "tiny", "--epochs", "1"]) == 0
    run = tmp_path / "runs" / "bench" / "tiny"
    (run / "metrics.json").unlink()  # as if killed before its test evaluation
    assert main(["bench", "tiny"]) == 1
    assert "holds an unfinished run" in capsys.readouterr().err
    assert main(["bench", "tiny", "--overwrite"]) == 0
    assert json.loads((run / "metrics.json").read_text())["summary"]["epochs_trained"] == 2


def test_a_bf16_reproduction_says_so_and_resumes_only_in_bf16(tmp_path, monkeypatch, capsys):
    write_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "tiny", "--epochs", "1", "--precision", "bf16"]) == 0
    saved = json.loads((tmp_path / "benchmarks" / "results" / "repro_tiny.json").read_text())
    assert saved["run_config"]["precision"] == "bf16" and saved["overrides"]["precision"] == "bf16"
    assert saved["command"] == "gnnns bench tiny --epochs 1 --precision bf16"
    registry = bench.load_registry(tmp_path / "benchmarks" / "reproductions.yaml")
    hardware = bench.render_table(registry, tmp_path / "benchmarks" / "results", root=tmp_path).splitlines()[2]
    assert hardware.split(" | ")[5].split(", ")[-2] == "bf16"
    # Continuing it in the default precision would mix two precisions in one record.
    assert main(["bench", "tiny", "--resume"]) == 1
    assert "was trained in bf16, not fp32; continue it with `gnnns bench tiny --resume --precision bf16`" in (
        capsys.readouterr().err
    )
    assert main(["bench", "tiny", "--resume", "--precision", "bf16"]) == 0
    # An fp32 record names no precision.
    assert main(["bench", "tiny", "--epochs", "1"]) == 0
    hardware = bench.render_table(registry, tmp_path / "benchmarks" / "results", root=tmp_path).splitlines()[2]
    assert "bf16" not in hardware


def test_a_registry_config_with_a_bad_value_is_refused_at_load_with_its_line(tmp_path):
    path = write_repo(tmp_path)
    config = tmp_path / "benchmarks" / "configs" / "tiny.yaml"
    config.write_text(TINY + "batch_size: -4\n")
    line = len(TINY.splitlines()) + 1
    with pytest.raises(ValueError, match=rf"tiny\.yaml:{line}: batch_size must be at least 1, got -4"):
        bench.load_registry(path)


def test_a_registry_that_is_not_yaml_is_named_with_its_line(tmp_path):
    path = tmp_path / "reproductions.yaml"
    path.write_text("reproductions:\n  - name: [x\n")
    with pytest.raises(ValueError, match=rf"{path}:\d+: not valid YAML"):
        bench.load_registry(path)


def test_a_reproduction_stopped_by_its_budget_before_any_validation_tests_and_records_where_it_stopped(
    tmp_path, monkeypatch
):
    from gnnns.training.trainer import Trainer

    steps, original = [0], Trainer.step

    def step(self, batch):
        steps[0] += 1
        return original(self, batch)

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(Trainer, "budget_spent", lambda self: steps[0] >= 1)  # spent by the first step
    registry = bench.load_registry(write_repo(tmp_path))
    overrides = {"time_budget": 1, "eval_every": 1}  # the tiny config validates only at the end otherwise
    record = bench.run_reproduction(registry[0], overrides, tmp_path / "results", tmp_path / "run")
    # No epoch was validated, so the weights after one step are validated, and tested as the best there are.
    at_end = {"epochs_done": 0, "steps_into_next_epoch": 1, "valid_mrr": record["valid"]["mrr"], "tested": True}
    assert record["budget_validation"] == at_end and record["epochs_trained"] == 0
    assert json.loads((tmp_path / "results" / "repro_tiny.json").read_text())["budget_validation"] == at_end
