"""Training steps in bfloat16 autocast (``precision: bf16``) against float32: speed and what it costs.

**speed**: for registry configs of 1-N and negative-sampling training on the real datasets, one
trainer takes the same batches in both precisions, alternating (one process), and reports the
median seconds of a whole step (forward, loss, backward, optimizer) and the ratio fp32 / bf16.

**quality**: trains registry configs to their end in both precisions, each with
``gnnns train --config benchmarks/configs/NAME.yaml --precision P`` in a fresh process, and
reports the filtered test MRR and Hits@10 of each (evaluated in float32 either way) and the
training time.

    python benchmarks/precision.py speed
    python benchmarks/precision.py quality --configs umls-complex-1vsall codex-s-complex

Writes ``benchmarks/results/precision_speed.{json,md}`` or ``precision_quality.{json,md}`` (``--output STEM``
for another name: bfloat16's gain depends on the CPU, so each machine measured keeps its own file).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

import torch
from _common import (
    REPO,
    RESULTS,
    alternating_footer,
    child_env,
    describe,
    gnnns_cmd,
    machine_info,
    registry_trainer,
    save,
    this_command,
)

SPEED_CONFIGS = [
    "complex-sce-ls-wn18rr",  # ComplEx 1vsAll, 64 complex coordinates, 40,943 entities
    "rescal-sce-ls-fb15k237",  # RESCAL 1vsAll, d = 128
    "libkge-distmult-wn18rr",  # DistMult KvsAll, d = 512
    "libkge-conve-fb15k237",  # ConvE 1vsAll
    "libkge-complex-fb15k237",  # ComplEx, 529 + 1000 negatives per positive (batched products)
    "libkge-transe-fb15k237",  # TransE, 61 + 192 negatives (elementwise: autocast changes nothing)
    "libkge-transe-wn18rr",  # TransE d = 512, 70 + 158 negatives, lookup dropout
    "libkge-distmult-fb15k237",  # DistMult d = 256, 255 + 402 negatives
    "libkge-conve-wn18rr",  # ConvE KvsAll
    "codex-s-rescal",  # RESCAL d = 512, 1vsAll
]


def measure_speed(name: str, repeats: int) -> dict:
    config, _, trainer = registry_trainer(name, diagnostics_every=0)
    batches = []
    for batch in trainer.loader:
        batches.append(batch)
        if len(batches) == repeats + 1:
            break
    times = {"fp32": [], "bf16": []}
    order = ["fp32", "bf16"]
    for i, batch in enumerate(batches):
        for precision in order if i % 2 == 0 else reversed(order):
            trainer.precision = precision
            start = time.perf_counter()
            trainer.step(batch)
            if i > 0:  # the first batch warms both up
                times[precision].append(time.perf_counter() - start)
    ms = {p: 1000 * statistics.median(t) for p, t in times.items()}
    row = {
        "config": name,
        "dataset": config.dataset,
        "setting": describe(config),
        "fp32_ms": ms["fp32"],
        "bf16_ms": ms["bf16"],
        "ratio": ms["fp32"] / ms["bf16"],
        "steps_per_epoch": len(trainer.loader),
        "max_epochs": config.epochs,
    }
    minutes = {p: row["steps_per_epoch"] * ms[p] / 60000 for p in ms}
    print(
        f"{name}: fp32 {ms['fp32']:.0f} ms, bf16 {ms['bf16']:.0f} ms, {row['ratio']:.2f}x; an epoch of "
        f"{row['steps_per_epoch']} steps {minutes['fp32']:.1f} / {minutes['bf16']:.1f} min",
        flush=True,
    )
    return row


def speed_markdown(p: dict) -> str:
    lines = [
        "# Training steps in bfloat16 autocast against float32",
        "",
        f"A whole training step (forward, loss, backward, optimizer) of each registry config on its dataset, "
        f"the same {p['repeats']} batches in both precisions, alternating in one trainer after a warm-up batch; "
        "median milliseconds. `precision: bf16` runs the step's forward under `torch.autocast` with bfloat16: "
        "matrix products take bfloat16 inputs and accumulate in float32; losses, parameters, gradients, the "
        "optimizer and evaluation stay float32.",
        "",
        "| config | dataset | setting | fp32 ms | bf16 ms | fp32 / bf16 | steps an epoch | epoch, fp32 / bf16 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        steps = r.get("steps_per_epoch")
        epoch = f"{steps * r['fp32_ms'] / 60000:.1f} / {steps * r['bf16_ms'] / 60000:.1f} min" if steps else "–"
        lines.append(
            f"| {r['config']} | {r['dataset']} | {r['setting']} | {r['fp32_ms']:.0f} | {r['bf16_ms']:.0f} | "
            f"**{r['ratio']:.2f}×** | {steps or '–'} | {epoch} |"
        )
    lines += [
        "",
        "The epoch is the step times the config's steps an epoch: training steps only (no validation; the "
        "negatives' diagnostics, off here, add a little to a negative-sampling epoch). Configs train up to "
        "their `epochs` with early stopping.",
    ]
    lines += alternating_footer(p)
    return "\n".join(lines)


def train_once(name: str, precision: str, threads: int) -> dict:
    out = REPO / "runs" / "precision" / f"{name}-{precision}"
    cmd = [*gnnns_cmd(), "train", "--config", f"benchmarks/configs/{name}.yaml", "--precision", precision]
    cmd += ["--output", str(out), "--overwrite", "--no-progress"]
    env = {**child_env(), "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    result = json.loads((out / "metrics.json").read_text())
    summary = result["summary"]
    shown = " ".join(cmd[len(gnnns_cmd()) :]).replace(str(REPO) + "/", "")
    row = {
        "config": name,
        "precision": precision,
        "test_mrr": result["test"]["mrr"],
        "test_hits@10": result["test"]["hits@10"],
        "valid_mrr": result["valid"]["mrr"],
        "epochs": summary["epochs_trained"],
        "best_epoch": summary["best_epoch"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": wall,
        "command": "gnnns " + shown,
    }
    print(
        f"{name} {precision}: test MRR {row['test_mrr']:.4f}, {row['epochs']} epochs, "
        f"{row['train_seconds']:.0f} s training",
        flush=True,
    )
    return row


def quality_markdown(p: dict) -> str:
    lines = [
        "# Training in bfloat16 autocast against float32: test metrics",
        "",
        "Each registry config trained to its end (its epochs, early stopping and schedule) in both precisions, "
        "one after the other, each in a fresh process; filtered test metrics of the best validation epoch, "
        "ranked in float32 either way.",
        "",
        "| config | precision | test MRR | Hits@10 | valid MRR | epochs (best validation; – none) | training time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['config']} | {r['precision']} | {r['test_mrr']:.4f} | {r['test_hits@10']:.4f} | "
            f"{r['valid_mrr']:.4f} | {r['epochs']} ({r['best_epoch'] or '–'}) | {r['train_seconds'] / 60:.1f} min |"
        )
    m = p["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {p['threads']} threads a run, gnnns "
        f"{m['gnnns_commit']}, {m['date']}; load average {m['loadavg_at_start'][0]:.1f} at start, "
        f"{m['loadavg_at_end'][0]:.1f} at end (the machine is shared: training times are upper bounds).",
        "",
        f"Command: `{p['command']}`",
        "",
        "Runs:",
        "",
        *[f"- `{r['command']}`" for r in p["rows"]],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["speed", "quality"])
    parser.add_argument("--configs", nargs="+", default=None, help="registry config names (benchmarks/configs)")
    parser.add_argument("--repeats", type=int, default=6, help="speed: measured batches per precision")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--output", default=None, help="results stem (default precision_<part>)")
    args = parser.parse_args()
    stem = args.output or f"precision_{args.part}"
    render = speed_markdown if args.part == "speed" else quality_markdown
    if args.render_only:
        payload = json.loads((RESULTS / f"{stem}.json").read_text())
        return save(stem, payload, render(payload))
    torch.set_num_threads(args.threads)
    machine = machine_info()
    if args.part == "speed":
        rows = [measure_speed(name, args.repeats) for name in args.configs or SPEED_CONFIGS]
    else:
        names = args.configs or ["umls-complex-1vsall"]
        rows = [train_once(name, precision, args.threads) for name in names for precision in ("fp32", "bf16")]
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {"machine": machine, "repeats": args.repeats, "threads": args.threads, "rows": rows, "command": command}
    save(stem, payload, render(payload))


if __name__ == "__main__":
    main()
