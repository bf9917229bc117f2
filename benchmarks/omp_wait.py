"""OpenMP's wait policy against training-step speed, on free cores and with a core taken by another job.

PyTorch's CPU kernels run on OpenMP threads; between parallel regions a thread either spins for a
while before sleeping (GNU OpenMP's default, ``OMP_WAIT_POLICY`` unset), or sleeps at once
(``PASSIVE``). The policy is read when OpenMP starts, so each measurement is a fresh process: it
builds a registry config's trainer, takes warm-up steps, then as many training steps (the run's
own: sampling, diagnostics every ``diagnostics_every`` steps, loss, backward, optimizer) as fit
in ``--seconds``, and reports the mean time of a step. With ``busy`` load a pure-Python loop
keeps one of the cores busy meanwhile, as another job on a shared machine would.

    python benchmarks/omp_wait.py

Writes ``benchmarks/results/omp_wait.{json,md}``. The gnnns command line leaves the policy as
the environment sets it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import RESULTS, child_env, child_step_timing, machine_info, run_worker, save, this_command

CONFIGS = [
    "libkge-transe-fb15k237",  # negative sampling: batch 128, small elementwise kernels
    "complex-sce-ls-wn18rr",  # 1vsAll: large matrix products
]
POLICIES = {"default": None, "PASSIVE": "PASSIVE"}
LOADS = ("free", "busy")


def measure(name: str, policy: str, load: str, seconds: float, threads: int) -> dict:
    env = {k: v for k, v in child_env().items() if k != "OMP_WAIT_POLICY"}
    if POLICIES[policy] is not None:
        env["OMP_WAIT_POLICY"] = POLICIES[policy]
    spinner = None
    if load == "busy":
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        row, _ = run_worker([__file__, "_child", name, "--seconds", str(seconds), "--threads", str(threads)], env=env)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    row.update(config=name, policy=policy, load=load)
    print(f"{name:<24} {policy:<8} {load:<5} {row['ms_per_step']:8.1f} ms a step ({row['steps']} steps)", flush=True)
    return row


def markdown(p: dict) -> str:
    by = {(r["config"], r["load"], r["policy"]): r["ms_per_step"] for r in p["rows"]}
    lines = [
        "# OpenMP's wait policy and training-step speed",
        "",
        f"Mean milliseconds of a whole training step (the run's own, diagnostics included) of each registry "
        f"config over {p['seconds']:g} s, {p['threads']} threads, each in a fresh process. *default*: "
        "`OMP_WAIT_POLICY` unset (GNU OpenMP spins a while, then sleeps); *PASSIVE*: threads sleep at once. "
        "*busy*: a pure-Python loop holds one of the two cores meanwhile, as another job would.",
        "",
        "| config | cores | default ms | PASSIVE ms | PASSIVE / default |",
        "|---|---|---:|---:|---:|",
    ]
    for name in p["configs"]:
        for load in LOADS:
            d, s = by.get((name, load, "default")), by.get((name, load, "PASSIVE"))
            if d is None or s is None:
                continue
            lines.append(f"| {name} | {load} | {d:.1f} | {s:.1f} | **{s / d:.2f}×** |")
    m = p["machine"]
    lines += [
        "",
        "A ratio above 1 means the default is that many times faster. The gnnns command line leaves the policy "
        "to the environment: on cores of its own the default is the faster; where other jobs share the cores, "
        "set `OMP_WAIT_POLICY=PASSIVE`. The peer benchmarks give both sides PASSIVE, since this machine is "
        "shared.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, gnnns {m['gnnns_commit']}, {m['date']}; "
        f"load average {m['loadavg_at_start'][0]:.1f} at start, {m['loadavg_at_end'][0]:.1f} at end.",
        "",
        f"Command: `{p['command']}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if child_step_timing():
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="registry config names (benchmarks/configs)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / "omp_wait.json").read_text())
        return save("omp_wait", payload, markdown(payload))
    machine = machine_info()
    machine.pop("omp_wait_policy", None)
    rows = []
    for name in args.configs:
        for load in LOADS:
            # Alternate the order so that neither policy always runs first on a drifting machine.
            order = list(POLICIES) if load == "free" else list(reversed(POLICIES))
            rows += [measure(name, policy, load, args.seconds, args.threads) for policy in order]
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {
        "machine": machine,
        "seconds": args.seconds,
        "threads": args.threads,
        "configs": args.configs,
        "rows": rows,
        "command": command,
    }
    save("omp_wait", payload, markdown(payload))


if __name__ == "__main__":
    main()
