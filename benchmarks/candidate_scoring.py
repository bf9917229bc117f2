"""A negative-sampling training step with the negatives scored in chunks or all at once.

``KGCModel.score_batch`` scores a batch's ``[B, k]`` negatives through
:func:`gnnns.models.chunked.chunked_match`: cache-sized row chunks, gathered again in the
backward pass instead of kept. The one-shot form gathers the whole ``[B, k, d]`` candidate
tensor and lets autograd keep it (gnnns before the change, and what PyKEEN and PyG's kge module
do). Both run here in one process, alternating, on the same model and inputs: a whole step
(positive and negative scores, softmax cross-entropy over the positive and its negatives,
backward, Adam) for ComplEx, RotatE (100 complex coordinates) and TransE (L2, 200 coordinates),
with B = 1024 positives on FB15k-237's 14,541 entities and k = 32, 64, 256 negatives. Reported:
median ms per step, the ratio one-shot / chunked, and the largest difference of the entity
gradients (they must agree).

    python benchmarks/candidate_scoring.py
    python benchmarks/candidate_scoring.py --negatives 64 --models complex

The chunks' size and OpenMP's wait policy interact: each chunk is a few small kernels, and with
``OMP_WAIT_POLICY=PASSIVE`` (what the peer benchmarks set) every kernel wakes sleeping threads.
``--chunk-elements N`` sets the chunk budget (``gnnns.models.chunked.CHUNK_ELEMENTS["cpu"]``, by
default 2^18, or 2^20 under ``PASSIVE``), and the policy of the environment is recorded::

    python benchmarks/candidate_scoring.py --negatives 64 256 --output candidate_scoring_k64_default
    python benchmarks/candidate_scoring.py --negatives 64 256 --chunk-elements 1048576 \
        --output candidate_scoring_k64_default_2e20
    OMP_WAIT_POLICY=PASSIVE python benchmarks/candidate_scoring.py --negatives 64 256 --chunk-elements 262144 \
        --output candidate_scoring_k64_passive_2e18
    OMP_WAIT_POLICY=PASSIVE python benchmarks/candidate_scoring.py --negatives 64 256 \
        --output candidate_scoring_k64_passive

Writes ``benchmarks/results/candidate_scoring.{json,md}`` (``--output`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from _common import RESULTS, alternating_footer, machine_info, save, this_command

from gnnns.data import KnowledgeGraph
from gnnns.losses import SoftmaxCrossEntropyLoss
from gnnns.models import build_model, chunked, kgc

DIMS = {"complex": 100, "rotate": 100, "transe": 200}  # 200 real coordinates each


def one_shot(model):
    """``score_batch`` as it was: every candidate row gathered at once."""

    def score(positives, entities, corrupt_head):
        ent, rel = model.embeddings()
        kept = torch.where(corrupt_head, positives[:, 2], positives[:, 0])
        true = torch.where(corrupt_head, positives[:, 0], positives[:, 2])
        relation, side = model._relation_and_side(positives[:, 1], corrupt_head)
        return kgc._candidate_scores(model.decoder, ent, rel, kept, relation, side, true, entities)

    return score


def measure(name: str, k: int, args) -> dict:
    g = torch.Generator().manual_seed(0)
    e, r, b = args.entities, args.relations, args.batch_size
    triples = torch.stack([torch.randint(e, (b,), generator=g), torch.randint(r, (b,), generator=g),
                           torch.randint(e, (b,), generator=g)], 1)  # fmt: skip
    kg = KnowledgeGraph(triples, num_entities=e, num_relations=r)
    torch.manual_seed(0)
    model = build_model(name, kg, DIMS[name], p=2) if name == "transe" else build_model(name, kg, DIMS[name])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = SoftmaxCrossEntropyLoss()
    entities = torch.randint(e, (b, k), generator=g)
    sides = torch.rand(b, generator=g) < 0.5
    ways = {"chunked": model.score_batch, "one-shot": one_shot(model)}

    def step(score) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        pos, neg = score(triples, entities, sides)
        loss = loss_fn(pos, neg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad = model.encoder.entity.weight.grad.clone()
        optimizer.step()
        return time.perf_counter() - start, grad

    times = {way: [] for way in ways}
    for repeat in range(args.repeats + 1):
        for way, score in ways.items() if repeat % 2 == 0 else reversed(list(ways.items())):
            seconds, _ = step(score)
            if repeat > 0:  # the first round warms up
                times[way].append(seconds)
    # The gradients of one and the same state, each way.
    state = {key: value.clone() for key, value in model.state_dict().items()}
    grads = {}
    for way, score in ways.items():
        model.load_state_dict(state)
        grads[way] = step(score)[1]
    ms = {way: 1000 * statistics.median(values) for way, values in times.items()}
    row = {
        "model": name,
        "negatives": k,
        "chunked_ms": ms["chunked"],
        "one_shot_ms": ms["one-shot"],
        "ratio": ms["one-shot"] / ms["chunked"],
        "max_gradient_difference": float((grads["chunked"] - grads["one-shot"]).abs().max()),
    }
    print(
        f"{name} k={k}: chunked {ms['chunked']:.1f} ms, one-shot {ms['one-shot']:.1f} ms, {row['ratio']:.2f}x, "
        f"gradient difference {row['max_gradient_difference']:.1e}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DIMS), choices=list(DIMS))
    parser.add_argument("--negatives", nargs="+", type=int, default=[32, 64, 256])
    parser.add_argument("--entities", type=int, default=14541)
    parser.add_argument("--relations", type=int, default=237)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--chunk-elements", type=int, default=None, help="chunk budget in elements (default: gnnns's)")
    parser.add_argument("--output", default="candidate_scoring", help="results stem under benchmarks/results/")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.output}.json").read_text())
        return save(args.output, payload, markdown(payload))
    if args.chunk_elements is not None:
        chunked.CHUNK_ELEMENTS["cpu"] = args.chunk_elements
    machine = machine_info()
    machine["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "unset")  # this process's own
    rows = [measure(name, k, args) for name in args.models for k in args.negatives]
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {"machine": machine, "entities": args.entities, "batch_size": args.batch_size, "dims": DIMS}
    payload.update(repeats=args.repeats, rows=rows, command=command, chunk_elements=chunked.CHUNK_ELEMENTS["cpu"])
    save(args.output, payload, markdown(payload))


def markdown(p: dict) -> str:
    lines = [
        "# Negatives scored in chunks against all at once",
        "",
        f"A whole negative-sampling step (scores, softmax cross-entropy, backward, Adam) on {p['entities']:,} "
        f"entities, {p['batch_size']:,} positives a batch, 200 real coordinates a row; median of {p['repeats']} "
        "alternating repeats after a warm-up, one process. One-shot is gnnns's step before chunking, which "
        "gathers the whole `[B, k, d]` candidate tensor (as PyKEEN and PyG's kge module do).",
        "",
        f"Chunk budget: {p.get('chunk_elements', 1 << 18):,} elements; `OMP_WAIT_POLICY`: "
        f"{p['machine'].get('omp_wait_policy', 'not recorded')}.",
        "",
        "| model | negatives k | chunked ms | one-shot ms | one-shot / chunked | largest gradient difference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['model']} | {r['negatives']} | {r['chunked_ms']:.1f} | {r['one_shot_ms']:.1f} | "
            f"**{r['ratio']:.2f}×** | {r['max_gradient_difference']:.1e} |"
        )
    lines += alternating_footer(p)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
