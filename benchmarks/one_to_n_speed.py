"""1-N training throughput of gnnns vs PyKEEN: KvsAll with softmax cross-entropy, same run.

Both sides score every query against all entities:

* gnnns: ``gnnns train --training kvsall --loss sce`` (reciprocal relations: each training triple
  gives the queries ``(h, r, ?)`` and ``(t, r^-1, ?)``, one per distinct pair, with a multi-hot
  target over all entities);
* PyKEEN: ``LCWATrainingLoop`` on a ``TriplesFactory`` with ``create_inverse_triples=True`` and
  ``CrossEntropyLoss`` (the same distinct ``(h, r)`` pairs of the triples and their inverses, the
  same multi-hot target normalised per row).

Settings: ComplEx with ``--dim`` complex coordinates (100), batch 256 queries, Adam lr 1e-3, ``--loss``
``sce`` (above) or ``bce`` (``BCEWithLogitsLoss``: every entry a binary label), no
regulariser (PyKEEN's ComplEx default L2 term is switched off), no label smoothing, ``--epochs``
epochs (1). Each side runs in a fresh process, one after the other (``--order``). Reported: queries
per second of training loop, and triples per second (the training triples the epochs cover).

``--max-triples N`` trains on a random subset of N training triples (the same subset on both
sides, same entity and relation id space, so every query is still scored against all entities).

    GNNNS_DATA=/work/shared/datasets python benchmarks/one_to_n_speed.py --dataset fb15k-237
    GNNNS_DATA=/work/shared/datasets python benchmarks/one_to_n_speed.py --max-triples 20000

Writes ``benchmarks/results/one_to_n_speed_<dataset>[_bce].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from _common import (
    REPO,
    RESULTS,
    child_env,
    command_lines,
    fmt,
    gnnns_cmd,
    load_kg,
    machine_info,
    machine_line,
    run_worker,
    save,
    shown_command,
    write_subset_root,
)

BATCH, LR = 256, 1e-3
LOSSES = {
    "sce": "softmax cross-entropy on the row-normalised multi-hot target",
    "bce": "binary cross-entropy on every (query, entity) entry",
}


def subset(train: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    if not n or n >= len(train):
        return train
    g = torch.Generator().manual_seed(seed)
    return train[torch.randperm(len(train), generator=g)[:n]]


def count_queries(train: torch.Tensor) -> int:
    """Distinct ``(h, r)`` and ``(t, r^-1)`` pairs: the KvsAll queries of one epoch on either side."""
    tails = torch.unique(train[:, :2], dim=0)
    heads = torch.unique(train[:, [2, 1]], dim=0)
    return len(tails) + len(heads)


def pykeen_worker(args) -> None:
    """Runs inside a fresh process; prints one JSON line."""
    from pykeen.losses import BCEWithLogitsLoss, CrossEntropyLoss
    from pykeen.models import ComplEx
    from pykeen.training import LCWATrainingLoop
    from pykeen.triples import TriplesFactory
    from pykeen.triples.instances import LCWAInstances

    t0 = time.perf_counter()
    kg = load_kg(args.dataset)
    train = subset(kg["train"], args.max_triples, args.seed)
    tf = TriplesFactory(
        mapped_triples=train,
        entity_to_id={n: i for i, n in enumerate(kg["entity_names"])},
        relation_to_id={n: i for i, n in enumerate(kg["relation_names"])},
        create_inverse_triples=True,
    )
    torch.manual_seed(args.seed)
    model = ComplEx(
        triples_factory=tf,
        embedding_dim=args.dim,
        loss=CrossEntropyLoss() if args.loss == "sce" else BCEWithLogitsLoss(),
        regularizer=None,
        random_seed=args.seed,
    )
    loop = LCWATrainingLoop(
        model=model, triples_factory=tf, optimizer=torch.optim.Adam(model.parameters(), lr=LR), target="tail"
    )
    setup = time.perf_counter() - t0
    start = time.perf_counter()
    losses = loop.train(triples_factory=tf, num_epochs=args.epochs, batch_size=BATCH, use_tqdm=False)
    seconds = time.perf_counter() - start
    queries = len(LCWAInstances.from_triples_factory(tf, target="tail"))
    print(
        json.dumps(
            dict(
                triples=len(train),
                queries=queries,
                epochs=args.epochs,
                train_seconds=seconds,
                setup_seconds=setup,
                losses=losses,
                num_entities=tf.num_entities,
                num_relations=tf.num_relations,
            )
        )
    )


def gnnns_train_command(run_dir: Path, args) -> list[str]:
    flags = (
        f"train --dataset {args.dataset} --model complex --dim {args.dim} --training kvsall --loss {args.loss} "
        f"--optimizer adam --lr {LR} --batch-size {BATCH} --epochs {args.epochs} --eval-every -1 --seed {args.seed}"
    )
    return [*gnnns_cmd(), *flags.split(), "--output", str(run_dir), "--overwrite", "--no-compile", "--no-progress"]


def run_gnnns(args, kg: dict, train: torch.Tensor) -> dict:
    run_dir = Path(args.run_dir).resolve()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    env = child_env()
    tmp = None
    if len(train) < len(kg["train"]):
        tmp = tempfile.TemporaryDirectory(prefix="gnnns_bench_")
        env["GNNNS_DATA"] = str(write_subset_root(kg, Path(tmp.name), train=train, name=args.dataset))
    cmd = gnnns_train_command(run_dir, args)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    if tmp is not None:
        tmp.cleanup()
    if proc.returncode:
        raise RuntimeError(f"gnnns train failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    rows = [r for r in rows if "train_seconds" in r]
    return dict(
        command=shown_command(cmd),
        process_seconds=wall,
        train_seconds=sum(float(r["train_seconds"]) for r in rows),
        losses=[r.get("loss") for r in rows],
        triples=len(train),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fb15k-237")
    parser.add_argument("--dim", type=int, default=100, help="complex coordinates per embedding")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--loss", choices=["sce", "bce"], default="sce", help="softmax CE or binary CE")
    parser.add_argument("--max-triples", type=int, default=None, help="train on a random subset of N train triples")
    parser.add_argument("--order", default="pykeen,gnnns", help="comma-separated sides, run in this order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=str(REPO / "runs" / "benchmarks" / "one_to_n_gnnns"))
    parser.add_argument("--output", default=None, help="results stem (default: one_to_n_speed_<dataset>[_bce])")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--worker", choices=["pykeen"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return pykeen_worker(args)
    stem = args.output or f"one_to_n_speed_{args.dataset}" + ("_bce" if args.loss == "bce" else "")
    if args.render_only:
        payload = json.loads((RESULTS / f"{stem}.json").read_text())
        return save(stem, payload, markdown(payload))

    machine = machine_info()
    kg = load_kg(args.dataset)
    train = subset(kg["train"], args.max_triples, args.seed)
    queries = count_queries(train)
    sides: dict[str, dict] = {}
    for side in args.order.split(","):
        if side == "pykeen":
            worker = [str(Path(__file__).resolve()), "--worker", "pykeen", "--dataset", args.dataset]
            worker += ["--dim", str(args.dim), "--epochs", str(args.epochs), "--seed", str(args.seed)]
            worker += ["--loss", args.loss]
            worker += ["--max-triples", str(args.max_triples)] if args.max_triples else []
            out, wall = run_worker(worker)
            out.update(process_seconds=wall, command=shown_command(["python", *worker]))
            sides["pykeen"] = out
        elif side == "gnnns":
            sides["gnnns"] = run_gnnns(args, kg, train)
            sides["gnnns"]["queries"] = queries
        else:
            raise SystemExit(f"unknown side {side!r}")
        print(side, json.dumps({k: v for k, v in sides[side].items() if k != "losses"}), flush=True)
    for s in sides.values():
        s["queries_per_second"] = s["queries"] * args.epochs / s["train_seconds"]
        s["triples_per_second"] = len(train) * args.epochs / s["train_seconds"]
    ratio = None
    if {"gnnns", "pykeen"} <= set(sides):
        ratio = sides["gnnns"]["queries_per_second"] / sides["pykeen"]["queries_per_second"]
    machine["loadavg_at_end"] = os.getloadavg()
    payload = dict(
        machine=machine,
        dataset=args.dataset,
        triples=len(train),
        queries=queries,
        full_epoch=len(train) == len(kg["train"]),
        epochs=args.epochs,
        order=args.order,
        sides=sides,
        ratio_gnnns_over_pykeen=ratio,
        settings=dict(
            model="ComplEx",
            dim=args.dim,
            batch_size=BATCH,
            training="KvsAll, reciprocal relations",
            loss=LOSSES[args.loss],
            optimizer=f"Adam lr {LR}",
        ),
    )
    save(stem, payload, markdown(payload))


def markdown(p: dict) -> str:
    what = "all" if p["full_epoch"] else "a random subset of"
    lines = [
        f"# 1-N training throughput: gnnns vs PyKEEN ({p['dataset']}, ComplEx, KvsAll)\n",
        f"{p['epochs']} epoch(s) over {what} {p['triples']:,} training triples: {p['queries']:,} queries (distinct "
        f"(h, r) and (t, r^-1) pairs), each scored against all entities. ComplEx d={p['settings']['dim']} (complex), "
        f"batch {p['settings']['batch_size']} queries, {p['settings']['loss']}, Adam lr 1e-3, no regulariser, "
        "no label smoothing. gnnns: `--training kvsall`; PyKEEN: `LCWATrainingLoop` with inverse triples "
        "(`CrossEntropyLoss` or `BCEWithLogitsLoss`).\n",
        "| side | in-loop s | queries/s | triples/s | process s | loss (last epoch) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in p["sides"].items():
        loss = s["losses"][-1] if s.get("losses") else None
        lines.append(
            f"| {name} | {fmt(s['train_seconds'])} | {fmt(s['queries_per_second'], 0)} | "
            f"{fmt(s['triples_per_second'], 0)} | {fmt(s['process_seconds'])} | "
            f"{fmt(loss, 4) if loss is not None else 'n/a'} |"
        )
    if p["ratio_gnnns_over_pykeen"]:
        lines.append(f"| **gnnns / PyKEEN** | | **{p['ratio_gnnns_over_pykeen']:.2f}×** | | | |")
    lines += [
        "",
        machine_line(p["machine"]),
        f"Order: {p['order']} (sequential, each in a fresh process).",
        "",
        *command_lines(p["sides"]),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
