"""How often a trained model ranks the query's own entity above the answer.

Filtered ranking removes the other known answers of a query :math:`(h, r, ?)`, but not :math:`h` itself
unless :math:`(h, r, h)` is a known triple. A translational model whose query :math:`h + r` stays nearer
to :math:`h` (distance :math:`\\lVert r \\rVert`) than to the answer :math:`t` ranks :math:`h` first and
the answer at 2 or worse, so Hits@1 collapses while Hits@3 and Hits@10 do not. For every query of a split
(tail queries :math:`(h, r, ?)` and head queries :math:`(?, r, t)`, asked as the model asks them), this
counts:

* ``self_above_answer``: the share of queries whose own entity scores strictly above the answer;
* ``self_first``: the share whose own entity is the top-scored candidate after filtering;
* ``self_known``: the share where the own entity is itself a known answer (filtered out).

    GNNNS_DATA=/work/shared/datasets python benchmarks/query_self_rank.py runs/bench/libkge-transe-wn18rr

Reads the run directory's ``config.json`` and ``best.pt`` (or ``checkpoint.pt``); writes
``benchmarks/results/query_self_rank_<run>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from _common import data_root, machine_info, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--chunk", type=int, default=256, help="queries scored at a time")
    args = parser.parse_args()

    from gnnns.config import RunConfig
    from gnnns.data import load_dataset
    from gnnns.training import checkpoint
    from gnnns.training.run import build_run_model

    config_path = args.run_dir / "config.json"
    config = RunConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")), source=str(config_path))
    config.device, config.compile = "cpu", False
    path = args.run_dir / "best.pt"
    if not path.exists():
        path = args.run_dir / "checkpoint.pt"
    state = checkpoint.load(path)
    kg = load_dataset(config.dataset, root=data_root(), download=False)
    model = build_run_model(config, kg)
    model.load_state_dict(state["model"])
    model.eval()

    triples = getattr(kg, args.split)
    answers = defaultdict(set)  # (kept entity, relation, side) -> known answers
    for h, r, t in torch.cat([kg.train, kg.valid, kg.test]).tolist():
        answers[h, r, False].add(t)
        answers[t, r, True].add(h)
    counts = {"queries": 0, "self_above_answer": 0, "self_first": 0, "self_known": 0}
    with torch.no_grad():
        for predict_head in (False, True):
            kept = triples[:, 2] if predict_head else triples[:, 0]
            answer = triples[:, 0] if predict_head else triples[:, 2]
            for rows in torch.arange(len(triples)).split(args.chunk):
                scores = model.score_all(kept[rows], triples[rows, 1], predict_head)
                batch = zip(scores, kept[rows].tolist(), triples[rows, 1].tolist(), answer[rows].tolist(), strict=True)
                for s, own, r, true in batch:
                    known = answers[own, r, predict_head]
                    counts["queries"] += 1
                    if own in known:  # filtered out like any other known answer
                        counts["self_known"] += 1
                        continue
                    counts["self_above_answer"] += bool(s[own] > s[true])
                    others = [e for e in known if e != true]
                    if others:
                        s = s.clone()
                        s[others] = float("-inf")
                    counts["self_first"] += s.argmax().item() == own
    n = counts["queries"]
    shares = {k: counts[k] / n for k in ("self_above_answer", "self_first", "self_known")}
    m = machine_info()
    payload = {
        "run_dir": str(args.run_dir),
        "checkpoint": path.name,
        "epoch": state.get("epoch"),
        "split": args.split,
        "config": config.dataset + " " + config.model,
        "counts": counts,
        "shares": shares,
        "machine": m,
    }
    stem = f"query_self_rank_{args.run_dir.name}"
    md = [
        f"# The query's own entity against the answer: {args.run_dir.name}, {args.split} split",
        "",
        f"Checkpoint `{path.name}` (epoch {state.get('epoch')}), {n:,} queries (tail and head); "
        f"gnnns {m['gnnns_commit']}, torch {m['torch']}, {m['date']}.",
        "",
        "| own entity above the answer | own entity first after filtering | own entity a known answer |",
        "|---:|---:|---:|",
        f"| {shares['self_above_answer']:.1%} | {shares['self_first']:.1%} | {shares['self_known']:.1%} |",
        "",
        f"`python benchmarks/query_self_rank.py {args.run_dir} --split {args.split}`",
    ]
    save(stem, payload, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
