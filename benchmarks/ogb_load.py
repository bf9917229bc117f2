"""Loading ogbl-wikikg2-shaped files in OGB's layout: time and peak memory at fractions of the size.

For each ``--scales`` entry, a seeded :func:`gnnns.data.wikikg2_like` graph with 500 + 500
evaluation candidates per valid/test triple is written in OGB's on-disk layout
(:func:`gnnns.data.ogb.write_ogb_layout`, ``raw/`` CSVs, ``split/time/*.pt``, the RELEASE file) in
one process, then loaded in a fresh process with ``load_dataset("ogbl-wikikg2", root=...)``
(``ogb``'s own ``LinkPropPredDataset`` underneath, offline). The loading process reports its wall
time, its resident memory before loading (after the imports), its peak (``ru_maxrss``) and its
resident memory afterwards; the first load also parses ``raw/`` and writes
``processed/data_processed``, so a second load is timed too.

    python benchmarks/ogb_load.py                     # 1/16 and 1/8
    python benchmarks/ogb_load.py --scales 0.125,0.25  # needs ~8 GB free while writing

Writes ``benchmarks/results/ogb_load.{json,md}``. The files go to a temporary folder and are
deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def write_worker(scale: float, root: str) -> None:
    from gnnns.data import wikikg2_like
    from gnnns.data.ogb import write_ogb_layout

    kg = wikikg2_like(scale=scale, eval_negatives=500)
    write_ogb_layout(kg, root, "ogbl-wikikg2")
    print(json.dumps({"train": len(kg.train), "entities": kg.num_entities}))


def load_worker(root: str) -> None:
    from gnnns.data import load_dataset

    before = rss_gb()
    start = time.perf_counter()
    kg = load_dataset("ogbl-wikikg2", root=root)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB
    candidates = sum(c.nbytes for c in kg.eval_negatives.values()) / 1e9
    print(
        json.dumps(
            {"seconds": seconds, "rss_before": before, "peak": peak, "rss_after": rss_gb(), "candidates_gb": candidates}
        )
    )


def run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="0.0625,0.125")
    parser.add_argument("--worker", choices=["write", "load"])
    parser.add_argument("--scale", type=float)
    parser.add_argument("--root")
    args = parser.parse_args()
    if args.worker == "write":
        return write_worker(args.scale, args.root)
    if args.worker == "load":
        return load_worker(args.root)

    machine = machine_info()
    rows = []
    for scale in (float(s) for s in args.scales.split(",")):
        with tempfile.TemporaryDirectory(prefix="gnnns-ogb-") as root:
            shape = run(["--worker", "write", "--scale", str(scale), "--root", root])
            first = run(["--worker", "load", "--root", root])
            second = run(["--worker", "load", "--root", root])
        rows.append({"scale": scale, **shape, "first": first, "second": second})
        print(rows[-1], flush=True)
    machine["loadavg_at_end"] = list(os.getloadavg())
    lines = [
        "# Loading ogbl-wikikg2-shaped files in OGB's layout",
        "",
        "`wikikg2_like(scale, eval_negatives=500)` written with `write_ogb_layout`, loaded in a fresh process with "
        '`load_dataset("ogbl-wikikg2", root=...)` (ogb\'s `LinkPropPredDataset`, offline). The first load parses '
        "`raw/` and writes `processed/`; the second reads that. *Before*: resident memory after the imports; "
        "*peak*: `ru_maxrss`; *after*: resident memory holding the graph; *candidates*: the int32 evaluation "
        "candidates held.",
        "",
        "| scale | entities | train triples | first load s | second load s | before GB | peak GB | after GB "
        "| candidates GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        f, s = r["first"], r["second"]
        lines.append(
            f"| {r['scale']:g} | {r['entities']:,} | {r['train']:,} | {f['seconds']:.1f} | {s['seconds']:.1f} | "
            f"{s['rss_before']:.2f} | {s['peak']:.2f} | {s['rss_after']:.2f} | {s['candidates_gb']:.2f} |"
        )
    load = "/".join(f"{x:.1f}" for x in machine["loadavg_at_start"])
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, gnnns "
        f"{machine['gnnns_commit']}, {machine['date']}; load average {load} at start (shared machine).",
        "",
        f"Command: `python benchmarks/ogb_load.py --scales {args.scales}`",
        "",
    ]
    save("ogb_load", {"rows": rows, "machine": machine}, "\n".join(lines))


if __name__ == "__main__":
    main()
