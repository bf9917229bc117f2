"""Every sampler on the same model and the same CPU budget: test MRR, Hits@10, diagnostics, cost.

One model per dataset (ComplEx, 100 complex coordinates, softmax cross-entropy over 64 negatives
per positive, Adam, batch 1024) is trained once per sampler until a fixed budget of *process CPU
seconds* is spent (``--time-budget B --budget-clock cpu``: CPU time, unlike wall time, is not
inflated by other jobs on a shared machine), then evaluated (filtered, both sides) on the test
split. Each run is one ``gnnns train`` command in a fresh process; the table lists them. The
negatives' diagnostics (hardness, false-negative rate, diversity, cost) are means over the run's
epochs from its ``metrics.jsonl``.

    GNNNS_DATA=/work/shared/datasets python benchmarks/sampler_study.py
    GNNNS_DATA=/work/shared/datasets python benchmarks/sampler_study.py --datasets codex-s --samplers uniform khop
    GNNNS_DATA=/work/shared/datasets python benchmarks/sampler_study.py --samplers sides --stem sampler_study_sides

Writes ``benchmarks/results/sampler_study.{json,md,png}`` (``--stem`` to change the name).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from _common import REPO, RESULTS, child_env, gnnns_cmd, machine_info, save, shown_command

MODEL = [
    "--model", "complex", "--dim", "100", "--loss", "sce", "--num-negatives", "64", "--batch-size", "1024",
    "--optimizer", "adam", "--lr", "0.005", "--epochs", "1000", "--eval-every", "0", "--seed", "0",
    "--budget-clock", "cpu", "--diagnostics-every", "10", "--no-progress",
]  # fmt: skip

# name -> extra flags; the names are what the table shows.
VARIANTS = {
    "uniform": ["--sampler", "uniform"],
    "bernoulli": ["--sampler", "bernoulli"],
    "typed": ["--sampler", "typed"],
    "khop (k=2)": ["--sampler", "khop", "--sampler-option", "k=2"],
    "inbatch": ["--sampler", "inbatch"],
    "dynamic": ["--sampler", "dynamic"],
    "nscaching": ["--sampler", "nscaching"],
    "adversarial": ["--sampler", "adversarial"],
    "curriculum (uniform→dynamic)": [
        "--sampler", "curriculum", "--sampler-option", "easy=uniform", "--sampler-option", "hard=dynamic",
    ],
    "uniform, filtered": ["--sampler", "uniform", "--filter-negatives"],
    "uniform, debiased loss": ["--sampler", "uniform", "--loss", "debiased"],
}  # fmt: skip
SAMPLER_VARIANTS = list(VARIANTS)

# Structure-aware negatives alone never show the model most of the entities it is ranked against;
# half uniform, half structured keeps both. Run with --samplers mixtures.
MIXTURES = {
    f"mixture (uniform ½, {name} ½)": ["--sampler", "mixture", "--sampler-option",
        f"components={{uniform: 1, {name}: 1}}"]
    for name in ("khop", "typed", "dynamic")
}  # fmt: skip
# NSCaching at the paper's cache sizes (N1 = N2 = 50) instead of the cheaper defaults (16).
MIXTURES["nscaching (N1 = N2 = 50, paper)"] = [
    "--sampler", "nscaching", "--sampler-option", "cache_size=50", "--sampler-option", "num_fresh=50",
]  # fmt: skip
VARIANTS.update(MIXTURES)

# Directions the literature reports, each pair on its own model (later flags override MODEL's):
# self-adversarial weighting beats plain negatives for RotatE (Sun et al., 2019), Bernoulli beats
# uniform for TransE (Wang et al., 2014). Run with --samplers directions.
NSSA = ["--loss", "nssa", "--margin", "9", "--adversarial-temperature"]
DIRECTIONS = {
    "RotatE, uniform, NSSA α=0": ["--model", "rotate", *NSSA, "0"],
    "RotatE, uniform, NSSA α=1 (SANS)": ["--model", "rotate", *NSSA, "1"],
    "TransE, uniform, NSSA α=0": ["--model", "transe", *NSSA, "0"],
    "TransE, bernoulli, NSSA α=0": ["--model", "transe", *NSSA, "0", "--sampler", "bernoulli"],
}  # fmt: skip
VARIANTS.update({name: ["--sampler", "uniform", *flags] for name, flags in DIRECTIONS.items()})

# Which side is corrupted: one random side per positive (the default, the "uniform" row) against
# both sides of every positive, as LibKGE's negative sampling, at the same 64 negatives per
# positive (32 heads + 32 tails) and at twice as many (64 + 64). Run with --samplers sides.
SIDES = {
    "uniform, both sides (32 + 32)": ["--negative-sides", "both", "--num-negatives", "32"],
    "uniform, both sides (64 + 64)": ["--negative-sides", "both"],
}
VARIANTS.update({name: ["--sampler", "uniform", *flags] for name, flags in SIDES.items()})

# CPU seconds of training per run (two threads: about half of it in wall time).
BUDGETS = {"fb15k-237": 180.0, "wn18rr": 180.0, "codex-s": 90.0}

DIAGNOSTICS = (
    "hardness", "false_negative_rate", "known_positive_rate", "distinct_share", "distinct_vs_uniform",
    "sample_share", "sample_ms",
)  # fmt: skip


def run_one(dataset: str, variant: str, budget: float, out: Path) -> dict:
    command = [
        *gnnns_cmd(), "train", "--dataset", dataset, *MODEL, *VARIANTS[variant],
        "--time-budget", str(budget), "--output", str(out), "--overwrite",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=REPO)
    wall = time.perf_counter() - start
    row = {"dataset": dataset, "sampler": variant, "budget_cpu_seconds": budget, "wall_seconds": wall}
    row["command"] = shown_command(["gnnns", *command[len(gnnns_cmd()) :]])
    if proc.returncode:
        row["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        print(f"  {variant}: FAILED {row['error']}", flush=True)
        return row
    result = json.loads((out / "metrics.json").read_text())
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    row["test"] = {k: result["test"][k] for k in ("mrr", "hits@1", "hits@10", "mr")}
    row["epochs"] = len(records)
    row["triples_trained"] = sum(r["steps"] for r in records) * 1024
    for key in DIAGNOSTICS:
        values = [r["negatives"][key] for r in records if key in r.get("negatives", {})]
        row[key] = sum(values) / len(values) if values else None
    stats = [r.get("sampler", {}) for r in records]
    row["sampler_stats"] = stats[-1] if stats else {}
    print(
        f"  {variant}: test MRR {row['test']['mrr']:.4f}  H@10 {row['test']['hits@10']:.4f}  "
        f"hardness {row['hardness']:.3f}  {row['epochs']} epochs  {wall:.0f} s wall",
        flush=True,
    )
    return row


def markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        "# Sampler study: the same model and CPU budget for every sampler",
        "",
        "ComplEx (100 complex coordinates; rows that name another model change only what they name), "
        "softmax cross-entropy over 64 negatives per positive, Adam lr 5e-3, "
        "batch 1024, trained until the budget of process CPU seconds is spent, then filtered test metrics "
        "(both sides). Diagnostics are means over the run's epochs: hardness = mean percentile of a "
        "negative's score among all entities (0.5 = uniform), false = share of negatives that are valid/test "
        "triples, known = share that are training triples, distinct = distinct negative entities / negatives "
        "drawn per batch (it cannot exceed entities / drawn, which is where uniform sits once a batch draws "
        "more negatives than there are entities), vs uniform = distinct negative entities / the number "
        "expected from as many uniform draws, E(1 - (1 - 1/E)^n) (1 = as spread as uniform, below 1 = "
        "concentrated on fewer entities), cost = sampling time as a share of the training step.",
        "",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        part = [r for r in rows if r["dataset"] == dataset]
        budget = part[0]["budget_cpu_seconds"]
        lines += [
            f"## {dataset} (budget {budget:g} CPU s)",
            "",
            "| sampler | test MRR | Hits@10 | epochs | hardness | false % | known % | distinct | vs uniform "
            "| cost % of step | ms / batch |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in part:
            if "error" in r:
                lines.append(f"| {r['sampler']} | failed: {r['error']} | | | | | | | | | |")
                continue
            lines.append(
                f"| {r['sampler']} | {r['test']['mrr']:.4f} | {r['test']['hits@10']:.4f} | {r['epochs']} | "
                f"{_f(r['hardness'], 3)} | {_f(r['false_negative_rate'], 2, 100)} | "
                f"{_f(r['known_positive_rate'], 2, 100)} | {_f(r['distinct_share'], 3)} | "
                f"{_f(r['distinct_vs_uniform'], 3)} | "
                f"{_f(r['sample_share'], 1, 100)} | {_f(r['sample_ms'], 1)} |"
            )
        lines.append("")
    lines += [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, gnnns "
        f"{machine['gnnns_commit']}, {machine['date']}.",
        "",
        "Commands (run from the repository root with `GNNNS_DATA` set):",
        "",
        *[f"- `{r['command']}`" for r in rows],
        "",
    ]
    return "\n".join(lines)


def _f(x, digits: int, factor: float = 1.0) -> str:
    return "n/a" if x is None else f"{factor * x:.{digits}f}"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(2, len(datasets), figsize=(5.5 * len(datasets), 8), squeeze=False)
    for col, dataset in enumerate(datasets):
        part = [r for r in rows if r["dataset"] == dataset and "error" not in r]
        names = [r["sampler"] for r in part]
        ax = axes[0, col]
        ax.barh(names, [r["test"]["mrr"] for r in part], color="tab:blue")
        ax.invert_yaxis()
        ax.set_title(f"{dataset}: test MRR")
        ax.grid(axis="x", alpha=0.3)
        ax = axes[1, col]
        ax.scatter([r["hardness"] or 0 for r in part], [r["test"]["mrr"] for r in part])
        for r in part:
            ax.annotate(r["sampler"], (r["hardness"] or 0, r["test"]["mrr"]), fontsize=7)
        ax.set_xlabel("hardness (mean percentile)")
        ax.set_ylabel("test MRR")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(BUDGETS))
    parser.add_argument(
        "--samplers",
        nargs="+",
        default=SAMPLER_VARIANTS,
        help=f"any of {list(VARIANTS)}, or 'directions', 'mixtures' or 'sides'",
    )
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every CPU budget")
    parser.add_argument("--runs", default=str(REPO / "runs" / "sampler_study"), help="where the runs go")
    parser.add_argument("--stem", default="sampler_study")
    args = parser.parse_args()
    if args.samplers == ["directions"]:
        args.samplers = list(DIRECTIONS)
    elif args.samplers == ["mixtures"]:
        args.samplers = list(MIXTURES)
    elif args.samplers == ["sides"]:
        args.samplers = ["uniform", *SIDES]
    unknown = sorted(set(args.samplers) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown samplers {unknown}; expected some of {list(VARIANTS)}")
    machine = machine_info()
    rows = []
    for dataset in args.datasets:
        budget = BUDGETS.get(dataset, 120.0) * args.budget_scale
        print(f"{dataset}: {budget:g} CPU s per sampler", flush=True)
        for variant in args.samplers:
            safe = "".join(c if c.isalnum() else "_" for c in variant)
            rows.append(run_one(dataset, variant, budget, Path(args.runs) / dataset / safe))
    machine["loadavg_at_end"] = os.getloadavg()
    save(args.stem, {"machine": machine, "model": MODEL, "rows": rows}, markdown(rows, machine))
    plot(rows, RESULTS / f"{args.stem}.png")


if __name__ == "__main__":
    main()
