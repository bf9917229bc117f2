"""Cost of the structure-aware samplers (k-hop, typed) against uniform draws on a large random graph.

Builds a synthetic graph of ``--entities`` entities, ``--relations`` relations and ``--triples``
random triples whose endpoints follow a Zipf-like law (:math:`P(\\text{rank } i) \\propto i^{-0.8}`,
ids shuffled so hubs are scattered), optionally with ``--types`` random entity types (one or two per
entity). For each sampler it reports construction time, the peak resident memory added while
building it (measured in a fresh process per sampler) and the memory it keeps (its buffers), then
the time per batch of ``--batch`` positives x ``--negatives`` negatives, interleaved with uniform
draws (``torch.randint``, and :class:`~gnnns.sampling.UniformSampler` with its coin flip) in the
same process, as the median over ``--repeats`` batches of fresh random positives.

    OMP_NUM_THREADS=1 python benchmarks/sampler_cost_structure.py                 # 2.5M / 535 / 16M
    OMP_NUM_THREADS=1 python benchmarks/sampler_cost_structure.py --triples 1000000 --entities 150000

Prints a Markdown table and one JSON line (nothing is written to disk).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import machine_info

from gnnns.data import KnowledgeGraph
from gnnns.sampling import UniformSampler
from gnnns.sampling.khop import KHopSampler
from gnnns.sampling.typed import TypedSampler


def zipf_graph(num_entities: int, num_relations: int, num_triples: int, num_types: int, seed: int) -> KnowledgeGraph:
    """Random triples with heavy-tailed degrees: endpoint rank :math:`E u^5`, :math:`u \\sim \\mathcal{U}[0, 1)`."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randperm(num_entities, generator=g)

    def endpoint() -> torch.Tensor:
        # P(rank <= x) = (x / E) ** 0.2, i.e. a density proportional to rank ** -0.8.
        rank = (num_entities * torch.rand(num_triples, generator=g) ** 5).long().clamp_(max=num_entities - 1)
        return ids[rank]

    head = endpoint()
    tail = endpoint()
    rel = torch.randint(num_relations, (num_triples,), generator=g)
    types = None
    if num_types:
        first = torch.randint(num_types, (num_entities,), generator=g)
        extra = torch.nonzero(torch.rand(num_entities, generator=g) < 0.3).squeeze(1)
        second = torch.randint(num_types, (extra.numel(),), generator=g)
        types = torch.cat([torch.stack([torch.arange(num_entities), first], 1), torch.stack([extra, second], 1)])
    return KnowledgeGraph(
        torch.stack([head, rel, tail], 1),
        num_entities=num_entities,
        num_relations=num_relations,
        entity_types=types,
        name="zipf",
    )


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def build(factory: Callable[[], torch.nn.Module]) -> tuple[torch.nn.Module, dict]:
    """Build a sampler; its construction time, the peak resident memory it added, its buffers."""
    before = _status_kib("VmRSS")
    try:  # reset the peak (VmHWM) to the current resident size
        Path("/proc/self/clear_refs").write_text("5")
        exact = True
    except OSError:
        exact = False
    start = time.perf_counter()
    sampler = factory()
    seconds = time.perf_counter() - start
    kept = sum(b.numel() * b.element_size() for b in sampler.buffers())
    return sampler, {
        "build_s": round(seconds, 2),
        "peak_added_mib": round((_status_kib("VmHWM") - before) / 1024, 1) if exact else None,
        "buffers_mib": round(kept / 2**20, 1),
    }


def factories(kg: KnowledgeGraph, args) -> dict[str, Callable[[], torch.nn.Module]]:
    out = {
        "uniform": lambda: UniformSampler(kg),
        f"khop (k={args.k})": lambda: KHopSampler(kg, k=args.k),
        "typed (domain/range)": lambda: TypedSampler(kg, use_types=False),
    }
    if args.types:
        out["typed (types)"] = lambda: TypedSampler(kg, use_types=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=2_500_000)
    parser.add_argument("--relations", type=int, default=535)
    parser.add_argument("--triples", type=int, default=16_000_000)
    parser.add_argument("--types", type=int, default=100, help="random entity types (0: none)")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--negatives", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-only", help="build this sampler only and print its costs (used internally)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    start = time.perf_counter()
    kg = zipf_graph(args.entities, args.relations, args.triples, args.types, args.seed)
    graph_s = time.perf_counter() - start
    if args.build_only:
        # A fresh process per sampler, so that memory freed by another build cannot hide its peak.
        print(json.dumps(build(factories(kg, args)[args.build_only])[1]))
        return
    samplers, rows = {}, []
    for name, factory in factories(kg, args).items():
        samplers[name] = factory()
        proc = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--build-only", name], capture_output=True, text=True, check=True
        )
        rows.append({"sampler": name, **json.loads(proc.stdout.strip().splitlines()[-1])})

    times: dict[str, list[float]] = {"torch.randint": [], **{name: [] for name in samplers}}
    shape = (args.batch, args.negatives)
    for step in range(args.repeats + 1):
        positives = kg.train[torch.randint(len(kg.train), (args.batch,))]
        calls = {"torch.randint": lambda: torch.randint(kg.num_entities, shape)}
        calls.update({name: (lambda s=s, p=positives: s(p, args.negatives)) for name, s in samplers.items()})
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if step:  # the first round warms caches and allocator
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["torch.randint"])
    by_name = {row["sampler"]: row for row in rows}
    table = []
    for name, samples in times.items():
        ms = statistics.median(samples)
        row = by_name.get(name, {"sampler": name})
        row.update(ms_per_batch=round(ms * 1e3, 3), ratio_to_randint=round(ms / base, 2))
        row["negatives_per_s"] = round(args.batch * args.negatives / ms)
        if name in samplers and hasattr(samplers[name], "epoch_stats"):
            row.update({key: round(v, 5) for key, v in samplers[name].epoch_stats().items()})
        table.append(row)

    print(
        f"graph: {kg.num_entities:,} entities, {kg.num_relations} relations, {len(kg.train):,} triples, "
        f"{args.types} types; generated in {graph_s:.1f} s; batch {args.batch} x {args.negatives}, "
        f"median of {args.repeats}"
    )
    print("| sampler | build s | peak added MiB | buffers MiB | ms / batch | x randint | negatives/s | fallback |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in table:
        cells = [row.get(key, "") for key in ("build_s", "peak_added_mib", "buffers_mib")]
        print(
            f"| {row['sampler']} | " + " | ".join(str(c) for c in cells) + f" | {row['ms_per_batch']} | "
            f"{row['ratio_to_randint']} | {row['negatives_per_s']:,} | {row.get('fallback_rate', '')} |"
        )
    print(json.dumps({"args": vars(args), "machine": machine_info(), "rows": table}))


if __name__ == "__main__":
    main()
