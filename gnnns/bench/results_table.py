"""The README's results table: one row per reproduction, our figures from its record, and a stale
result (its config file changed since it ran) marked "config changed since (...): rerun"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gnnns.bench.record import load_result, reached, relative
from gnnns.bench.registry import find_root
from gnnns.config import RunConfig, read_config_file

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


def _precision_text(result: dict) -> str:
    """``", bf16"`` for a run trained in bfloat16 autocast (an override or its config's), else nothing."""
    precision = result.get("run_config", {}).get("precision", "fp32")
    return "" if precision == "fp32" else f", {precision}"


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
                f"{_machine_text(result['machine'])}{_precision_text(result)}, {format_seconds(result['wall_seconds'])}"
                + (f" (resumed at epoch {result['resumed']['from_epoch']})" if result.get("resumed") else ""),
                f"[{path}]({path}){plot}",
            ]
        cells.append(f"`gnnns bench {entry['name']}`")
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
