"""The reproduction registry ``benchmarks/reproductions.yaml``: finding the repository root, loading
and validating the entries, and the benchmark scripts ``benchmarks/<name>.py`` by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gnnns.config import RunConfig, load_yaml, read_config_file, setting_lines

REGISTRY = Path("benchmarks") / "reproductions.yaml"
RESULTS = Path("benchmarks") / "results"
REQUIRED = ("name", "config", "dataset", "model", "published", "hardware", "expected_time")
HARDWARE = ("cpu", "gpu")
RESERVED = ("list", "readme")  # subcommands of ``gnnns bench``, so never benchmark names


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
    data = load_yaml(path)
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
    # Fails here, naming the file and line, rather than hours into a run.
    RunConfig.from_dict(read_config_file(config_path), str(config_path), setting_lines(config_path))
    return {**entry, "config_path": config_path, "root": root}


def scripts(root: str | Path | None = None) -> dict[str, Path]:
    """The benchmark scripts ``benchmarks/<name>.py`` by name (helpers starting with ``_`` left out)."""
    folder = Path(root or find_root()) / "benchmarks"
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def run_script(script: Path, args: list[str]) -> int:
    """Run ``python script args`` from the repository root; returns its exit status."""
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent.parent).returncode
