"""``gnnns plot RUN_DIR [RUN_DIR ...]``: training curves and negative diagnostics as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

# (panel title, where the value lives in a metrics.jsonl record, y-axis label); of entries with
# the same title the first with data is drawn (runs recorded before distinct_vs_uniform existed
# get the distinct share).
PANELS = [
    ("training loss", ("loss",), "loss"),
    ("validation MRR", ("valid", "mrr"), "filtered MRR"),
    ("hardness", ("negatives", "hardness"), "mean score percentile"),
    ("false negatives (valid/test)", ("negatives", "false_negative_rate"), "share of negatives"),
    ("known training positives", ("negatives", "known_positive_rate"), "share of negatives"),
    ("diversity", ("negatives", "distinct_vs_uniform"), "distinct / uniform draws' distinct"),
    ("diversity", ("negatives", "distinct_share"), "distinct / drawn"),
    ("entropy", ("negatives", "normalized_entropy"), "entropy / log n"),
    ("sampling cost", ("negatives", "sample_share"), "share of step time"),
]


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-epoch records of a run's ``metrics.jsonl``.

    Raises:
        FileNotFoundError: when the run has no ``metrics.jsonl``.
        ValueError: naming the file and line of a record that is not JSON.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a gnnns run directory?")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON record ({err.msg})") from None
    return records


def _series(records: list[dict], keys: tuple[str, ...]) -> tuple[list[int], list[float]]:
    epochs, values = [], []
    for record in records:
        value = record
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            epochs.append(int(record["epoch"]))
            values.append(float(value))
    return epochs, values


def panels_for(runs: list[list[dict]]) -> list[tuple[str, tuple[str, ...], str]]:
    """The :data:`PANELS` entries to draw for these runs' records: those with data in some run,
    and of entries sharing a title only the first."""
    chosen: dict[str, tuple[str, tuple[str, ...], str]] = {}
    for panel in PANELS:
        if panel[0] not in chosen and any(_series(records, panel[1])[0] for records in runs):
            chosen[panel[0]] = panel
    return list(chosen.values())


def plot_runs(run_dirs: list[str | Path], output: str | Path | None = None, labels: list[str] | None = None) -> Path:
    """Draw every run's curves, one panel per measurement, and save a PNG.

    Args:
        run_dirs: run directories written by ``gnnns train``.
        output: the PNG (default: ``metrics.png`` in the first run directory).
        labels: legend entries (default: the directory names).

    Returns:
        The path of the PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = [read_metrics(d) for d in run_dirs]
    labels = labels or [Path(d).name for d in run_dirs]
    panels = panels_for(runs)
    if not panels:
        raise ValueError(f"no per-epoch measurements to draw in {[str(d) for d in run_dirs]}")
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, (title, keys, ylabel) in zip(axes.flat, panels, strict=False):
        for records, label in zip(runs, labels, strict=True):
            epochs, values = _series(records, keys)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if len(runs) > 1:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    output = Path(output) if output is not None else Path(run_dirs[0]) / "metrics.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return output
