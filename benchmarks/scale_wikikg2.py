"""The whole pipeline at ogbl-wikikg2's size and at fractions of it: time, memory and throughput.

On :func:`gnnns.data.wikikg2_like` (ogbl-wikikg2's 2,500,604 entities, 535 relations and
16,109,182 training triples at scale 1, heavy-tailed degrees, 500 + 500 seeded random evaluation
candidates per test triple), for every ``--scales`` entry, each measurement in a fresh process so
that its peak resident memory (``ru_maxrss``) is its own:

* **load**: generating the graph, building ``kg.index()`` (every known triple) and
  ``kg.train_index()``, and two lookups (membership of 512 x 128 corrupted triples, the known
  tails of 4,096 queries);
* **samplers**: building uniform, Bernoulli, k-hop and typed negative samplers (seconds, memory of
  their own tensors) and one ``batch x 128`` sampling call of each (median of 5);
* **shallow** (once with uniform, once with k-hop negatives): RotatE, 100 complex coordinates,
  sparse embedding gradients and LazyAdam (SparseAdam's rule), NSSA loss (margin 9, temperature 1), 128 negatives
  per positive, ``--batch-size`` positives per step, trained by :class:`gnnns.training.trainer.Trainer`:
  positive triples per second over ``--steps`` steps after ``--warmup`` steps. The uniform run then
  ranks ``--eval-queries`` test queries under OGB's protocol (each true entity against its 500
  candidates, heads and tails) and reports queries per second; its peak memory is the figure the
  issue bounds (16 GB at full size). The k-hop run then also times ``--steps`` more steps in
  alternating blocks of 10 with k-hop and with uniform negatives, for a ratio that the machine's
  load reaches alike (target: k-hop at least 1/3 of uniform's throughput);
* **gnn**: R-GCN (two layers, 4 bases, dim 100) with a DistMult decoder trained on
  neighbour-sampled subgraphs (:class:`gnnns.loaders.NeighborSubgraphs`, ``--fanout``) whose
  seeds are the entities of ``--gnn-batch-size`` positives and their ``--gnn-negatives`` uniform
  negatives each; steps per second over ``--gnn-steps`` steps, with the share spent sampling
  subgraphs and their size.

Every figure is also given relative to the smallest scale and divided by the size ratio (a
"normalised growth" of 1 is linear in the number of triples, below 1 sub-linear; per-step costs
should stay near the inverse size ratio, i.e. flat).

    python benchmarks/scale_wikikg2.py                                # 1/8, 1/4, 1/2, 1: ~10-20 min
    python benchmarks/scale_wikikg2.py --scales 0.01,0.02 --steps 20  # a quick look
    python benchmarks/scale_wikikg2.py --render-only                  # table and plot from the JSON

Writes ``benchmarks/results/scale_wikikg2.{json,md,png}`` (``--stem`` to change the name).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import time
from pathlib import Path

import torch
from _common import RESULTS, child_env, machine_info, run_worker, save, this_command

SCRIPT = Path(__file__).resolve()
SAMPLERS = ("uniform", "bernoulli", "khop", "typed")
MEASUREMENTS = ("load", "samplers", "shallow-uniform", "shallow-khop", "gnn")
EVAL_CANDIDATES = 500  # head and tail candidates per evaluation triple, as ogbl-wikikg2 provides
DIM, NEGATIVES, MARGIN = 100, 128, 9.0


# -- measurements, each run in a fresh process -------------------------------------------------------
def peak_gb() -> float:
    """Peak resident memory of this process since the start or the last :meth:`Peak.reset` (``ru_maxrss``, KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


class Peak:
    """The process's peak resident memory across phases whose own peaks are measured apart.

    Linux resets the peak (``VmHWM``, and with it ``ru_maxrss``) when ``5`` is written to
    ``/proc/self/clear_refs``; the peak before each reset is kept, so :meth:`overall` stays the
    peak of the whole process.
    """

    def __init__(self):
        self.earlier = 0.0

    def overall(self) -> float:
        return max(self.earlier, peak_gb())

    def reset(self) -> bool:
        """Start measuring a phase; False where the kernel does not allow it (the peak then stays the process's)."""
        self.earlier = self.overall()
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return True


PEAK = Peak()


def phase_peak_added(before_gb: float, reset: bool) -> float | None:
    """How far a phase's peak rose above the resident memory ``before_gb`` at its start."""
    return peak_gb() - before_gb if reset else None


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def tensor_gb(module: torch.nn.Module) -> float:
    """Memory of a module's own tensors (parameters and buffers, persistent or not)."""
    tensors = {t.data_ptr(): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values()) / 1e9


def graph(scale: float, eval_negatives: int = 0):
    from gnnns.data import wikikg2_like

    start = time.perf_counter()
    kg = wikikg2_like(scale, eval_negatives=eval_negatives)
    return kg, time.perf_counter() - start


def measure_load(args) -> dict:
    kg, generate = graph(args.scale, EVAL_CANDIDATES)
    out = {"generate_seconds": generate, "generate_peak_gb": peak_gb(), "graph_rss_gb": rss_gb()}
    gc.collect()
    before, reset = rss_gb(), PEAK.reset()
    start = time.perf_counter()
    index = kg.index()
    out["index_seconds"] = time.perf_counter() - start
    out["index_peak_added_gb"] = phase_peak_added(before, reset)
    start = time.perf_counter()
    kg.train_index()
    out["train_index_seconds"] = time.perf_counter() - start
    gen = torch.Generator().manual_seed(0)
    positives = kg.train[torch.randint(len(kg.train), (args.batch_size,), generator=gen)]
    entities = torch.randint(kg.num_entities, (args.batch_size, NEGATIVES), generator=gen)
    corrupt_head = torch.rand(args.batch_size, generator=gen) < 0.5
    queries = kg.test[:4096]
    out["contains_ms"] = _median_ms(lambda: index.contains_corrupted(positives, entities, corrupt_head))
    out["known_ms"] = _median_ms(lambda: index.known(queries[:, 0], queries[:, 1], False))
    out["index_keys"] = len(index)
    out["graph"] = {
        "repr": repr(kg),
        "entities": kg.num_entities,
        "relations": kg.num_relations,
        "train": len(kg.train),
        "valid": len(kg.valid),
        "test": len(kg.test),
    }
    return out


def measure_samplers(args) -> dict:
    from gnnns.sampling import build_sampler

    kg, _ = graph(args.scale)
    gen = torch.Generator().manual_seed(0)
    batches = [kg.train[torch.randint(len(kg.train), (args.batch_size,), generator=gen)] for _ in range(6)]
    rows = {}
    for name in SAMPLERS:
        gc.collect()
        before, reset = rss_gb(), PEAK.reset()
        start = time.perf_counter()
        sampler = build_sampler(name, kg)
        row = {"build_seconds": time.perf_counter() - start, "tensor_gb": tensor_gb(sampler)}
        row["build_peak_added_gb"] = phase_peak_added(before, reset)
        sampler(batches[0], NEGATIVES)
        times = []
        for positives in batches[1:]:
            start = time.perf_counter()
            sampler(positives, NEGATIVES)
            times.append(1000 * (time.perf_counter() - start))
        row["sample_ms"] = statistics.median(times)
        row["stats"] = sampler.epoch_stats()
        rows[name] = row
        del sampler
    return {"samplers": rows}


def measure_shallow(args) -> dict:
    from gnnns.config import RunConfig
    from gnnns.evaluation import evaluate
    from gnnns.loaders import TripleLoader
    from gnnns.losses import build_loss
    from gnnns.models import build_model
    from gnnns.sampling import build_sampler
    from gnnns.training.optim import build_optimizer
    from gnnns.training.trainer import Trainer

    kg, _ = graph(args.scale, EVAL_CANDIDATES if args.eval_queries else 0)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_model("rotate", kg, DIM, sparse=True, margin=MARGIN)
    sampler = build_sampler(args.sampler, kg)
    trainer = Trainer(
        model,
        kg,
        build_loss("nssa", margin=MARGIN, adversarial_temperature=1.0),
        build_optimizer(RunConfig(optimizer="adam", lr=1e-3), model),
        TripleLoader(kg.train, args.batch_size, seed=0),
        sampler=sampler,
        num_negatives=NEGATIVES,
        eval_every=-1,
        progress=False,
    )
    out = {"setup_seconds": time.perf_counter() - start}
    out.update(_time_steps(trainer, args.warmup, args.steps))
    out["triples_per_second"] = args.batch_size * args.steps / out["seconds"]
    out["triples_per_cpu_second"] = args.batch_size * args.steps / out["cpu_seconds"]
    out["sampler_stats"] = sampler.epoch_stats()
    if args.sampler != "uniform":
        out["interleaved"] = _interleaved(trainer, sampler, build_sampler("uniform", kg), args.steps)
    out["train_peak_gb"] = peak_gb()
    if args.eval_queries:
        start = time.perf_counter()
        metrics = evaluate(model, kg, "test", args.eval_batch_size, progress=False, max_triples=args.eval_queries // 2)
        out["eval"] = {
            "queries": metrics["count"],
            "seconds": time.perf_counter() - start,
            "queries_per_second": metrics["queries_per_second"],
            "protocol": metrics.get("protocol"),
            "mrr": metrics["mrr"],
        }
    return out


def measure_gnn(args) -> dict:
    from gnnns.config import RunConfig
    from gnnns.loaders import NeighborSubgraphs, TripleLoader
    from gnnns.losses import build_loss
    from gnnns.models import build_model
    from gnnns.sampling import build_sampler
    from gnnns.training.graph_scoring import SubgraphScoring
    from gnnns.training.optim import build_optimizer
    from gnnns.training.trainer import Trainer

    kg, _ = graph(args.scale)
    torch.manual_seed(0)
    gc.collect()
    before, reset = rss_gb(), PEAK.reset()
    start = time.perf_counter()
    subgraphs = NeighborSubgraphs(kg.train, kg.num_entities, kg.num_relations, args.fanout)
    out = {"neighbor_build_seconds": time.perf_counter() - start}
    out["neighbor_build_peak_added_gb"] = phase_peak_added(before, reset)
    out["neighbor_rss_added_gb"] = rss_gb() - before
    options = {"num_layers": 2, "num_bases": 4}
    model = build_model("distmult", kg, DIM, encoder="rgcn", encoder_options=options, sparse=args.sparse_input)
    timed = _TimedSubgraphs(subgraphs)
    trainer = Trainer(
        model,
        kg,
        build_loss("nssa", margin=MARGIN, adversarial_temperature=1.0),
        build_optimizer(RunConfig(optimizer="adam", lr=1e-3), model),
        TripleLoader(kg.train, args.gnn_batch_size, seed=0),
        sampler=build_sampler("uniform", kg),
        num_negatives=args.gnn_negatives,
        eval_every=-1,
        progress=False,
        scoring=SubgraphScoring(model, timed),
    )
    out.update(_time_steps(trainer, 2, args.gnn_steps, before_timing=timed.reset))
    out["steps_per_second"] = args.gnn_steps / out["seconds"]
    out["triples_per_second"] = args.gnn_steps * args.gnn_batch_size / out["seconds"]
    out["subgraph_seconds_per_step"] = timed.seconds / args.gnn_steps
    out["subgraph_nodes"] = timed.nodes / max(timed.calls, 1)
    out["subgraph_edges"] = timed.edges / max(timed.calls, 1)
    out["subgraph_seeds"] = timed.seeds / max(timed.calls, 1)
    return out


class _TimedSubgraphs:
    """A :class:`NeighborSubgraphs` that adds up its own time and the size of what it returns."""

    def __init__(self, subgraphs):
        self.subgraphs = subgraphs
        self.reset()

    def reset(self) -> None:
        self.seconds, self.calls, self.seeds, self.nodes, self.edges = 0.0, 0, 0, 0, 0

    def __call__(self, seeds, exclude=None):
        start = time.perf_counter()
        sub = self.subgraphs(seeds, exclude=exclude)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.seeds += seeds.numel()
        self.nodes += sub.num_nodes
        self.edges += sub.e_id.numel()
        return sub


def _time_steps(trainer, warmup: int, steps: int, before_timing=None) -> dict:
    """``warmup`` untimed steps (the first allocates the optimiser's moments), then ``steps`` timed ones."""
    batches = iter(trainer.loader)
    for _ in range(warmup):
        trainer.step(next(batches))
    if before_timing is not None:
        before_timing()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer.step(next(batches))
    return {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, "steps": steps}


def _interleaved(trainer, sampler, uniform, steps: int, block: int = 10) -> dict:
    """Steps with ``sampler`` and with ``uniform`` in alternating blocks of ``block``, timed apart:
    a load that comes and goes on a shared machine then reaches both alike, so their ratio holds."""
    batches = iter(trainer.loader)
    seconds = {"sampler": 0.0, "uniform": 0.0}
    done = 0
    while done < steps:
        size = min(block, steps - done)
        for name, chosen in (("sampler", sampler), ("uniform", uniform)):
            trainer.sampler = chosen
            start = time.perf_counter()
            for _ in range(size):
                trainer.step(next(batches))
            seconds[name] += time.perf_counter() - start
        done += size
    trainer.sampler = sampler
    return {"steps": steps, **{f"{name}_seconds": value for name, value in seconds.items()}}


def _median_ms(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def worker(args) -> None:
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    fn = {"load": measure_load, "samplers": measure_samplers, "shallow": measure_shallow, "gnn": measure_gnn}
    out = fn[args.worker](args)
    out.update(peak_gb=PEAK.overall(), loadavg_start=load, loadavg_end=os.getloadavg(), threads=torch.get_num_threads())
    print(json.dumps(out), flush=True)


# -- the driver -----------------------------------------------------------------------------------
def worker_args(args, kind: str, scale: float) -> list[str]:
    common = [
        str(SCRIPT),
        "--scale",
        repr(scale),
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
    ]
    if kind == "load":
        return [*common, "--worker", "load"]
    if kind == "samplers":
        return [*common, "--worker", "samplers"]
    if kind.startswith("shallow"):
        sampler = kind.split("-", 1)[1]
        evaluation = args.eval_queries if sampler == "uniform" else 0
        return [
            *common,
            "--worker",
            "shallow",
            "--sampler",
            sampler,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--eval-queries",
            str(evaluation),
            "--eval-batch-size",
            str(args.eval_batch_size),
        ]
    return [
        *common,
        "--worker",
        "gnn",
        "--gnn-steps",
        str(args.gnn_steps),
        "--gnn-batch-size",
        str(args.gnn_batch_size),
        "--gnn-negatives",
        str(args.gnn_negatives),
        "--fanout",
        ",".join(str(f) for f in args.fanout),
    ]


def run_all(args) -> dict:
    machine = machine_info()
    machine["torch_threads"] = args.threads
    env = {**child_env(), "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    rows = []
    for scale in args.scales:
        row = {"scale": scale}
        for kind in MEASUREMENTS:
            print(f"scale {scale:g}: {kind} ...", flush=True)
            try:
                result, wall = run_worker(worker_args(args, kind, scale), env=env)
                result["process_seconds"] = wall
            except RuntimeError as err:  # one failed measurement (e.g. out of memory) must not lose the rest
                result = {"error": str(err)[-2000:]}
            row[kind] = result
            print(f"  {summary_line(kind, result)}", flush=True)
        rows.append(row)
    machine["loadavg_at_end"] = os.getloadavg()
    payload = {"machine": machine, "args": _public_args(args), "rows": rows}
    payload["growth"] = growth(rows)
    return payload


def summary_line(kind: str, r: dict) -> str:
    if "error" in r:
        return f"FAILED: {r['error'].splitlines()[-1] if r['error'] else ''}"
    peak = f"peak {r['peak_gb']:.2f} GB, load {r['loadavg_start'][0]:.1f}"
    if kind == "load":
        return f"generate {r['generate_seconds']:.1f} s, index {r['index_seconds']:.1f} s, {peak}"
    if kind == "samplers":
        parts = [f"{n} {s['build_seconds']:.1f} s / {s['sample_ms']:.1f} ms" for n, s in r["samplers"].items()]
        return f"build / sample: {', '.join(parts)}; {peak}"
    if kind.startswith("shallow"):
        text = f"{r['triples_per_second']:,.0f} triples/s"
        if "interleaved" in r:
            text += f" ({interleaved_ratio(r):.2f} x uniform, interleaved)"
        if "eval" in r:
            text += f", evaluation {r['eval']['queries_per_second']:,.0f} queries/s"
        return f"{text}; {peak}"
    return (
        f"{r['steps_per_second']:.2f} steps/s (subgraphs {1000 * r['subgraph_seconds_per_step']:.0f} ms/step, "
        f"{r['subgraph_nodes']:,.0f} nodes, {r['subgraph_edges']:,.0f} edges); {peak}"
    )


# Figures whose growth is checked: (label, path into a row, kind). A cost should grow at most
# linearly with the graph; a per-step cost should stay flat; a throughput should not fall.
FIGURES = [
    ("graph generation s", ("load", "generate_seconds"), "cost"),
    ("kg.index() s", ("load", "index_seconds"), "cost"),
    ("kg.train_index() s", ("load", "train_index_seconds"), "cost"),
    ("load peak GB", ("load", "peak_gb"), "cost"),
    ("Bernoulli build s", ("samplers", "samplers", "bernoulli", "build_seconds"), "cost"),
    ("k-hop build s", ("samplers", "samplers", "khop", "build_seconds"), "cost"),
    ("typed build s", ("samplers", "samplers", "typed", "build_seconds"), "cost"),
    ("k-hop tensors GB", ("samplers", "samplers", "khop", "tensor_gb"), "cost"),
    ("NeighborSubgraphs build s", ("gnn", "neighbor_build_seconds"), "cost"),
    ("shallow (uniform) peak GB", ("shallow-uniform", "peak_gb"), "cost"),
    ("shallow (k-hop) peak GB", ("shallow-khop", "peak_gb"), "cost"),
    ("GNN peak GB", ("gnn", "peak_gb"), "cost"),
    ("k-hop sample ms / batch", ("samplers", "samplers", "khop", "sample_ms"), "per-step"),
    ("RotatE s / step, uniform", ("shallow-uniform", "seconds_per_step"), "per-step"),
    ("RotatE s / step, k-hop", ("shallow-khop", "seconds_per_step"), "per-step"),
    ("R-GCN s / step", ("gnn", "seconds_per_step"), "per-step"),
    ("evaluation ms / query", ("shallow-uniform", "eval", "ms_per_query"), "per-step"),
]


def interleaved_ratio(r: dict) -> float | None:
    """Throughput of the sampler over that of uniform negatives, from the interleaved blocks."""
    blocks = r.get("interleaved")
    return blocks["uniform_seconds"] / blocks["sampler_seconds"] if blocks else None


def value(row: dict, path: tuple[str, ...]) -> float | None:
    node = row
    for key in path:
        if not isinstance(node, dict):
            return None
        if key == "seconds_per_step" and "seconds" in node:
            return node["seconds"] / node["steps"]
        if key == "ms_per_query" and "queries_per_second" in node:
            return 1000 / node["queries_per_second"]
        node = node.get(key)
    return float(node) if isinstance(node, int | float) else None


def growth(rows: list[dict]) -> list[dict]:
    """Each figure relative to the smallest scale, divided by the size ratio (1 = linear)."""
    if len(rows) < 2:
        return []
    base = min(rows, key=lambda r: r["scale"])
    top = max(rows, key=lambda r: r["scale"])
    out = []
    for label, path, kind in FIGURES:
        first, last = value(base, path), value(top, path)
        entry = {"figure": label, "kind": kind, "normalised": {}, "exponent": None}
        for row in rows:
            x, size = value(row, path), row["scale"] / base["scale"]
            if first and x is not None and size > 0:
                entry["normalised"][f"{row['scale']:g}"] = (x / first) / size
        if first and last and top["scale"] > base["scale"]:
            # x ~ size ** exponent between the smallest and the largest scale: 1 is linear.
            entry["exponent"] = math.log(last / first) / math.log(top["scale"] / base["scale"])
        out.append(entry)
    return out


# -- tables and plots -----------------------------------------------------------------------------
def markdown(p: dict) -> str:
    a, m = p["args"], p["machine"]
    rows = p["rows"]
    lines = [
        "# The pipeline at ogbl-wikikg2's size",
        "",
        "`wikikg2_like(scale)`: ogbl-wikikg2's 2,500,604 entities, 535 relations and 16,109,182 training "
        "triples times `scale`, 500 head + 500 tail evaluation candidates per test triple. Every "
        "measurement runs in a fresh process; *peak* is that process's `ru_maxrss`.",
        "",
        f"Shallow: RotatE (dim {DIM} complex), sparse gradients + LazyAdam, NSSA (margin {MARGIN:g}, "
        f"temperature 1), batch {a['batch_size']}, {NEGATIVES} negatives, {a['steps']} timed steps after "
        f"{a['warmup']}; evaluation: {a['eval_queries']} OGB-protocol queries (true entity against its 500 "
        f"candidates). GNN: R-GCN (2 layers, 4 bases, dim {DIM}) + DistMult on neighbour-sampled subgraphs, "
        f"fan-out {a['fanout']}, batch {a['gnn_batch_size']} x {a['gnn_negatives']} uniform negatives, "
        f"{a['gnn_steps']} timed steps after 2.",
        "",
        "| scale | entities | train triples | generate s | index s | load peak GB | shallow peak GB "
        "| uniform triples/s | k-hop triples/s | k-hop / uniform | same, interleaved | R-GCN steps/s "
        "| eval queries/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        load, uni, khop, gnn = (r.get(k, {}) for k in ("load", "shallow-uniform", "shallow-khop", "gnn"))
        g = load.get("graph", {})
        uni_tps, khop_tps = uni.get("triples_per_second"), khop.get("triples_per_second")
        ratio = khop_tps / uni_tps if uni_tps and khop_tps else None
        together = interleaved_ratio(khop)
        lines.append(
            f"| {r['scale']:g} | {_n(g.get('entities'), 0)} | {_n(g.get('train'), 0)} | "
            f"{_n(load.get('generate_seconds'))} | {_n(load.get('index_seconds'))} | {_n(load.get('peak_gb'), 2)} | "
            f"{_n(uni.get('peak_gb'), 2)} | {_n(uni_tps, 0)} | {_n(khop_tps, 0)} | {_n(ratio, 2)} | "
            f"{_n(together, 2)} | "
            f"{_n(gnn.get('steps_per_second'), 3)} | {_n(uni.get('eval', {}).get('queries_per_second'), 0)} |"
        )
    lines += ["", "Targets: shallow peak ≤ 16 GB at scale 1; k-hop / uniform ≥ 0.33; nothing above linear growth.", ""]
    lines += _detail_table(rows, a["batch_size"])
    lines += _growth_table(p["growth"], rows)
    errors = [(r["scale"], k) for r in rows for k in MEASUREMENTS if "error" in r.get(k, {})]
    if errors:
        lines += ["", "Failed measurements: " + ", ".join(f"{k} at {s:g}" for s, k in errors), ""]
    loads = [r[k]["loadavg_start"][0] for r in rows for k in MEASUREMENTS if "loadavg_start" in r.get(k, {})]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({a['threads']} threads per measurement), "
        f"Python {m['python']}, gnnns {m['gnnns_commit']}, {m['date']}. The cores were shared with other jobs: "
        f"1-minute load average {min(loads, default=0):.1f} to {max(loads, default=0):.1f} at the start of the "
        "measurements (2.0 means both cores busy), so absolute rates are lower bounds. *Interleaved*: the k-hop "
        "process also times blocks of 10 uniform steps between blocks of 10 k-hop steps, so that the load reaches "
        "both alike; that ratio is the steadier one.",
        "",
        f"Command: `{p['args']['command']}`",
        "",
    ]
    return "\n".join(lines)


def _detail_table(rows: list[dict], batch_size: int) -> list[str]:
    lines = [
        f"Details: sampler builds (s) and one {batch_size} x {NEGATIVES} call (ms); neighbour sampling inside "
        "an R-GCN step. *Build peak* / *index peak*: how far the process's peak rose above its resident memory "
        "while that one thing was built (the peak is reset through `/proc/self/clear_refs` first).",
        "",
        "| scale | Bernoulli build | k-hop build / call | typed build / call | k-hop tensors / build peak GB "
        "| index peak GB | train_index s | contains ms | known 4096 ms | NeighborSubgraphs build s / peak GB "
        "| subgraph ms / step | subgraph nodes / edges | GNN peak GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r.get("samplers", {}).get("samplers", {})
        load, gnn = r.get("load", {}), r.get("gnn", {})
        bern, khop, typed = s.get("bernoulli", {}), s.get("khop", {}), s.get("typed", {})
        sub = gnn.get("subgraph_seconds_per_step")
        lines.append(
            f"| {r['scale']:g} | {_n(bern.get('build_seconds'))} | {_n(khop.get('build_seconds'))} / "
            f"{_n(khop.get('sample_ms'))} | {_n(typed.get('build_seconds'))} / {_n(typed.get('sample_ms'))} | "
            f"{_n(khop.get('tensor_gb'), 2)} / {_n(khop.get('build_peak_added_gb'), 2)} | "
            f"{_n(load.get('index_peak_added_gb'), 2)} | {_n(load.get('train_index_seconds'))} | "
            f"{_n(load.get('contains_ms'))} | {_n(load.get('known_ms'))} | {_n(gnn.get('neighbor_build_seconds'))} / "
            f"{_n(gnn.get('neighbor_build_peak_added_gb'), 2)} | "
            f"{_n(1000 * sub if sub is not None else None, 0)} | {_n(gnn.get('subgraph_nodes'), 0)} / "
            f"{_n(gnn.get('subgraph_edges'), 0)} | {_n(gnn.get('peak_gb'), 2)} |"
        )
    return [*lines, ""]


def _growth_table(entries: list[dict], rows: list[dict]) -> list[str]:
    if not entries:
        return []
    scales = [f"{r['scale']:g}" for r in rows]
    base = min(r["scale"] for r in rows)
    lines = [
        f"Growth: each figure divided by its value at scale {base:g} and by the size ratio. 1.00 is linear in "
        "the triples, below 1 sub-linear; a per-step cost that does not depend on the graph falls as "
        "1 / size ratio. *Exponent*: e in x ∝ size^e between the smallest and the largest "
        "scale (1 linear, 0 flat). Builds that sort (index, samplers, adjacency) are O(N log N) and "
        "slow down further once their arrays outgrow the caches; tenths of a second at the smallest scale are "
        "also the noisiest figures.",
        "",
        "| figure | kind | " + " | ".join(scales) + " | exponent |",
        "|---|---|" + "---:|" * (len(scales) + 1),
    ]
    for e in entries:
        cells = [_n(e["normalised"].get(s), 2) for s in scales]
        lines.append(f"| {e['figure']} | {e['kind']} | " + " | ".join(cells) + f" | {_n(e.get('exponent'), 2)} |")
    return [*lines, ""]


def _n(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def plot(p: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(p["rows"], key=lambda r: r["scale"])
    triples = [value(r, ("load", "graph", "train")) or r["scale"] * 16_109_182 for r in rows]
    panels = [
        (
            "one-off costs (s)",
            [
                ("graph generation", ("load", "generate_seconds")),
                ("kg.index()", ("load", "index_seconds")),
                ("k-hop build", ("samplers", "samplers", "khop", "build_seconds")),
                ("Bernoulli build", ("samplers", "samplers", "bernoulli", "build_seconds")),
                ("NeighborSubgraphs build", ("gnn", "neighbor_build_seconds")),
            ],
            True,
        ),
        (
            "peak resident memory (GB)",
            [
                ("load", ("load", "peak_gb")),
                ("shallow, uniform (+ eval)", ("shallow-uniform", "peak_gb")),
                ("shallow, k-hop", ("shallow-khop", "peak_gb")),
                ("R-GCN, neighbour-sampled", ("gnn", "peak_gb")),
            ],
            True,
        ),
        (
            "per-step costs (s)",
            [
                ("RotatE step, uniform", ("shallow-uniform", "seconds_per_step")),
                ("RotatE step, k-hop", ("shallow-khop", "seconds_per_step")),
                ("R-GCN step", ("gnn", "seconds_per_step")),
                ("subgraph sampling / step", ("gnn", "subgraph_seconds_per_step")),
            ],
            False,
        ),
        (
            "throughput",
            [
                ("RotatE triples/s, uniform", ("shallow-uniform", "triples_per_second")),
                ("RotatE triples/s, k-hop", ("shallow-khop", "triples_per_second")),
                ("evaluation queries/s", ("shallow-uniform", "eval", "queries_per_second")),
                ("R-GCN triples/s", ("gnn", "triples_per_second")),
            ],
            False,
        ),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    for ax, (title, series, linear) in zip(axes.flat, panels, strict=True):
        for label, path_ in series:
            points = [(n, value(r, path_)) for n, r in zip(triples, rows, strict=True)]
            points = [(n, v) for n, v in points if v]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=label)
                if linear and label == series[0][0]:
                    n0, v0 = points[0]
                    ax.plot(triples, [v0 * n / n0 for n in triples], "k:", linewidth=1, label="linear")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("training triples")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("gnnns on wikikg2_like(scale): time, memory and throughput against graph size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _public_args(args) -> dict:
    out = {k: v for k, v in vars(args).items() if k not in ("worker", "scale", "sampler", "render_only")}
    out["command"] = this_command()
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="0.125,0.25,0.5,1", help="fractions of ogbl-wikikg2's size")
    parser.add_argument("--steps", type=int, default=200, help="timed RotatE steps per sampler")
    parser.add_argument("--warmup", type=int, default=5, help="untimed RotatE steps before timing")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each measurement")
    parser.add_argument("--batch-size", type=int, default=512, help="positives per RotatE step and per sampler call")
    parser.add_argument("--eval-queries", type=int, default=4000, help="OGB-protocol queries (triple, side) ranked")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--gnn-steps", type=int, default=20, help="timed R-GCN steps")
    parser.add_argument("--gnn-batch-size", type=int, default=512)
    parser.add_argument("--gnn-negatives", type=int, default=32)
    parser.add_argument("--fanout", default="10,5", help="neighbours per hop of the sampled subgraphs")
    parser.add_argument(
        "--sparse-input", action="store_true", help="R-GCN: sparse gradients for the input table (LazyAdam rows)"
    )
    parser.add_argument("--stem", default="scale_wikikg2")
    parser.add_argument("--render-only", action="store_true", help="rewrite the table and plot from the JSON")
    parser.add_argument("--worker", choices=["load", "samplers", "shallow", "gnn"], help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--sampler", default="uniform", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scales = [float(s) for s in str(args.scales).split(",") if s.strip()]
    args.fanout = [int(f) for f in str(args.fanout).split(",") if f.strip()]
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.stem}.json").read_text())
        payload["growth"] = growth(payload["rows"])
    else:
        payload = run_all(args)
    save(args.stem, payload, markdown(payload))
    plot(payload, RESULTS / f"{args.stem}.png")


if __name__ == "__main__":
    main()
