"""The pieces of a 1-N step that gnnns computes itself, against PyTorch's own, in one process.

On a ``[B, E]`` score matrix of WN18RR's size (1,024 queries x 40,943 entities, float32):

* softmax cross-entropy, forward and backward: ``SoftmaxCrossEntropyLoss.forward_all`` against
  ``F.cross_entropy`` (with label smoothing 0 and 0.1; index targets as in 1vsAll);
* binary cross-entropy, forward and backward: ``BCELoss.forward_all`` against
  ``F.binary_cross_entropy_with_logits`` on the materialised smoothed one-hot target;
* embedding dropout, forward and backward, of a ``[40,943, 128]`` table (1vsAll's table mask)
  and of ``[1,024, 16,384]`` looked-up RESCAL relation rows (``rescal-sce-ls-fb15k237``'s batch,
  d = 128, p = 0.1594): the 16-bit mask ``embedding_dropout`` draws against ``F.dropout``.

Each is timed ``--repeats`` times after a warm-up, alternating the two sides, on fresh copies of
the same inputs; reported are the medians, the ratio PyTorch / gnnns, and the largest difference
of the gradients (they must agree).

    python benchmarks/one_to_n_loss.py

Writes ``benchmarks/results/one_to_n_loss.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from _common import RESULTS, alternating_footer, machine_info, save, this_command

from gnnns.losses import BCELoss, SoftmaxCrossEntropyLoss
from gnnns.models.encoders.embedding import embedding_dropout as _dropout


def timed(fn, scores: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = scores.clone().requires_grad_()
    start = time.perf_counter()
    fn(x).backward()
    return time.perf_counter() - start, x.grad


def seeded(dropout, p: float):
    """``x -> dropout(x, p).sum()`` from the same seed each time."""

    def run(x):
        torch.manual_seed(1)
        return dropout(x, p).sum()

    return run


def compare(name: str, ours, theirs, scores: torch.Tensor, repeats: int) -> dict:
    timed(ours, scores), timed(theirs, scores)  # warm-up
    mine, peer = [], []
    for _ in range(repeats):
        seconds, grad_ours = timed(ours, scores)
        mine.append(seconds)
        seconds, grad_theirs = timed(theirs, scores)
        peer.append(seconds)
    gnnns_ms, torch_ms = 1000 * statistics.median(mine), 1000 * statistics.median(peer)
    row = {
        "what": name,
        "gnnns_ms": gnnns_ms,
        "torch_ms": torch_ms,
        "ratio": torch_ms / gnnns_ms,
        "max_gradient_difference": float((grad_ours - grad_theirs).abs().max()),
    }
    print(f"{name}: gnnns {gnnns_ms:.1f} ms, torch {torch_ms:.1f} ms, {row['ratio']:.2f}x", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1024)
    parser.add_argument("--entities", type=int, default=40943)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / "one_to_n_loss.json").read_text())
        return save("one_to_n_loss", payload, markdown(payload))
    machine = machine_info()
    g = torch.Generator().manual_seed(0)
    b, e = args.queries, args.entities
    scores = torch.randn(b, e, generator=g) * 3
    true = torch.randint(e, (b,), generator=g)
    rows = []
    for eps in (0.0, 0.1):
        loss = SoftmaxCrossEntropyLoss(eps)
        rows.append(
            compare(
                f"softmax cross-entropy, label smoothing {eps:g}",
                lambda x, loss=loss: loss.forward_all(x, true),
                lambda x, eps=eps: F.cross_entropy(x, true, label_smoothing=eps),
                scores,
                args.repeats,
            )
        )
    bce = BCELoss(0.1)
    rows.append(
        compare(
            "binary cross-entropy, label smoothing 0.1",
            lambda x: bce.forward_all(x, true),
            lambda x: F.binary_cross_entropy_with_logits(x, F.one_hot(true, e).to(x.dtype) * 0.9 + 0.1 / e),
            scores,
            args.repeats,
        )
    )
    dropouts = [
        (0.36, torch.randn(e, args.dim, generator=g), f"[{e:,}, {args.dim}] table"),
        (0.1594, torch.randn(b, 128 * 128, generator=g), f"[{b:,}, 16,384] RESCAL relation rows"),
    ]
    for p, inputs, what in dropouts:
        row = compare(
            f"embedding dropout p={p:g}, {what}", seeded(_dropout, p), seeded(F.dropout, p), inputs, args.repeats
        )
        row["max_gradient_difference"] = None  # different masks by design; both are inverted dropout with rate p
        rows.append(row)
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {"machine": machine, "queries": b, "entities": e, "dim": args.dim, "repeats": args.repeats}
    payload.update(rows=rows, command=command)
    save("one_to_n_loss", payload, markdown(payload))


def markdown(p: dict) -> str:
    lines = [
        "# 1-N step pieces: gnnns against PyTorch's own",
        "",
        f"A `[{p['queries']:,}, {p['entities']:,}]` float32 score matrix (WN18RR's 1vsAll batch), forward and "
        f"backward, median of {p['repeats']} alternating repeats after a warm-up, one process.",
        "",
        "| what | gnnns ms | PyTorch ms | PyTorch / gnnns | largest gradient difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        diff = "different masks" if r["max_gradient_difference"] is None else f"{r['max_gradient_difference']:.1e}"
        lines.append(f"| {r['what']} | {r['gnnns_ms']:.1f} | {r['torch_ms']:.1f} | **{r['ratio']:.2f}×** | {diff} |")
    lines += alternating_footer(p)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
