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

and the same shares for each relation and side, with the median (the lower middle value of an even
count) score of the own entity and of the answer (for TransE: :math:`-\\lVert r \\rVert` and
:math:`-\\lVert h + r - t \\rVert`) and the share of the relation's training triples whose reverse is a
training triple too (1 for a symmetric relation).

    GNNNS_DATA=/work/shared/datasets python benchmarks/query_self_rank.py runs/bench/libkge-transe-wn18rr

Reads the run directory's ``config.json`` and ``best.pt`` (or ``checkpoint.pt``); writes
``benchmarks/results/query_self_rank_<run>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import torch
from _common import data_root, machine_info, save, this_command


def self_rank(model, kg, split: str = "valid", chunk: int = 256) -> tuple[dict, list[dict]]:
    """``(counts, relations)``: the counts of the module docstring over the split's tail and head queries,
    and one row per relation and side (shares, median scores, training triples, reverse share)."""
    triples = getattr(kg, split)
    index = kg.index()  # every known triple, as filtered ranking removes them
    parts = defaultdict(list)  # per query whose own entity is not a known answer
    counts = {"queries": len(triples) * 2, "self_above_answer": 0, "self_first": 0, "self_known": 0}
    with torch.no_grad():
        for predict_head in (False, True):
            for batch in triples.split(chunk):
                own = batch[:, 2] if predict_head else batch[:, 0]
                true = batch[:, 0] if predict_head else batch[:, 2]
                scores = model.score_all(own, batch[:, 1], predict_head)
                at = torch.arange(len(batch))
                known = torch.zeros_like(scores, dtype=torch.bool)
                known[index.known(own, batch[:, 1], predict_head)] = True
                own_known = known[at, own]  # filtered out like any other known answer: left out
                known[at, true] = False  # the answer itself stays
                first = scores.masked_fill(known, -math.inf).argmax(1) == own
                counted = ~own_known
                counts["self_known"] += int(own_known.sum())
                parts["relation"].append(batch[counted, 1])
                parts["head"].append(torch.full((int(counted.sum()),), predict_head))
                parts["above"].append((scores[at, own] > scores[at, true])[counted])
                parts["first"].append(first[counted])
                parts["own"].append(scores[at, own][counted])
                parts["answer"].append(scores[at, true][counted])
    q = {key: torch.cat(value) for key, value in parts.items()}
    counts["self_above_answer"], counts["self_first"] = int(q["above"].sum()), int(q["first"].sum())
    train_index = kg.train_index()
    relation_names = getattr(kg, "relation_names", None) or []
    relations = []
    pairs = torch.stack([q["relation"], q["head"].long()], 1).unique(dim=0).tolist()
    for r, side in sorted((r, "head" if h else "tail") for r, h in pairs):
        mask = (q["relation"] == r) & (q["head"] == (side == "head"))
        own_train = kg.train[kg.train[:, 1] == r].unique(dim=0)
        reverse = own_train[:, [2, 1, 0]]
        relations.append(
            {
                "relation": r,
                "name": relation_names[r] if r < len(relation_names) else str(r),
                "side": side,
                "queries": int(mask.sum()),
                "self_above_answer": q["above"][mask].double().mean().item(),
                "self_first": q["first"][mask].double().mean().item(),
                "median_own_score": q["own"][mask].median().item(),
                "median_answer_score": q["answer"][mask].median().item(),
                "train_triples": len(own_train),
                "reverse_in_train": train_index.contains(reverse).double().mean().item() if len(own_train) else 0.0,
            }
        )
    return counts, relations


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

    counts, relations = self_rank(model, kg, args.split, args.chunk)
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
        "relations": relations,
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
        "Per relation and side (queries whose own entity is a known answer left out):",
        "",
        "| relation | side | queries | own above answer | own first | median own score | median answer score | "
        "train triples | reverse also in train |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {x['name']} | {x['side']} | {x['queries']:,} | {x['self_above_answer']:.1%} | {x['self_first']:.1%} | "
            f"{x['median_own_score']:.3f} | {x['median_answer_score']:.3f} | {x['train_triples']:,} | "
            f"{x['reverse_in_train']:.0%} |"
            for x in relations
        ],
        "",
        f"Command: `{this_command()}`",
    ]
    save(stem, payload, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
