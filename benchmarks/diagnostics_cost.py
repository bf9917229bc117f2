"""What the negatives' diagnostics cost a negative-sampling training step, and which part of them.

A run measures its negatives every ``diagnostics_every`` batches (:class:`NegativeDiagnostics`):
false-negative rate, known-positive rate, diversity, and *hardness*, which scores up to
``hardness_queries`` of the batch's queries against every entity and ranks each negative among
them. For registry configs of negative-sampling training on their datasets, one trainer takes
blocks of ``diagnostics_every`` steps with the diagnostics on and blocks with them off,
alternating, and the script reports the mean step time of each, what a measured step adds, and
the share of that in the hardness measurement (scoring every entity and sorting).

    python benchmarks/diagnostics_cost.py

Writes ``benchmarks/results/diagnostics_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from _common import RESULTS, describe, endless, machine_info, registry_trainer, save, this_command

CONFIGS = [
    "libkge-transe-fb15k237",  # batch 128, 61 + 192 negatives, 14,541 entities
    "libkge-transe-wn18rr",  # batch 128, 70 + 158 negatives, d = 512, 40,943 entities
    "umls-rotate-sans",  # batch 256 x 64 negatives, 135 entities
]


class _Timed:
    """Wraps a bound method and adds up the seconds spent in it."""

    def __init__(self, method):
        self.method, self.seconds, self.calls = method, 0.0, 0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def measure(name: str, blocks: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    config, kg, trainer = registry_trainer(name)
    diagnostics = trainer.diagnostics
    if diagnostics is None:
        raise ValueError(f"{name}: no negative diagnostics (1-N training, or diagnostics_every 0)")
    observe = diagnostics.observe = _Timed(diagnostics.observe)
    exact = diagnostics._observe_hardness = _Timed(diagnostics._observe_hardness)
    batches = endless(trainer.loader)
    every = diagnostics.every
    for _ in range(every):  # warm-up, the diagnostics' first measured step included
        trainer.step(next(batches))
    seconds = {"on": 0.0, "off": 0.0}
    steps = dict.fromkeys(seconds, 0)
    observe.seconds = exact.seconds = 0.0
    observe.calls = exact.calls = 0
    for block in range(2 * blocks):
        side = ("on", "off")[(block + block // 2) % 2]  # on off off on on off ...: neither always first
        trainer.diagnostics = diagnostics if side == "on" else None
        start = time.perf_counter()
        for _ in range(every):
            trainer.step(next(batches))
        seconds[side] += time.perf_counter() - start
        steps[side] += every
    trainer.diagnostics = diagnostics
    measured = observe.calls  # observe runs once per side of a measured step
    sides = 2 if config.negative_sides == "both" else 1
    measured_steps = measured // sides
    return {
        "config": name,
        "dataset": config.dataset,
        "entities": kg.num_entities,
        "setting": f"{describe(config)}, every {every} steps, {config.hardness_queries} hardness queries",
        "every": every,
        "steps": steps["on"],
        "measured_steps": measured_steps,
        "off_ms": 1000 * seconds["off"] / steps["off"],
        "on_ms": 1000 * seconds["on"] / steps["on"],
        "observe_ms": 1000 * observe.seconds / max(measured_steps, 1),
        "hardness_ms": 1000 * exact.seconds / max(measured_steps, 1),
    }


def markdown(p: dict) -> str:
    lines = [
        "# What the negatives' diagnostics cost a training step",
        "",
        "Registry configs of negative-sampling training on their datasets; one trainer alternates blocks of "
        "`diagnostics_every` steps with the diagnostics on and off (the same measured share of steps as a run). "
        "*Measured step*: what the diagnostics add to a step they measure; *hardness*: of that, scoring the "
        "`hardness_queries` queries against every entity and ranking the negatives among them.",
        "",
        "| config | setting | step, off | step, on | on / off | measured step adds | of it, hardness |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        share = r["hardness_ms"] / r["observe_ms"] if r["observe_ms"] else 0.0
        lines.append(
            f"| {r['config']} | {r['dataset']} ({r['entities']:,} entities), {r['setting']} | "
            f"{r['off_ms']:.1f} ms | {r['on_ms']:.1f} ms | **{r['on_ms'] / r['off_ms']:.2f}×** | "
            f"{r['observe_ms']:.1f} ms | {r['hardness_ms']:.1f} ms ({share:.0%}) |"
        )
    m = p["machine"]
    lines += [
        "",
        f"{p['blocks']} blocks a side, {p['threads']} threads. Machine: {m['cpu']}, {m['cores']} cores, torch "
        f"{m['torch']}, gnnns {m['gnnns_commit']}, {m['date']}; load average {m['loadavg_at_start'][0]:.1f} at "
        f"start, {m['loadavg_at_end'][0]:.1f} at end.",
        "",
        f"Command: `{p['command']}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="registry config names (benchmarks/configs)")
    parser.add_argument("--blocks", type=int, default=20, help="blocks of diagnostics_every steps per side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="diagnostics_cost", help="results stem under benchmarks/results/")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.output}.json").read_text())
        return save(args.output, payload, markdown(payload))
    machine = machine_info()
    rows = []
    for name in args.configs:
        row = measure(name, args.blocks, args.threads)
        print(json.dumps(row), flush=True)
        rows.append(row)
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {"machine": machine, "blocks": args.blocks, "threads": args.threads, "rows": rows, "command": command}
    save(args.output, payload, markdown(payload))


if __name__ == "__main__":
    main()
