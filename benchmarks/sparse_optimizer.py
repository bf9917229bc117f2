"""The sparse-table optimizer step at ogbl-wikikg2's size: gnnns's LazyAdam against torch's SparseAdam.

One table of ``--entities`` x ``--dim`` floats (default: wikikg2's 2,500,604 entities, RotatE's 100
complex dimensions = 200 floats), a sparse gradient from ``F.embedding(..., sparse=True)`` over the
rows one training step reads (``--rows``, default 512 positives x (128 negatives + 2) = 66,560
uniform draws), then one optimizer step. Both optimizers apply the same rule (lazy Adam; the tests
check they agree); the figure is the step's time, medians over ``--rounds`` alternating rounds in
one process, and the ratio SparseAdam / LazyAdam measured in the same run.

    python benchmarks/sparse_optimizer.py

Writes ``benchmarks/results/sparse_optimizer.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save

from gnnns.training.optim import LazyAdam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=2_500_604)
    parser.add_argument("--dim", type=int, default=200, help="floats per row")
    parser.add_argument("--rows", type=int, default=512 * 130, help="row reads per step (with repeats)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    start_weights = torch.randn(args.entities, args.dim) * 0.01
    tables = {name: torch.nn.Parameter(start_weights.clone()) for name in ("sparse", "lazy")}
    del start_weights
    optimizers = {
        "sparse": torch.optim.SparseAdam([tables["sparse"]], lr=1e-3),
        "lazy": LazyAdam([tables["lazy"]], lr=1e-3),
    }
    times: dict[str, list[float]] = {"sparse": [], "lazy": []}
    for round_ in range(args.rounds + 2):
        rows = torch.randint(args.entities, (args.rows,))
        for name in ("sparse", "lazy") if round_ % 2 == 0 else ("lazy", "sparse"):
            weight, opt = tables[name], optimizers[name]
            opt.zero_grad(set_to_none=True)
            F.embedding(rows, weight, sparse=True).pow(2).sum().backward()
            start = time.perf_counter()
            opt.step()
            if round_ >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - start)
    torch.testing.assert_close(tables["lazy"], tables["sparse"], rtol=1e-5, atol=1e-6)

    med = {name: statistics.median(t) for name, t in times.items()}
    machine = machine_info()
    machine["loadavg_at_end"] = list(os.getloadavg())
    payload = {"args": vars(args), "median_seconds": med, "ratio": med["sparse"] / med["lazy"], "machine": machine}
    markdown = "\n".join(
        [
            "# Sparse-table optimizer step: LazyAdam vs torch.optim.SparseAdam",
            "",
            f"Table {args.entities:,} x {args.dim} floats, a sparse gradient over {args.rows:,} row reads "
            f"(uniform draws), one step; medians of {args.rounds} alternating rounds, {args.threads} threads. "
            "Both end with the same weights (checked in the run).",
            "",
            "| optimizer | ms / step |",
            "|---|---:|",
            f"| torch.optim.SparseAdam | {1000 * med['sparse']:.1f} |",
            f"| gnnns LazyAdam | {1000 * med['lazy']:.1f} |",
            f"| **SparseAdam / LazyAdam** | **{payload['ratio']:.2f}×** |",
            "",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, gnnns "
            f"{machine['gnnns_commit']}, {machine['date']}; load average "
            f"{'/'.join(f'{x:.1f}' for x in machine['loadavg_at_start'])} at start "
            f"(shared machine).",
            "",
            "Command: `python benchmarks/sparse_optimizer.py`",
            "",
        ]
    )
    save("sparse_optimizer", payload, markdown)


if __name__ == "__main__":
    main()
