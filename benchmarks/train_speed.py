"""Training throughput of gnnns vs PyKEEN on FB15k-237, RotatE + self-adversarial negatives, same run.

Settings (PEERS.md): RotatE, 200 complex coordinates, batch 512, 128 uniform negatives per positive,
NSSA loss (margin 9.0, adversarial temperature 1.0), Adam lr 1e-3, ``--epochs`` epochs (default 1).
Each side runs in its own fresh process, one after the other (``--order``); we report the in-loop
throughput (positive triples per second of training loop) and the whole-process throughput (same
triples over the wall time of the process: imports, data loading, model set-up, compilation).

``--max-triples N`` times a random subset of N training triples (same subset on both sides, same
entity/relation id space, so the model size is unchanged) for quick runs.

    GNNNS_DATA=/work/shared/datasets python benchmarks/train_speed.py              # full epoch
    GNNNS_DATA=/work/shared/datasets python benchmarks/train_speed.py --max-triples 20000

Writes ``benchmarks/results/train_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from _common import (
    DATASET,
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
    triples_factory,
    write_subset_root,
)

DIM, BATCH, NEG, MARGIN, TEMP, LR = 200, 512, 128, 9.0, 1.0, 1e-3


def subset(train: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    if not n or n >= len(train):
        return train
    g = torch.Generator().manual_seed(seed)
    return train[torch.randperm(len(train), generator=g)[:n]]


def pykeen_worker(args) -> None:
    """Runs inside a fresh process; prints one JSON line."""
    from pykeen.losses import NSSALoss
    from pykeen.models import RotatE
    from pykeen.training import SLCWATrainingLoop

    t0 = time.perf_counter()
    kg = load_kg()
    train = subset(kg["train"], args.max_triples, args.seed)
    tf = triples_factory(train, kg)
    torch.manual_seed(args.seed)
    model = RotatE(
        triples_factory=tf,
        embedding_dim=DIM,
        random_seed=args.seed,
        loss=NSSALoss(margin=MARGIN, adversarial_temperature=TEMP),
    )
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=tf,
        optimizer=torch.optim.Adam(model.parameters(), lr=LR),
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=NEG),
    )
    setup = time.perf_counter() - t0
    start = time.perf_counter()
    losses = loop.train(triples_factory=tf, num_epochs=args.epochs, batch_size=BATCH, use_tqdm=False)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                triples=len(train),
                epochs=args.epochs,
                train_seconds=seconds,
                setup_seconds=setup,
                losses=losses,
                reader=kg["reader"],
                num_entities=tf.num_entities,
                num_relations=tf.num_relations,
            )
        )
    )


def gnnns_train_command(run_dir: Path, args) -> list[str]:
    flags = (
        f"train --dataset {DATASET} --model rotate --dim {DIM} --sampler uniform --num-negatives {NEG} "
        f"--loss nssa --margin {MARGIN} --adversarial-temperature {TEMP} --optimizer adam --lr {LR} "
        f"--batch-size {BATCH} --epochs {args.epochs} --eval-every -1 --seed {args.seed}"
    )
    switch = "--compile" if args.compile else "--no-compile"
    return [*gnnns_cmd(), *flags.split(), "--output", str(run_dir), "--overwrite", switch, "--no-progress"]


def run_gnnns(args, kg: dict, n_triples: int) -> dict:
    import subprocess

    run_dir = Path(args.run_dir).resolve()
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    env = child_env()
    tmp = None
    if args.max_triples and args.max_triples < len(kg["train"]):
        tmp = tempfile.TemporaryDirectory(prefix="gnnns_bench_")
        env["GNNNS_DATA"] = str(
            write_subset_root(kg, Path(tmp.name), train=subset(kg["train"], args.max_triples, args.seed))
        )
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
    seconds = sum(float(r["train_seconds"]) for r in rows)
    return dict(
        command=shown_command(cmd),
        process_seconds=wall,
        train_seconds=seconds,
        reported_triples_per_second=[r.get("triples_per_second") for r in rows],
        losses=[r.get("loss") for r in rows],
        run_dir=str(run_dir),
        triples=n_triples,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-triples", type=int, default=None, help="time a random subset of N train triples")
    parser.add_argument("--order", default="pykeen,gnnns", help="comma-separated sides, run in this order")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pass --compile/--no-compile to gnnns train",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--run-dir",
        default=str(REPO / "runs" / "benchmarks" / "train_gnnns"),
        help="gnnns RUN_DIR (kept; eval_speed.py --run-dir can reuse its checkpoint)",
    )
    parser.add_argument("--output", default="train_speed", help="results stem under benchmarks/results/")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--worker", choices=["pykeen"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return pykeen_worker(args)
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.output}.json").read_text())
        return save(args.output, payload, markdown(payload))

    machine = machine_info()
    kg = load_kg()
    n = len(subset(kg["train"], args.max_triples, args.seed))
    sides: dict[str, dict] = {}
    for side in args.order.split(","):
        if side == "pykeen":
            worker = [
                str(Path(__file__).resolve()),
                "--worker",
                "pykeen",
                "--epochs",
                str(args.epochs),
                "--seed",
                str(args.seed),
            ] + (["--max-triples", str(args.max_triples)] if args.max_triples else [])
            out, wall = run_worker(worker)
            out.update(process_seconds=wall, command=shown_command(["python", *worker]))
            sides["pykeen"] = out
        elif side == "gnnns":
            try:
                sides["gnnns"] = run_gnnns(args, kg, n)
            except (RuntimeError, FileNotFoundError, OSError) as err:
                sides["gnnns"] = dict(error=str(err)[-2000:])
        else:
            raise SystemExit(f"unknown side {side!r}")
        print(side, json.dumps({k: v for k, v in sides[side].items() if k != "losses"}), flush=True)
    for s in sides.values():
        if "train_seconds" in s:
            s["triples_per_second"] = n * args.epochs / s["train_seconds"]
            s["process_triples_per_second"] = n * args.epochs / s["process_seconds"]
    ratio = {}
    if all("triples_per_second" in sides.get(k, {}) for k in ("gnnns", "pykeen")):
        ratio = dict(
            in_loop=sides["gnnns"]["triples_per_second"] / sides["pykeen"]["triples_per_second"],
            process=sides["gnnns"]["process_triples_per_second"] / sides["pykeen"]["process_triples_per_second"],
        )
    machine["loadavg_at_end"] = os.getloadavg()
    payload = dict(
        machine=machine,
        dataset=DATASET,
        triples=n,
        full_epoch=n == len(kg["train"]),
        epochs=args.epochs,
        order=args.order,
        compile=args.compile,
        sides=sides,
        ratio_gnnns_over_pykeen=ratio,
        settings=dict(
            model="RotatE",
            dim=DIM,
            batch_size=BATCH,
            negatives=NEG,
            sampler="uniform/basic",
            loss=f"NSSA margin {MARGIN} temperature {TEMP}",
            optimizer=f"Adam lr {LR}",
        ),
    )
    save(args.output, payload, markdown(payload))


def markdown(p: dict) -> str:
    m = p["machine"]
    what = (
        f"all {p['triples']:,} training triples"
        if p["full_epoch"]
        else f"a random subset of {p['triples']:,} training triples"
    )
    lines = [
        "# Training throughput: gnnns vs PyKEEN (FB15k-237, RotatE)\n",
        f"{p['epochs']} epoch(s) over {what}; RotatE d=200 (complex), batch 512, 128 uniform negatives, "
        "NSSA (margin 9.0, temperature 1.0), Adam lr 1e-3. In-loop = positive triples / seconds inside the "
        "training loop; process = the same triples / wall time of the whole process (imports, data, set-up"
        + (", torch.compile" if p["compile"] else "")
        + ").\n",
        "| side | in-loop s | triples/s (in-loop) | process s | triples/s (process) | loss (last epoch) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in p["sides"].items():
        if "error" in s:
            lines.append(f"| {name} | failed: {s['error'].splitlines()[-1][:80] if s['error'] else ''} | | | | |")
            continue
        loss = s["losses"][-1] if s.get("losses") else None
        lines.append(
            f"| {name} | {fmt(s['train_seconds'])} | {fmt(s['triples_per_second'], 0)} | "
            f"{fmt(s['process_seconds'])} | {fmt(s['process_triples_per_second'], 0)} | "
            f"{fmt(loss, 4) if loss is not None else 'n/a'} |"
        )
    r = p["ratio_gnnns_over_pykeen"]
    if r:
        lines.append(f"| **gnnns / PyKEEN** | | **{r['in_loop']:.2f}×** | | **{r['process']:.2f}×** | |")
    lines += [
        "",
        machine_line(m),
        f"Order: {p['order']} (sequential, each in a fresh process; the side run second may see a warmer "
        "page cache and different background load, so swap `--order` to check).",
        "",
        *command_lines(p["sides"]),
    ]
    lines.append(
        "- PyKEEN worker API: `RotatE(triples_factory=tf, embedding_dim=200, loss=NSSALoss(margin=9.0, "
        "adversarial_temperature=1.0))`, `SLCWATrainingLoop(..., optimizer=Adam(lr=1e-3), "
        "negative_sampler='basic', negative_sampler_kwargs=dict(num_negs_per_pos=128))`, "
        "`loop.train(tf, num_epochs, batch_size=512)`; `tf = TriplesFactory(mapped_triples=..., "
        "entity_to_id=..., relation_to_id=...)` on the gnnns id mapping."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
