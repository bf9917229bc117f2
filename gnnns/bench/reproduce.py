"""Running one reproduction: train its config and write ``benchmarks/results/repro_<name>.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gnnns.bench.record import _record, bench_command, git_commit, relative
from gnnns.bench.registry import RESULTS, find_root
from gnnns.config import RunConfig, read_config_file


def run_reproduction(
    entry: dict,
    overrides: dict | None = None,
    results_dir: str | Path | None = None,
    run_dir: str | Path | None = None,
    command: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Train ``entry``'s config and write ``results_dir/repro_<name>.json``; returns what it wrote.

    Args:
        entry (dict): a registry entry from :func:`load_registry`.
        overrides (dict, optional): run settings that replace the config's (``epochs``,
            ``device``, ``time_budget``, any :class:`~gnnns.config.RunConfig` field but ``output``).
        results_dir (str or Path, optional): where the JSON goes.
            (default: ``benchmarks/results`` of the repository)
        run_dir (str or Path, optional): the run directory (checkpoints, ``metrics.json``).
            (default: ``runs/bench/<name>`` of the repository)
        command (str, optional): the command line to record. (default: the equivalent
            ``gnnns bench`` command)
        resume (bool): continue the run in ``run_dir`` from its checkpoint (an interrupted
            reproduction loses at most the epoch in progress). The record's ``train_seconds``
            then sums every epoch's training time from ``metrics.jsonl``, and ``wall_seconds``
            adds this process's evaluation time to it (evaluations before the resume are not
            counted); ``resumed`` says from which epoch. (default: False)
        overwrite (bool): start afresh even if ``run_dir`` holds an unfinished run, deleting
            it; without it such a run is refused. (default: False)

    The record holds the entry's description and published figures, the overrides, the test
    and validation metrics, every validation of the run (``validation_curve``), ``reached``
    (:func:`reached` on the test MRR), ``run`` (:func:`run_kind`), wall seconds, epochs trained,
    the machine, versions, git commit, date and command.
    """
    from gnnns.training.run import train

    overrides = dict(overrides or {})
    if "output" in overrides:
        raise ValueError("overrides may not set 'output'; pass run_dir instead")
    root = Path(entry.get("root") or find_root())
    results_dir = Path(results_dir) if results_dir is not None else root / RESULTS
    run_dir = Path(run_dir) if run_dir is not None else root / "runs" / "bench" / entry["name"]
    values = read_config_file(entry["config_path"])
    config = RunConfig.from_dict({**values, **overrides, "output": str(run_dir)}, source=str(entry["config_path"]))
    run_dir.mkdir(parents=True, exist_ok=True)
    resumed_from = None
    if resume:
        from gnnns.training import checkpoint

        last = run_dir / "checkpoint.pt"
        if not last.is_file():
            raise FileNotFoundError(f"--resume: {last} does not exist; run `gnnns bench {entry['name']}` first")
        resumed_from = int(checkpoint.load(last, map_location="cpu")["epoch"])
        _check_same_precision(run_dir, config, entry["name"])
    # The code that trains is the code checked out now, not at the end of a run of hours.
    git = git_commit(root)
    start = time.perf_counter()
    result = train(config, resume=resume, overwrite=overwrite)
    wall = time.perf_counter() - start
    if "test" not in result:
        raise ValueError(
            f"{entry['config_path']}: the run was not evaluated (eval_every: -1); a reproduction needs test metrics"
        )
    record = _record(entry, overrides, values, config, result, wall, root)
    record["git"] = git
    log = run_dir / "metrics.jsonl"
    epochs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []
    # Every validation of the run, its resumes' included: a curve quoted from the record needs no run directory.
    record["validation_curve"] = [
        {
            "epoch": e["epoch"],
            **{k: e["valid"][k] for k in ("mrr", "hits@1", "hits@3", "hits@10") if k in e["valid"]},
            **({"lr": e["lr"]} if "lr" in e else {}),
        }
        for e in epochs
        if e.get("valid")
    ]
    if resume:
        trained = sum(r.get("train_seconds", 0.0) for r in epochs)
        record["resumed"] = {"from_epoch": resumed_from, "this_process_wall_seconds": wall}
        record["wall_seconds"] = trained + (wall - result["summary"]["train_seconds"])
        record["train_seconds"] = trained
    record["command"] = command or bench_command(entry["name"], overrides)
    results_dir.mkdir(parents=True, exist_ok=True)
    from gnnns.plots import plot_runs

    # The run's per-epoch curves (loss, validation MRR, negatives' measurements) beside its record.
    plot = plot_runs([run_dir], results_dir / f"repro_{entry['name']}.png", labels=[entry["name"]])
    record["plot"] = relative(plot, root)
    (results_dir / f"repro_{entry['name']}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _check_same_precision(run_dir: Path, config: RunConfig, name: str) -> None:
    """A resumed reproduction continues in the precision it was started in: one record, one precision."""
    saved = run_dir / "config.json"
    if not saved.is_file():
        return
    started = json.loads(saved.read_text(encoding="utf-8")).get("precision", "fp32")
    if started != config.precision:
        raise ValueError(
            f"--resume: {run_dir} was trained in {started}, not {config.precision}; continue it with "
            f"`gnnns bench {name} --resume --precision {started}`"
        )
