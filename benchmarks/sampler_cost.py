"""What each sampler costs at ogbl-wikikg2's size, as a ratio to uniform sampling in the same run.

On :func:`gnnns.data.wikikg2_like` (2.5M entities, 535 relations, 16.1M training triples at
``--scale 1``), for a batch of 1024 positives x 128 negatives:

* **sampling**: milliseconds per batch and negatives per second of every sampler at its
  defaults, and the ratio of its time to uniform's (target: k-hop and typed within 3x);
* **training step**: the time of a whole step with that sampler: sampling, then RotatE (dim
  100) scores of the positives and negatives, the NSSA loss, backward and a SparseAdam update of
  the touched embedding rows, as a ratio to the same step with uniform negatives (target:
  score-based samplers add at most 50%);
* construction time and the memory of each sampler's own tensors (adjacency, caches, generator).

Score-based samplers see the model only through ``scorer``. Medians over ``--batches`` timed
round-robin rounds (each sampler once per round) after two warm-up rounds, single process,
``torch.get_num_threads()`` threads.

    python benchmarks/sampler_cost.py                 # full size: ~10 GB, several minutes
    python benchmarks/sampler_cost.py --scale 0.125   # an eighth

Writes ``benchmarks/results/sampler_cost.{json,md}`` (``--stem`` to change the name).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import torch
import torch.nn.functional as F
from _common import machine_info, save
from torch import Tensor, nn

from gnnns.data import wikikg2_like
from gnnns.losses import NSSALoss
from gnnns.models import DECODERS
from gnnns.sampling import build_sampler
from gnnns.sampling.negatives import kept_and_true

SAMPLERS = {
    "uniform": {},
    "bernoulli": {},
    "khop": {"k": 2},
    "typed": {},
    "inbatch": {},
    "dynamic": {},
    "nscaching": {},
    "adversarial": {},
    "uniform, filtered": {"filtered": True},
}


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


class SparseRotatE(nn.Module):
    """RotatE over sparse-gradient embedding tables: a step touches only the batch's rows."""

    def __init__(self, num_entities: int, num_relations: int, dim: int):
        super().__init__()
        self.decoder = DECODERS["rotate"](dim, margin=9.0)
        self.entity = nn.Embedding(num_entities, self.decoder.entity_dim, sparse=True)
        self.relation = nn.Embedding(num_relations, self.decoder.relation_dim, sparse=True)
        self.decoder.reset_embeddings(self.entity.weight.data, self.relation.weight.data)

    def scores(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> tuple[Tensor, Tensor]:
        kept, true = kept_and_true(positives, corrupt_head)
        query = self.decoder.query(self.entity(kept), self.relation(positives[:, 1]), corrupt_head)
        pos = self.decoder.match(query, self.entity(true))
        return pos, self.decoder.match(query.unsqueeze(1), F.embedding(entities, self.entity.weight, sparse=True))

    def scorer(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
        return self.scores(positives, entities, corrupt_head)[1]


def tensor_gb(module: nn.Module) -> float:
    """Memory of a module's own tensors (parameters and buffers, persistent or not)."""
    tensors = {t.data_ptr(): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values()) / 1e9


def warm_up(model: SparseRotatE, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, positives: Tensor, k: int):
    """One step creates SparseAdam's dense moment tables; touching every page of them now keeps
    first-touch page faults out of the first sampler's timings."""
    negatives = torch.randint(model.entity.num_embeddings, (positives.size(0), k))
    pos, neg = model.scores(positives, negatives, torch.zeros(positives.size(0), dtype=torch.bool))
    loss_fn(pos, neg).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.dim() > 0:
                value.zero_()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-negatives", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    parser.add_argument("--stem", default="sampler_cost")
    args = parser.parse_args()
    machine = machine_info()
    torch.manual_seed(0)

    start = time.perf_counter()
    kg = wikikg2_like(args.scale)
    graph = {"seconds": time.perf_counter() - start, "rss_gb": rss_gb(), "repr": repr(kg)}
    print(f"{kg}: generated in {graph['seconds']:.1f} s, {graph['rss_gb']:.1f} GB resident", flush=True)
    model = SparseRotatE(kg.num_entities, kg.num_relations, 100)
    optimizer = torch.optim.SparseAdam(model.parameters(), lr=1e-3)
    loss_fn = NSSALoss(margin=9.0, adversarial_temperature=1.0)
    batches = [kg.train[torch.randint(len(kg.train), (args.batch_size,))] for _ in range(4)]
    k = args.num_negatives
    warm_up(model, optimizer, loss_fn, batches[0], k)

    samplers, rows = {}, []
    for name in args.samplers:
        gc.collect()
        start = time.perf_counter()
        samplers[name] = build_sampler(name.split(",")[0], kg, **SAMPLERS[name])
        rows.append(
            {"sampler": name, "build_seconds": time.perf_counter() - start, "memory_gb": tensor_gb(samplers[name])}
        )
        print(f"{name:>20}: built in {rows[-1]['build_seconds']:.1f} s, {rows[-1]['memory_gb']:.2f} GB", flush=True)

    def sample(sampler, positives):
        return sampler(positives, k, scorer=model.scorer)

    def step(sampler, positives):
        negatives = sampler(positives, k, scorer=model.scorer)
        pos, neg = model.scores(positives, negatives.entities, negatives.corrupt_head)
        loss = loss_fn(pos, neg, negatives.weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # Round robin: every timed round runs each sampler once, so drift in the machine's speed
    # (page cache, other jobs, allocator state) reaches all samplers alike.
    times = {name: {"sample": [], "step": []} for name in samplers}
    for round_ in range(args.batches + 2):
        positives = batches[round_ % len(batches)]
        for name, sampler in samplers.items():
            for kind, fn in (("sample", sample), ("step", step)):
                start = time.perf_counter()
                fn(sampler, positives)
                if round_ >= 2:
                    times[name][kind].append(1000 * (time.perf_counter() - start))
    for row in rows:
        name = row["sampler"]
        row["sample_ms"] = statistics.median(times[name]["sample"])
        row["step_ms"] = statistics.median(times[name]["step"])
        row["negatives_per_second"] = args.batch_size * k / (row["sample_ms"] / 1000)
        row["stats"] = samplers[name].epoch_stats()
        print(f"{name:>20}: sample {row['sample_ms']:8.1f} ms  step {row['step_ms']:8.1f} ms", flush=True)
    base = next((r for r in rows if r["sampler"] == "uniform"), None)
    for r in rows:
        r["sample_ratio"] = r["sample_ms"] / base["sample_ms"] if base else None
        r["step_ratio"] = r["step_ms"] / base["step_ms"] if base else None
    machine["loadavg_at_end"] = os.getloadavg()
    machine["peak_rss_gb"] = _peak_gb()
    payload = {"machine": machine, "graph": graph, "args": vars(args), "rows": rows}
    save(args.stem, payload, markdown(payload))


def _peak_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def markdown(p: dict) -> str:
    a, m = p["args"], p["machine"]
    lines = [
        "# Sampler cost at ogbl-wikikg2's size",
        "",
        f"{p['graph']['repr']}, generated by `wikikg2_like({a['scale']:g})` in {p['graph']['seconds']:.0f} s. "
        f"Batch {a['batch_size']} positives x {a['num_negatives']} negatives; medians of {a['batches']} "
        "round-robin rounds (every sampler once per round). "
        "Step = sampling + RotatE (dim 100) scores + NSSA loss + backward + SparseAdam on the touched rows.",
        "",
        "| sampler | build s | tensors GB | ms / batch | negatives / s | × uniform | step ms | step × uniform |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['sampler']} | {r['build_seconds']:.1f} | {r['memory_gb']:.2f} | {r['sample_ms']:.1f} | "
            f"{r['negatives_per_second']:,.0f} | {r['sample_ratio']:.2f} | {r['step_ms']:.0f} | {r['step_ratio']:.2f} |"
        )
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), gnnns "
        f"{m['gnnns_commit']}, {m['date']}; load {m['loadavg_at_start']} at start; peak resident memory "
        f"{m['peak_rss_gb']:.1f} GB.",
        "",
        f"Command: `python benchmarks/sampler_cost.py --scale {a['scale']:g}`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
