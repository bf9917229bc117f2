"""Adagrad over dense embedding tables: PyTorch's loop of kernels against its fused kernel.

Most LibKGE-derived configs train with Adagrad and dense tables, so every step updates every row
(weight decay makes every gradient row non-zero, as LibKGE's penalty on the whole table does):
``G <- G + g^2``, ``theta <- theta - lr g / (sqrt(G) + eps)``. PyTorch's default implementation
makes several passes over each table a step; ``fused=True`` makes one, and gnnns builds dense
Adagrad fused (``gnnns.training.optim.build_optimizer``). For each registry config named, one
trainer alternates blocks of ``--block`` whole training steps (sampling, the negatives'
diagnostics as the config runs them, loss, backward, optimizer) between two Adagrad optimizers
over the same parameters, one fused and one not, each with its own accumulator. It also times
the optimizer's step alone on the config's gradient shapes.

    python benchmarks/adagrad_fused.py

Writes ``benchmarks/results/adagrad_fused.{json,md}``. Freed memory is kept as the ``gnnns`` command
keeps it (``GNNNS_MALLOC``, default ``keep``; ``benchmarks/allocator.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from _common import (
    RESULTS,
    block_arguments,
    blocks_footer,
    describe,
    endless,
    machine_info,
    registry_trainer,
    save,
    this_command,
)

CONFIGS = [
    "libkge-transe-wn18rr",  # negative sampling, batch 128, 40,943 x 512 entity table
    "libkge-distmult-wn18rr",  # KvsAll, 40,943 x 512
    "libkge-complex-fb15k237",  # negative sampling, batch 1,024, 14,541 x 256
]
WAYS = ("loop", "fused")


def _optimizers(trainer) -> dict:
    """The trainer's own (fused) Adagrad and an unfused copy of its parameter groups."""
    fused = trainer.optimizer
    if not isinstance(fused, torch.optim.Adagrad) or not fused.defaults.get("fused"):
        raise ValueError(f"expected the config's dense, fused Adagrad; got {fused!r}")
    groups = [{k: v for k, v in group.items() if k != "fused"} for group in fused.param_groups]
    return {"fused": fused, "loop": torch.optim.Adagrad(groups, fused=False)}


def measure(name: str, blocks: int, block: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    config, _, trainer = registry_trainer(name)
    optimizers = _optimizers(trainer)
    batches = endless(trainer.loader)
    seconds, steps = dict.fromkeys(WAYS, 0.0), dict.fromkeys(WAYS, 0)
    for way in WAYS:  # warm-up, each way
        trainer.optimizer = optimizers[way]
        for _ in range(2):
            trainer.step(next(batches))
    for index in range(2 * blocks):
        way = WAYS[(index + index // 2) % 2]  # loop fused fused loop loop ...: neither always first
        trainer.optimizer = optimizers[way]
        start = time.perf_counter()
        for _ in range(block):
            trainer.step(next(batches))
        seconds[way] += time.perf_counter() - start
        steps[way] += block
    # The optimizer's step alone, on the last step's gradients.
    alone = dict.fromkeys(WAYS, 0.0)
    for index in range(2 * blocks):
        way = WAYS[(index + index // 2) % 2]
        start = time.perf_counter()
        for _ in range(block):
            optimizers[way].step()
        alone[way] += time.perf_counter() - start
    parameters = sum(p.numel() for group in optimizers["fused"].param_groups for p in group["params"])
    ms = {way: 1000 * seconds[way] / steps[way] for way in WAYS}
    alone_ms = {way: 1000 * alone[way] / (blocks * block) for way in WAYS}
    return {
        "config": name,
        "dataset": config.dataset,
        "setting": describe(config),
        "parameters": parameters,
        "steps": steps["fused"],
        "step_loop_ms": ms["loop"],
        "step_fused_ms": ms["fused"],
        "step_ratio": ms["loop"] / ms["fused"],
        "optimizer_loop_ms": alone_ms["loop"],
        "optimizer_fused_ms": alone_ms["fused"],
        "optimizer_ratio": alone_ms["loop"] / alone_ms["fused"],
    }


def markdown(p: dict) -> str:
    lines = [
        "# Adagrad over dense tables: PyTorch's loop of kernels against its fused kernel",
        "",
        "Whole training steps of registry configs on their datasets, one trainer alternating blocks of steps "
        "between an unfused and a fused Adagrad over the same parameters (each with its own accumulator), and the "
        "optimizer's step alone on the same gradients.",
        "",
        "| config | setting | parameters | step, loop ms | step, fused ms | step faster | optimizer, loop ms | "
        "optimizer, fused ms | optimizer faster |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['config']} | {r['dataset']}, {r['setting']} | {r['parameters']:,} | {r['step_loop_ms']:.1f} | "
            f"{r['step_fused_ms']:.1f} | **{r['step_ratio']:.2f}×** | {r['optimizer_loop_ms']:.1f} | "
            f"{r['optimizer_fused_ms']:.1f} | **{r['optimizer_ratio']:.2f}×** |"
        )
    lines += blocks_footer(p)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    block_arguments(parser, CONFIGS, blocks=3)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / "adagrad_fused.json").read_text())
        return save("adagrad_fused", payload, markdown(payload))
    from gnnns.training.allocator import apply_setting

    kept = apply_setting()  # GNNNS_MALLOC, as the command line reads it
    machine = machine_info()
    machine["freed_memory_kept"] = kept
    rows = []
    for name in args.configs:
        row = measure(name, args.blocks, args.block, args.threads)
        print(json.dumps(row), flush=True)
        rows.append(row)
    machine["loadavg_at_end"] = os.getloadavg()
    payload = {"machine": machine, "blocks": args.blocks, "block": args.block, "threads": args.threads}
    payload.update(rows=rows, command=this_command())
    save("adagrad_fused", payload, markdown(payload))


if __name__ == "__main__":
    main()
