"""glibc's allocator, as it is (``GNNNS_MALLOC=system``) against keeping freed memory (``keep``,
the gnnns command line's default), in training-step speed and peak memory.

glibc unmaps every freed block above 32 MiB and maps a fresh one for the next allocation, so a
CPU step with large tensors pays for page faults on each of them (``gnnns.training.allocator``).
Each measurement is a fresh process: it applies the setting, builds a registry config's trainer,
takes 3 warm-up steps, then as many of the run's own training steps (sampling, diagnostics, loss,
backward, optimizer) as fit in ``--seconds``; reported are the mean time of a step and the
process's peak resident memory (data loading included). The two settings alternate, first one
then the other, for ``--rounds`` rounds, and each side's median is kept.

    python benchmarks/allocator.py

Writes ``benchmarks/results/allocator.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

from _common import RESULTS, child_env, child_step_timing, machine_info, run_worker, save, this_command, timed_steps

CONFIGS = [
    "libkge-transe-fb15k237",  # negative sampling, batch 128: small tensors
    "libkge-transe-wn18rr",  # negative sampling, 70 + 158 negatives of 512 numbers
    "complex-sce-ls-wn18rr",  # 1vsAll over 40,943 entities
    "libkge-distmult-wn18rr",  # KvsAll over 40,943 entities
    "libkge-conve-wn18rr",  # KvsAll ConvE
    "rescal-sce-ls-fb15k237",  # 1vsAll, looked-up 128 x 128 relation matrices
    "codex-s-rescal",  # 1vsAll, looked-up 512 x 512 relation matrices
]
SETTINGS = ("system", "keep")


def measure(name: str, setting: str, seconds: float, threads: int) -> dict:
    env = {**child_env(), "GNNNS_MALLOC": setting}
    row, _ = run_worker([__file__, "_child", name, "--seconds", str(seconds), "--threads", str(threads)], env=env)
    row.update(config=name, setting=setting)
    print(
        f"{name:<24} {setting:<6} {row['ms_per_step']:8.1f} ms a step ({row['steps']} steps), "
        f"peak {row['peak_rss_mib']:,.0f} MiB",
        flush=True,
    )
    return row


def summarise(rows: list[dict], configs: list[str]) -> list[dict]:
    out = []
    for name in configs:
        side = {
            s: [r for r in rows if r["config"] == name and r["setting"] == s and r["kept"] == (s == "keep")]
            for s in SETTINGS
        }
        if not all(side.values()):
            continue
        ms = {s: statistics.median(r["ms_per_step"] for r in side[s]) for s in SETTINGS}
        rss = {s: max(r["peak_rss_mib"] for r in side[s]) for s in SETTINGS}
        out.append(
            {
                "config": name,
                "setting": side["keep"][0]["described"],
                "system_ms": ms["system"],
                "keep_ms": ms["keep"],
                "speedup": ms["system"] / ms["keep"],
                "system_peak_mib": rss["system"],
                "keep_peak_mib": rss["keep"],
                "memory_ratio": rss["keep"] / rss["system"],
            }
        )
    return out


def markdown(p: dict) -> str:
    lines = [
        "# Keeping freed memory: training-step speed and peak memory",
        "",
        f"Mean milliseconds of a whole training step of each registry config over {p['seconds']:g} s, "
        f"{p['threads']} threads, each in a fresh process; median of {p['rounds']} alternating rounds. "
        "*system*: glibc's allocator as it is (`GNNNS_MALLOC=system`); *keep*: `keep_freed_memory()`, "
        "the `gnnns` command line's default. Peak memory is the process's largest resident set, data "
        "loading included.",
        "",
        "| config | setting | system ms | keep ms | system / keep | peak MiB, system | peak MiB, keep "
        "| memory keep / system |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["summary"]:
        lines.append(
            f"| {r['config']} | {r['setting']} | {r['system_ms']:.1f} | {r['keep_ms']:.1f} | "
            f"**{r['speedup']:.2f}×** | {r['system_peak_mib']:,.0f} | {r['keep_peak_mib']:,.0f} | "
            f"{r['memory_ratio']:.2f}× |"
        )
    m = p["machine"]
    lines += [
        "",
        "A ratio above 1 means keeping freed memory makes a step that many times faster. The peer "
        "benchmarks run gnnns with `GNNNS_MALLOC=system`, as PyKEEN and PyG run, so that both sides "
        "use the same allocator.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, gnnns {m['gnnns_commit']}, {m['date']}; "
        f"load average {m['loadavg_at_start'][0]:.1f} at start, {m['loadavg_at_end'][0]:.1f} at end; "
        f"OMP_WAIT_POLICY={m['omp_wait_policy']}.",
        "",
        f"Command: `{p['command']}`",
        "",
    ]
    return "\n".join(lines)


def child(name: str, seconds: float, threads: int) -> dict:
    from gnnns.training.allocator import apply_setting

    kept = apply_setting()  # GNNNS_MALLOC, as the command line reads it
    return {**timed_steps(name, seconds, threads), "kept": kept}


def main() -> None:
    if child_step_timing(child):
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="registry config names (benchmarks/configs)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per process")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both settings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / "allocator.json").read_text())
        return save("allocator", payload, markdown(payload))
    machine = machine_info()
    rows = []
    for name in args.configs:
        for i in range(args.rounds):
            # Alternate the order so that neither setting always runs first on a drifting machine.
            order = SETTINGS if i % 2 == 0 else tuple(reversed(SETTINGS))
            rows += [measure(name, setting, args.seconds, args.threads) for setting in order]
    machine["loadavg_at_end"] = os.getloadavg()
    payload = {
        "machine": machine,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "threads": args.threads,
        "configs": args.configs,
        "rows": rows,
        "summary": summarise(rows, args.configs),
        "command": this_command(),
    }
    save("allocator", payload, markdown(payload))


if __name__ == "__main__":
    main()
