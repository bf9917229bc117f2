"""What a reproduction's record ``repro_<name>.json`` holds: whether it reached the published MRR,
the kind of run, the machine, the git commit, the command line; and reading a record back."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
from pathlib import Path

import gnnns
from gnnns.config import RunConfig
from gnnns.training.allocator import freed_memory_kept

TOLERANCE = 0.01  # MRR below the published figure that still counts as reproduced (issue 6)


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
    """The machine a run used: CPU model, logical cores, GPU name (when CUDA is available), and
    whether the allocator kept freed memory (``gnnns.training.allocator``)."""
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
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "freed_memory_kept": freed_memory_kept(),
    }


def git_commit(root: Path) -> dict:
    """The checkout's commit and whether tracked files differ from it (``None`` outside git).

    A copy of the tree without its ``.git`` (the device machine's) names the commit it was copied
    from through the environment variable ``GNNNS_GIT_COMMIT``; whether it differed from that
    commit is then unknown (``dirty: None``) and ``source`` says where the commit came from.
    """

    def git(*args: str) -> str | None:
        try:
            # --no-optional-locks: only read, never refresh the index behind another process's back.
            command = ["git", "--no-optional-locks", "-C", str(root), *args]
            proc = subprocess.run(command, capture_output=True, text=True)
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None and os.environ.get("GNNNS_GIT_COMMIT"):
        return {"commit": os.environ["GNNNS_GIT_COMMIT"], "dirty": None, "source": "GNNNS_GIT_COMMIT"}
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def bench_command(name: str, overrides: dict) -> str:
    """The ``gnnns bench`` command line that runs ``name`` with ``overrides``."""
    words = ["gnnns", "bench", name]
    for key, value in overrides.items():
        words += ["--" + key.replace("_", "-"), str(value)]
    return shlex.join(words)


def _record(
    entry: dict, overrides: dict, values: dict, config: RunConfig, result: dict, wall: float, root: Path
) -> dict:
    import torch

    metric_keys = ("mrr", "mr", "hits@1", "hits@3", "hits@10")
    published = entry["published"]
    at_budget_end = result["summary"].get("budget_validation")
    extra = {}
    if at_budget_end is not None:  # the budget stopped training after the last scheduled validation
        extra["budget_validation"] = {
            "epochs_done": at_budget_end["epoch"],
            "steps_into_next_epoch": at_budget_end["step"],
            "valid_mrr": at_budget_end["valid"]["mrr"],
            "tested": at_budget_end["better"],
        }
    return {
        "name": entry["name"],
        "dataset": entry["dataset"],
        "model": entry["model"],
        "config": str(entry["config"]),
        "overrides": overrides,
        "run_config": {**dataclasses.asdict(config), "output": relative(config.output, root)},
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
        **extra,
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
