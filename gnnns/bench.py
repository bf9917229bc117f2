"""``gnnns bench``: published-result reproductions and benchmark scripts by name, and the README's results table.

A reproduction is one entry of ``benchmarks/reproductions.yaml``: a plain run config
(:class:`~gnnns.config.RunConfig` fields) and the published figures it should reach. Running it
trains the config and writes ``benchmarks/results/repro_<name>.json``; the README's results table
is rendered from those files alone, so every figure in it points to a file a command produced.
The comparison and speed scripts ``benchmarks/<name>.py`` run by name too.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

import gnnns
from gnnns.config import RunConfig, read_config_file

REGISTRY = Path("benchmarks") / "reproductions.yaml"
RESULTS = Path("benchmarks") / "results"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
BUDGET_START, BUDGET_END = "<!-- bench:budget:start -->", "<!-- bench:budget:end -->"
BUDGET_SIDES = {"gnnns": "gnnns", "pykeen": "PyKEEN", "pyg": "PyG kge", "pykeen-plain": "PyKEEN, no constraints"}
BUDGET_COLUMNS = (
    "dataset", "model", "budget", "library", "test MRR", "Hits@10", "steps", "epochs", "gnnns ahead by", "result",
)  # fmt: skip
REQUIRED = ("name", "config", "dataset", "model", "published", "hardware", "expected_time")
HARDWARE = ("cpu", "gpu")
RESERVED = ("list", "readme")  # subcommands of ``gnnns bench``, so never benchmark names
COLUMNS = (
    "dataset",
    "model",
    "published MRR / Hits@10",
    "ours MRR / Hits@10",
    "reached",
    "hardware, time",
    "result",
    "command",
)
TOLERANCE = 0.01  # MRR below the published figure that still counts as reproduced (issue 6)


def find_root(start: str | Path | None = None) -> Path:
    """The repository root: ``start`` (default: the current directory) or the nearest parent holding
    ``benchmarks/reproductions.yaml``.

    Raises:
        FileNotFoundError: no such folder; the message lists where it looked.
    """
    start = Path(start or Path.cwd()).resolve()
    looked = []
    for folder in (start, *start.parents):
        if (folder / REGISTRY).is_file():
            return folder
        looked.append(str(folder / REGISTRY))
    raise FileNotFoundError(
        f"no {REGISTRY} in the current directory or its parents (looked at {', '.join(looked)}); "
        "run gnnns bench inside the repository"
    )


def load_registry(path: str | Path | None = None) -> list[dict]:
    """The validated reproductions of ``path`` (default: ``benchmarks/reproductions.yaml`` of
    :func:`find_root`).

    Each entry keeps its YAML keys (``name``, ``config``, ``dataset``, ``model``, ``published``
    with ``mrr``, optional ``hits@10`` and ``source``, ``hardware``: cpu or gpu, ``expected_time``)
    and gains ``root``, the repository root (the folder above ``benchmarks/``), and
    ``config_path``, the config file resolved against it.

    Raises:
        ValueError: a missing or malformed key, a duplicate or reserved name, or a config file
            that is not a valid run config; the message names the file and the entry.
        FileNotFoundError: the registry or an entry's config file does not exist.
    """
    path = Path(path) if path is not None else find_root() / REGISTRY
    if not path.is_file():
        raise FileNotFoundError(f"reproduction registry {path} does not exist")
    root = path.resolve().parent.parent
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("reproductions"), list):
        raise ValueError(f"{path}: expected a list under the key 'reproductions:'")
    entries, seen = [], set()
    for index, entry in enumerate(data["reproductions"]):
        entries.append(_check_entry(entry, index, path, root))
        name = entry["name"]
        if name in seen:
            raise ValueError(f"{path}: entry {index} ({name!r}): duplicate name; names must be unique")
        seen.add(name)
    return entries


def _check_entry(entry: object, index: int, path: Path, root: Path) -> dict:
    where = f"{path}: entry {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with keys {list(REQUIRED)}, got {entry!r}")
    where += f" ({entry['name']!r})" if "name" in entry else ""
    missing = [key for key in REQUIRED if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}; required: {list(REQUIRED)}")
    if not isinstance(entry["name"], str) or not entry["name"] or entry["name"] in RESERVED:
        raise ValueError(f"{where}: name must be a non-empty string other than {list(RESERVED)}")
    published = entry["published"]
    if published is None:
        pass  # one of our own runs, with no published figure to reach
    elif not isinstance(published, dict) or not isinstance(published.get("mrr"), (int, float)):
        raise ValueError(
            f"{where}: published must be a mapping with a numeric 'mrr' (or null for a run of ours), got {published!r}"
        )
    elif "source" not in published:
        raise ValueError(f"{where}: published needs a 'source' (paper or leaderboard the figures come from)")
    if entry["hardware"] not in HARDWARE:
        raise ValueError(f"{where}: hardware must be one of {list(HARDWARE)}, got {entry['hardware']!r}")
    config_path = root / entry["config"]
    if not config_path.is_file():
        raise FileNotFoundError(f"{where}: config file {config_path} does not exist")
    read_config_file(config_path)  # fails here, naming the file, rather than hours into a run
    return {**entry, "config_path": config_path, "root": root}


def scripts(root: str | Path | None = None) -> dict[str, Path]:
    """The benchmark scripts ``benchmarks/<name>.py`` by name (helpers starting with ``_`` left out)."""
    folder = Path(root or find_root()) / "benchmarks"
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def run_script(script: Path, args: list[str]) -> int:
    """Run ``python script args`` from the repository root; returns its exit status."""
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent.parent).returncode


def reached(mrr: float, published: float, tolerance: float = TOLERANCE) -> bool:
    """Whether our MRR reproduces the published one: at most ``tolerance`` below it (above is fine).

    Args:
        mrr (float): our filtered test MRR.
        published (float): the published filtered test MRR.
        tolerance (float): how far below still counts. (default: ``0.01``)
    """
    # Rounded, so that 0.327 against 0.337 counts despite float error in the difference.
    return round(published - mrr, 9) <= tolerance


def run_kind(config: dict, overrides: dict) -> str:
    """``"full"`` when ``overrides`` keep the config's epochs and time budget, ``"shortened"`` when
    they train less (fewer epochs, or a budget tighter than the config's), ``"changed"`` otherwise."""
    epochs = config.get("epochs", RunConfig.epochs)
    budget = config.get("time_budget", RunConfig.time_budget)
    new_epochs = overrides.get("epochs", epochs)
    new_budget = overrides.get("time_budget", budget)
    if new_epochs == epochs and new_budget == budget:
        return "full"
    fewer = new_epochs < epochs
    tighter = new_budget > 0 and (budget == 0 or new_budget < budget)
    looser = new_epochs > epochs or (budget > 0 and (new_budget == 0 or new_budget > budget))
    return "shortened" if (fewer or tighter) and not looser else "changed"


def machine() -> dict:
    """The machine a run used: CPU model, logical cores, GPU name (when CUDA is available)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version()}


def git_commit(root: Path) -> dict:
    """The checkout's commit and whether tracked files differ from it (``None`` outside git)."""

    def git(*args: str) -> str | None:
        try:
            # --no-optional-locks: only read, never refresh the index behind another process's back.
            command = ["git", "--no-optional-locks", "-C", str(root), *args]
            proc = subprocess.run(command, capture_output=True, text=True)
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def bench_command(name: str, overrides: dict) -> str:
    """The ``gnnns bench`` command line that runs ``name`` with ``overrides``."""
    words = ["gnnns", "bench", name]
    for key, value in overrides.items():
        words += ["--" + key.replace("_", "-"), str(value)]
    return shlex.join(words)


def run_reproduction(
    entry: dict,
    overrides: dict | None = None,
    results_dir: str | Path | None = None,
    run_dir: str | Path | None = None,
    command: str | None = None,
    resume: bool = False,
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

    The record holds the entry's description and published figures, the overrides, the test
    and validation metrics, ``reached`` (:func:`reached` on the test MRR), ``run``
    (:func:`run_kind`), wall seconds, epochs trained, the machine, versions, git commit, date
    and command.
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
    # The code that trains is the code checked out now, not at the end of a run of hours.
    git = git_commit(root)
    start = time.perf_counter()
    result = train(config, resume=resume)
    wall = time.perf_counter() - start
    if "test" not in result:
        raise ValueError(
            f"{entry['config_path']}: the run was not evaluated (eval_every: -1); a reproduction needs test metrics"
        )
    record = _record(entry, overrides, values, config, result, wall, root)
    record["git"] = git
    if resume:
        epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
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


def _record(
    entry: dict, overrides: dict, values: dict, config: RunConfig, result: dict, wall: float, root: Path
) -> dict:
    import torch

    metric_keys = ("mrr", "mr", "hits@1", "hits@3", "hits@10")
    published = entry["published"]
    return {
        "name": entry["name"],
        "dataset": entry["dataset"],
        "model": entry["model"],
        "config": str(entry["config"]),
        "overrides": overrides,
        "run_config": dataclasses.asdict(config),
        "run_dir": relative(config.output, root),
        "test": {k: result["test"][k] for k in metric_keys if k in result["test"]},
        "valid": {k: result["valid"][k] for k in metric_keys if k in result.get("valid", {})},
        "published": published,
        "reached": reached(result["test"]["mrr"], published["mrr"]) if published is not None else None,
        "run": run_kind(values, overrides),
        "wall_seconds": wall,
        "train_seconds": result["summary"]["train_seconds"],
        "epochs_trained": result["summary"]["epochs_trained"],
        "machine": machine(),
        "torch": torch.__version__,
        "gnnns": gnnns.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def relative(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` when inside it (as in the README), else absolute; ``/`` separated."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return (path.relative_to(root) if path.is_relative_to(root) else path).as_posix()


def load_result(results_dir: str | Path, name: str) -> dict | None:
    """The record ``results_dir/repro_<name>.json``, or ``None`` when it was not run."""
    path = Path(results_dir) / f"repro_{name}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def format_seconds(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def _machine_text(m: dict) -> str:
    return m["gpu"] if m.get("gpu") else f"{m['cpu']} ({m['cores']} cores)"


def _figures(metrics: dict, digits: int) -> str:
    hits = metrics.get("hits@10")
    return f"{metrics['mrr']:.{digits}f} / " + (f"{hits:.{digits}f}" if hits is not None else "–")


# Settings that say where or how visibly a run went, not what it computed.
_NOT_COMPARED = ("output", "device", "progress", "compile")


def config_changes(entry: dict, result: dict) -> list[str]:
    """The settings whose value in ``entry``'s config file (with the result's overrides) differs
    from the one the result was trained with: a result is stale when this is not empty."""
    saved = result.get("run_config")
    if saved is None:
        return []
    values = read_config_file(entry["config_path"])
    current = dataclasses.asdict(RunConfig.from_dict({**values, **result.get("overrides", {})}))
    defaults = dataclasses.asdict(RunConfig())
    return sorted(key for key in current if key not in _NOT_COMPARED and saved.get(key, defaults[key]) != current[key])


def render_table(registry: list[dict], results_dir: str | Path, root: str | Path | None = None) -> str:
    """The README's results table: one row per registry entry, our figures from its result file.

    Args:
        registry (list[dict]): entries from :func:`load_registry`.
        results_dir (str or Path): the folder of the ``repro_<name>.json`` files.
        root (str or Path, optional): result paths are shown relative to it.
            (default: the repository root of :func:`find_root`)

    Returns:
        Markdown, one line per row, ending in a newline.
    """
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else find_root()
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for entry in registry:
        published = entry["published"]
        claim = f"{_figures(published, 3)} ({published['source']})" if published is not None else "– (a run of ours)"
        cells = [entry["dataset"], entry["model"], claim]
        result = load_result(results_dir, entry["name"])
        if result is None:
            cells += ["not yet run", "not run", f"{entry['hardware']}, expected {entry['expected_time']}", "–"]
        else:
            note = "" if result["run"] == "full" else f" ({result['run']} run)"
            changed = config_changes(entry, result)
            if changed:
                note += f"; config changed since ({', '.join(changed)}): rerun"
            if published is None:
                verdict = "–" + note
            else:
                verdict = ("yes" if reached(result["test"]["mrr"], published["mrr"]) else "no") + note
            path = relative(results_dir / f"repro_{entry['name']}.json", root)
            png = results_dir / f"repro_{entry['name']}.png"
            plot = f", [plot]({relative(png, root)})" if png.is_file() else ""
            cells += [
                _figures(result["test"], 3),
                verdict,
                f"{_machine_text(result['machine'])}, {format_seconds(result['wall_seconds'])}"
                + (f" (resumed at epoch {result['resumed']['from_epoch']})" if result.get("resumed") else ""),
                f"[{path}]({path}){plot}",
            ]
        cells.append(f"`gnnns bench {entry['name']}`")
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_budget_table(results_dir: str | Path, root: str | Path | None = None) -> str:
    """The README's equal-budget table, from ``results_dir/budget_<dataset>.json`` files
    (``benchmarks/budget_compare.py``): one row per library, its MRR at the end of the budget.

    "gnnns ahead by" is gnnns's MRR minus the row's, on the same test triples. Datasets are
    sorted by name; libraries keep the order they ran in. A library whose run failed shows why.

    Returns:
        Markdown ending in a newline: the table, then one line per dataset with its command and plot.
    """
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else find_root()
    lines = ["| " + " | ".join(BUDGET_COLUMNS) + " |", "|" + "---|" * len(BUDGET_COLUMNS)]
    notes = []
    for path in sorted(results_dir.glob("budget_*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        sides = record["sides"]
        ours = sides.get("gnnns", {}).get("curve") or [None]
        link = relative(path, root)
        budget = format_seconds(record["budget_seconds"])
        model = record.get("settings", {}).get("model", "?")
        for name, side in sides.items():
            label = BUDGET_SIDES.get(name, name)
            if not side.get("curve"):
                why = (side.get("error") or "no evaluation").strip().splitlines()[-1][:80]
                lines.append(
                    f"| {record['dataset']} | {model} | {budget} | {label} | failed: {why} | | | | | [{link}]({link}) |"
                )
                continue
            last = side["curve"][-1]
            ahead = "–" if name == "gnnns" or ours[-1] is None else f"{ours[-1]['mrr'] - last['mrr']:+.3f}"
            cells = [
                record["dataset"], model, budget, label, f"{last['mrr']:.3f}", f"{last['hits@10']:.3f}",
                f"{last['steps']:,}", f"{side['epochs']:.2f}", ahead, f"[{link}]({link})",
            ]  # fmt: skip
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        plot = path.with_suffix(".png")
        shown = f"; plot [{relative(plot, root)}]({relative(plot, root)})" if plot.is_file() else ""
        notes.append(f"{record['dataset']}, {model}: `{record['command']}`{shown}.")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def update_readme(readme_path: str | Path, table: str, start: str = START, end: str = END) -> list[str]:
    """Put ``table`` between the ``start`` and ``end`` markers of ``readme_path`` (by default
    ``<!-- bench:results:start -->`` and ``<!-- bench:results:end -->``); the rest of the file is
    left as it is.

    Returns:
        The unified diff of the change (empty when the table was already there).

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    readme_path = Path(readme_path)
    text = readme_path.read_text(encoding="utf-8")
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{readme_path}: expected one {start} line followed by one {end} line around the table")
    head, rest = text.split(start, 1)
    old, tail = rest.split(end, 1)
    new = "\n" + table.rstrip("\n") + "\n"
    if old == new:
        return []
    readme_path.write_text(head + start + new + end + tail, encoding="utf-8")
    name = str(readme_path)
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), name, name, lineterm=""))
