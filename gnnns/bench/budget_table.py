"""The README's equal-budget table, from the ``budget_<dataset>.json`` records of
``benchmarks/budget_compare.py``."""

from __future__ import annotations

import json
from pathlib import Path

from gnnns.bench.record import relative
from gnnns.bench.registry import find_root
from gnnns.bench.results_table import format_seconds

BUDGET_SIDES = {"gnnns": "gnnns", "pykeen": "PyKEEN", "pyg": "PyG kge", "pykeen-plain": "PyKEEN, no constraints"}
BUDGET_COLUMNS = (
    "dataset", "model", "budget", "library", "test MRR", "Hits@10", "steps", "epochs", "gnnns ahead by", "result",
)  # fmt: skip


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
