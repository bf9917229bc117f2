"""Shortened CPU runs of the GNN reproductions, with their validation MRR curve.

    GNNNS_DATA=../shared/datasets python benchmarks/gnn_quality.py compgcn --epochs 3 --batch-size 1024 --lr 0.003
    GNNNS_DATA=../shared/datasets python benchmarks/gnn_quality.py rgcn --epochs 3

Each run trains a config of ``examples/configs/`` (the published settings) with the overrides
given, validates after every epoch, evaluates the best epoch on the test split, and writes
``results/gnn_quality_<name>.{json,md,png}``: the MRR curve, the test metrics, the time, the
machine and the exact command. The full-length runs need a GPU (the configs' own commands).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from _common import REPO, RESULTS, child_env, gnnns_cmd, machine_info, machine_line, save, this_command

CONFIGS = {
    "compgcn": ("examples/configs/compgcn_conve_fb15k237.yaml", 0.355, "Vashishth et al. (2020), CompGCN corr + ConvE"),
    "rgcn": ("examples/configs/rgcn_fb15k237.yaml", 0.248, "Schlichtkrull et al. (2018), R-GCN + DistMult"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(CONFIGS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-dir", default=None, help="default: runs/gnn_quality_<name>")
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="no training: write the results of a run stopped early (its completed epochs; test metrics "
        "from `gnnns evaluate RUN_DIR`, which writes evaluation_test.json)",
    )
    args = parser.parse_args()
    config, published, source = CONFIGS[args.name]
    run_dir = args.run_dir or str(REPO / "runs" / f"gnn_quality_{args.name}")
    flags = ["--config", config, "--epochs", str(args.epochs), "--eval-every", "1", "--output", run_dir, "--overwrite"]
    flags += ["--no-progress"]
    if args.batch_size:
        flags += ["--batch-size", str(args.batch_size)]
    if args.lr:
        flags += ["--lr", str(args.lr)]
    env = {**child_env(), "OMP_NUM_THREADS": str(args.threads)}
    machine = machine_info()
    start = time.perf_counter()
    if not args.summarize:
        subprocess.run([*gnnns_cmd(), "train", *flags], cwd=REPO, env=env, check=True)
    seconds = time.perf_counter() - start
    lines = Path(run_dir, "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    if Path(run_dir, "metrics.json").exists():
        final = json.loads(Path(run_dir, "metrics.json").read_text(encoding="utf-8"))
    else:  # stopped early: the test metrics of `gnnns evaluate RUN_DIR`
        final = {"test": json.loads(Path(run_dir, "evaluation_test.json").read_text(encoding="utf-8"))["metrics"]}
    if args.summarize:
        seconds = sum(r["train_seconds"] for r in records)
    curve = [
        {"epoch": r["epoch"], "loss": r["loss"], "train_seconds": r["train_seconds"], "valid_mrr": r["valid"]["mrr"]}
        for r in records
        if "valid" in r
    ]
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {
        "name": args.name,
        "config": config,
        "overrides": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr},
        "published_test_mrr": published,
        "source": source,
        "curve": curve,
        "test": final.get("test"),
        "seconds": seconds,
        "machine": machine,
        "command": command,
    }
    lines = [
        f"# {source}: shortened CPU run on FB15k-237",
        "",
        f"`{command}` ({config} with the overrides {payload['overrides']}); {machine_line(machine)}.",
        "",
        "| epoch | loss | train s | valid MRR |",
        "|---:|---:|---:|---:|",
        *[f"| {c['epoch']} | {c['loss']:.4f} | {c['train_seconds']:.0f} | {c['valid_mrr']:.4f} |" for c in curve],
        "",
    ]
    test = final.get("test") or {}
    if test:
        lines.append(
            f"Test (best validation epoch): MRR {test['mrr']:.4f}, Hits@1 {test['hits@1']:.4f}, "
            f"Hits@10 {test['hits@10']:.4f}; published MRR {published}. "
            f"{'Training' if args.summarize else 'Total'} {seconds / 60:.1f} min."
        )
    save(f"gnn_quality_{args.name}", payload, "\n".join(lines) + "\n")
    from gnnns.plots import plot_runs

    plot_runs([run_dir], RESULTS / f"gnn_quality_{args.name}.png", labels=[args.name])


if __name__ == "__main__":
    main()
