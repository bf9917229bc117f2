"""A neighbour-sampled R-GCN step with a dense or a sparse input table, at ogbl-wikikg2's size.

R-GCN without node features starts every node from a row of a learned ``[E, d]`` table. On a
sampled subgraph only its nodes' rows get a gradient, but a dense table still gets an ``[E, d]``
gradient and a dense Adam update of the whole table and both moments every step: a cost that
grows with the graph, not with the batch. ``--sparse`` (``build_model(..., sparse=True)``) gives
the table a sparse gradient of the subgraph's rows, which ``LazyAdam`` applies to those rows alone.

For each scale of ``wikikg2_like`` both settings run in fresh processes (through
``scale_wikikg2.py``'s ``gnn`` measurement: R-GCN 2 layers, 4 bases, dim 100, DistMult, fan-out
10, 5, batch 512 x 32 uniform negatives, NSSA, Adam 1e-3, 20 timed steps after 2), the order
alternating between scales. Reported: seconds per step, the peak resident memory of each
process, and the ratio dense / sparse.

    python benchmarks/gnn_sparse_input.py                    # scales 1/8 and 1
    python benchmarks/gnn_sparse_input.py --scales 0.125

Writes ``benchmarks/results/gnn_sparse_input.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _common import RESULTS, child_env, machine_info, run_worker, save, this_command

SCALE_SCRIPT = Path(__file__).resolve().parent / "scale_wikikg2.py"


def measure(scale: float, sparse: bool, args) -> dict:
    worker = [str(SCALE_SCRIPT), "--worker", "gnn", "--scale", repr(scale), "--threads", str(args.threads)]
    worker += ["--gnn-steps", str(args.steps), "--gnn-batch-size", "512", "--gnn-negatives", "32", "--fanout", "10,5"]
    worker += ["--sparse-input"] if sparse else []
    env = {**child_env(), "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    result, wall = run_worker(worker, env=env)
    result["process_seconds"] = wall
    result["seconds_per_step"] = result["seconds"] / result["steps"]
    result["command"] = "python " + " ".join(worker)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="0.125,1", help="fractions of ogbl-wikikg2's size")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / "gnn_sparse_input.json").read_text())
        return save("gnn_sparse_input", payload, markdown(payload))
    machine = machine_info()
    rows = []
    for i, scale in enumerate(float(s) for s in args.scales.split(",") if s.strip()):
        row = {"scale": scale}
        for sparse in (False, True) if i % 2 == 0 else (True, False):
            key = "sparse" if sparse else "dense"
            print(f"scale {scale:g}: {key} ...", flush=True)
            row[key] = measure(scale, sparse, args)
            print(f"  {row[key]['seconds_per_step']:.2f} s/step, peak {row[key]['peak_gb']:.2f} GB", flush=True)
        row["ratio"] = row["dense"]["seconds_per_step"] / row["sparse"]["seconds_per_step"]
        rows.append(row)
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {"machine": machine, "steps": args.steps, "threads": args.threads, "rows": rows, "command": command}
    save("gnn_sparse_input", payload, markdown(payload))


def markdown(p: dict) -> str:
    m = p["machine"]
    lines = [
        "# Neighbour-sampled R-GCN: dense or sparse input table",
        "",
        "`wikikg2_like(scale)` (ogbl-wikikg2's 2,500,604 entities and 16.1M training triples times `scale`); "
        "R-GCN (2 layers, 4 bases, dim 100) + DistMult on subgraphs sampled with fan-out 10, 5 around "
        f"512 positives x 32 uniform negatives, NSSA, Adam 1e-3; {p['steps']} timed steps after 2, each "
        "setting in a fresh process. *Dense*: the input table's gradient is `[E, 100]` and Adam updates every "
        "row; *sparse* (`--sparse`): the gradient holds the subgraph's rows and LazyAdam updates those.",
        "",
        "| scale | entities | subgraph nodes / step | dense s/step | sparse s/step | dense / sparse "
        "| dense peak GB | sparse peak GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        d, s = r["dense"], r["sparse"]
        lines.append(
            f"| {r['scale']:g} | {round(2_500_604 * r['scale']):,} | {s['subgraph_nodes']:,.0f} | "
            f"{d['seconds_per_step']:.2f} | {s['seconds_per_step']:.2f} | **{r['ratio']:.2f}×** | "
            f"{d['peak_gb']:.2f} | {s['peak_gb']:.2f} |"
        )
    loads = [r[k]["loadavg_start"][0] for r in p["rows"] for k in ("dense", "sparse")]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({p['threads']} threads per process), "
        f"Python {m['python']}, gnnns {m['gnnns_commit']}, {m['date']}; 1-minute load average "
        f"{min(loads):.1f} to {max(loads):.1f} at the start of the measurements.",
        "",
        f"Command: `{p['command']}`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
