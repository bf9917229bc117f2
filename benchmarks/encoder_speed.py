"""Epoch time of the GNN encoders, gnnns vs PyKEEN's ``RGCN`` and ``CompGCN`` on FB15k-237, same run.

Issue 4 asks for the epoch time of CompGCN and R-GCN against PyKEEN's at the same dimensions and batch
size, as ratios measured in the same run. Both tools run the encoder over the whole training graph once
per step (PyKEEN always does; gnnns with ``graph_mode="full"``), so a step costs about the same whatever
the batch, and a full epoch (hundreds of steps) takes hours on two CPU cores for PyKEEN. We therefore time
``--steps`` training steps (``--rgcn-steps`` for R-GCN) after ``--warmup`` untimed ones, in a fresh process
per tool and model, ``--rounds`` times (``--rgcn-rounds`` for R-GCN, whose PyKEEN steps take over a minute
and 14 GB) with the order of the tools alternating, and report

* the median seconds per step (wall clock; process CPU seconds alongside, to see the machine's load),
* the epoch time extrapolated as steps per epoch x median seconds per step, with each tool's own epoch
  (PyKEEN's CompGCN trains on the training triples *and their inverses*, two positives per triple and
  twice the steps; gnnns corrupts one side of each triple once per epoch, answering head queries through
  the inverse relation),
* speed-ups, PyKEEN time / gnnns time (above 1: gnnns faster), per step (same batch, same work) and per
  epoch, the median over rounds of the ratio within each round.

Settings (both tools; ``--help`` for the options):

* R-GCN (Schlichtkrull et al., 2018): DistMult decoder, entity and relation dimension ``--dim`` (200),
  2 layers of width ``--dim`` with ReLU between them, messages along every edge and its inverse plus a
  self-connection, a basis decomposition with ``--num-bases`` (4) basis matrices per layer (gnnns: shared
  by all 2R relations incl. inverses; PyKEEN decomposes forward and inverse edges separately, so it gets
  half of them for each: same number of parameters), edge dropout 0.4 and self-connection dropout 0.2 in
  training (the paper's values and both tools' defaults). Differences left: PyKEEN weighs messages by its
  default symmetric per-relation degree normalisation and applies the self-loop dropout to features, gnnns
  averages each relation's neighbours (1/c_{i,r}, the paper's) and drops whole self-connections.
* CompGCN (Vashishth et al., 2020): 1 layer, ``--composition`` (``corr``: circular correlation), input
  embeddings of ``--init-dim`` (100) mapped to ``--dim`` (200), tanh, batch norm, dropout 0.1, inverse
  relations, DistMult decoder.
* Training: ``--training slcwa`` (default): batch ``--batch-size`` (1024) positives, each with
  ``--negatives`` (32) uniform negatives (head or tail replaced; PyKEEN's ``basic`` sampler), softmax
  cross-entropy over the positive and its negatives; ``--training lcwa`` (CompGCN only): 1-N training
  over every distinct (entity, relation) query incl. inverses (PyKEEN's LCWA, gnnns' KvsAll) with
  softmax cross-entropy over all entities. Adam, ``--lr`` 1e-3.

``--quality`` instead trains each tool for ``--quality-epochs`` full epochs on ``--quality-dataset`` and
reports the wall time of every epoch and the filtered test MRR, both sides and both tools ranked by the
same code (gnnns' filtered ranking, ties at the mean rank, scores from each tool's own model through
``predict_h``/``predict_t``), written to ``results/encoder_speed_quality.{json,md}``; ``--cross-check``
also runs PyKEEN's own ``RankBasedEvaluator`` on the PyKEEN model. On FB15k-237 one epoch of both tools
takes about 50 min for CompGCN at batch 1024 (PyKEEN 43 min) and 5 h for R-GCN (PyKEEN 4.9 h) on two
cores; CompGCN at batch 4096 fits in about 20 min per epoch.

    GNNNS_DATA=/work/shared/datasets python benchmarks/encoder_speed.py                 # ~8-15 min
    GNNNS_DATA=/work/shared/datasets python benchmarks/encoder_speed.py --models compgcn --rounds 5
    GNNNS_DATA=/work/shared/datasets python benchmarks/encoder_speed.py --quality --models compgcn \\
        --batch-size 4096 --lr 0.01 --quality-epochs 1                                   # ~20 min
    GNNNS_DATA=/work/shared/datasets python benchmarks/encoder_speed.py --quality --quality-dataset umls \\
        --batch-size 256 --lr 0.01 --quality-epochs 10 --cross-check --output encoder_speed_quality_umls

Writes ``benchmarks/results/encoder_speed.{json,md}`` (``--output`` changes the stem).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import (
    DATASET,
    RESULTS,
    child_env,
    data_root,
    fmt,
    machine_info,
    machine_line,
    run_worker,
    save,
    shown_command,
)

MODELS = ("rgcn", "compgcn")
SIDES = ("pykeen", "gnnns")
# gnnns composition name -> PyKEEN's
PYKEEN_COMPOSITION = {"corr": "circularcorrelation", "mult": "multiplication", "sub": "subtraction"}
# R-GCN's dropout of edges and of self-connections in training (the paper's, and both tools' defaults)
EDGE_DROPOUT, SELF_LOOP_DROPOUT = 0.4, 0.2


class _Enough(Exception):
    """Raised inside PyKEEN's training loop once the steps to time are done."""


def _inverse(model: str) -> bool:
    """Whether the model trains with inverse relations (CompGCN always; PyKEEN's R-GCN adds them internally)."""
    return model == "compgcn"


def _load(dataset: str):
    from gnnns.data import load_dataset

    return load_dataset(dataset, root=data_root(), download=False)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------- PyKEEN


def pykeen_factory(kg, inverse: bool):
    """A ``TriplesFactory`` over the gnnns ids (all entities/relations), with inverse triples for CompGCN."""
    from pykeen.triples import TriplesFactory

    return TriplesFactory(
        mapped_triples=kg.train,
        entity_to_id={n: i for i, n in enumerate(kg.entity_names)},
        relation_to_id={n: i for i, n in enumerate(kg.relation_names)},
        create_inverse_triples=inverse,
    )


def pykeen_model(model: str, tf, args):
    from pykeen.losses import CrossEntropyLoss
    from pykeen.models import RGCN, CompGCN

    if model == "rgcn":
        return RGCN(
            triples_factory=tf,
            embedding_dim=args.dim,
            num_layers=2,
            # PyKEEN decomposes the forward and the inverse edges' weights separately: half the bases each
            # gives the same number of basis matrices (and parameters) per layer as gnnns' shared ones.
            decomposition="bases",
            decomposition_kwargs=dict(num_bases=args.num_bases // 2),
            activation="relu",
            edge_dropout=EDGE_DROPOUT,
            self_loop_dropout=SELF_LOOP_DROPOUT,
            interaction="distmult",
            loss=CrossEntropyLoss(),
            random_seed=args.seed,
        )
    return CompGCN(
        triples_factory=tf,
        embedding_dim=args.init_dim,
        encoder_kwargs=dict(
            num_layers=1,
            dims=args.dim,
            layer_kwargs=dict(
                composition=PYKEEN_COMPOSITION[args.composition], dropout=0.1, activation="tanh", use_bias=True
            ),
        ),
        interaction="distmult",
        loss=CrossEntropyLoss(),
        random_seed=args.seed,
    )


def pykeen_loop(model, tf, args, lcwa: bool):
    from pykeen.training import LCWATrainingLoop, SLCWATrainingLoop

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if lcwa:
        return LCWATrainingLoop(model=model, triples_factory=tf, optimizer=optimizer)
    return SLCWATrainingLoop(
        model=model,
        triples_factory=tf,
        optimizer=optimizer,
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=args.negatives),
    )


def pykeen_worker(args) -> dict:
    from pykeen.training.callbacks import TrainingCallback

    t0 = time.perf_counter()
    lcwa = args.model == "compgcn" and args.training == "lcwa"
    kg = _load(args.dataset)
    tf = pykeen_factory(kg, _inverse(args.model))
    torch.manual_seed(args.seed)
    model = pykeen_model(args.model, tf, args)
    loop = pykeen_loop(model, tf, args, lcwa)
    # The data loader PyKEEN's train() builds, to count an epoch's instances (with inverse triples when
    # the factory makes them) and batches.
    batches = loop._create_training_data_loader(tf, sampler=None, batch_size=args.batch_size, drop_last=False)
    out = dict(
        steps_per_epoch=len(batches),
        instances_per_epoch=len(batches.dataset) if lcwa else len(batches.dataset.mapped_triples),
        num_parameters=sum(p.numel() for p in model.parameters()),
    )
    del batches
    if args.mode == "quality":
        return out | _pykeen_quality(model, loop, tf, kg, args, setup=time.perf_counter() - t0)

    # A step ends when PyKEEN calls post_parameter_update (the last thing of its optimizer callback), so
    # the difference of consecutive stamps is one whole step: batch loading and negative sampling,
    # forward, backward, optimizer step. PyKEEN also calls it while setting up training, before the
    # first batch: stamps count from the first batch on.
    wall, cpu, losses = [], [], []
    total = args.warmup + args.steps
    original = model.post_parameter_update

    def stamped():
        original()
        if not losses:
            return
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
        if len(wall) == total:
            raise _Enough

    class Losses(TrainingCallback):
        def on_batch(self, epoch, batch, batch_loss, **kwargs):
            losses.append(float(batch_loss))

    model.post_parameter_update = stamped
    setup = time.perf_counter() - t0
    with contextlib.suppress(_Enough):
        loop.train(
            triples_factory=tf,
            num_epochs=1,
            batch_size=args.batch_size,
            use_tqdm=False,
            drop_last=False,
            callbacks=Losses(),
        )
    if len(wall) < total:
        raise RuntimeError(f"PyKEEN ran {len(wall)} steps, fewer than the {total} asked for (one epoch is shorter)")
    return out | dict(
        setup_seconds=setup,
        step_seconds=[b - a for a, b in itertools.pairwise(wall[args.warmup - 1 :])],
        step_cpu_seconds=[b - a for a, b in itertools.pairwise(cpu[args.warmup - 1 :])],
        losses=losses,
    )


def _pykeen_quality(model, loop, tf, kg, args, setup: float) -> dict:
    from pykeen.training.callbacks import TrainingCallback

    # From the first batch (the data loader is built before it, as gnnns builds its loader in set-up).
    stamps = []

    class Epochs(TrainingCallback):
        def pre_batch(self, **kwargs):
            if not stamps:
                stamps.append(time.perf_counter())

        def post_epoch(self, epoch, epoch_loss, **kwargs):
            stamps.append(time.perf_counter())

    losses = loop.train(
        triples_factory=tf,
        num_epochs=args.quality_epochs,
        batch_size=args.batch_size,
        use_tqdm=False,
        drop_last=False,
        callbacks=Epochs(),
    )
    epoch_seconds = [b - a for a, b in itertools.pairwise(stamps)]
    model.eval()
    start = time.perf_counter()

    # predict_h/predict_t map the relation ids as PyKEEN's training did (with inverse triples, relation r
    # is row 2r and its inverse row 2r + 1) and answer head queries through the inverse relation.
    def scores(kept, relation, predict_head):
        if predict_head:
            return model.predict_h(torch.stack([relation, kept], 1))
        return model.predict_t(torch.stack([kept, relation], 1))

    metrics = filtered_metrics(scores, kg, "test", args.eval_batch_size)
    out = dict(
        setup_seconds=setup,
        epoch_seconds=epoch_seconds,
        losses=losses,
        eval_seconds=time.perf_counter() - start,
        test=metrics,
    )
    if args.cross_check:
        from pykeen.evaluation import RankBasedEvaluator

        start = time.perf_counter()
        result = RankBasedEvaluator(filtered=True).evaluate(
            model, kg.test, additional_filter_triples=[kg.train, kg.valid], batch_size=64, use_tqdm=False
        )
        out["pykeen_evaluator"] = dict(
            seconds=time.perf_counter() - start,
            **{
                side: result.get_metric(f"{side}.realistic.inverse_harmonic_mean_rank")
                for side in ("both", "head", "tail")
            },
        )
    return out


def filtered_metrics(score_fn, kg, split: str, batch_size: int) -> dict:
    """Filtered both-sides metrics of ``score_fn(kept [Q], relation [Q], predict_head) -> [Q, E]``.

    The same ranking as ``gnnns.evaluation.evaluate`` (its ``rank_from_scores``: known answers removed,
    ties at the mean of the optimistic and pessimistic rank), fed with another tool's scores.
    """
    from gnnns.evaluation.ranking import rank_from_scores, rank_metrics

    triples, index = kg.split(split), kg.index()
    sides = {}
    with torch.no_grad():
        for side, predict_head in (("head", True), ("tail", False)):
            ranks = []
            for batch in triples.split(batch_size):
                kept = batch[:, 2] if predict_head else batch[:, 0]
                target = batch[:, 0] if predict_head else batch[:, 2]
                scores = score_fn(kept, batch[:, 1], predict_head).float().clone()
                rows, cols = index.known(kept, batch[:, 1], predict_head)
                ranks.append(rank_from_scores(scores, target, rows, cols))
            sides[side] = torch.cat(ranks)
    out = rank_metrics(torch.cat([sides["head"], sides["tail"]]))
    out["head"], out["tail"] = rank_metrics(sides["head"]), rank_metrics(sides["tail"])
    return out


# ---------------------------------------------------------------------------------------------- gnnns


def gnnns_config(model: str, args):
    """The gnnns ``RunConfig`` of a model, matching :func:`pykeen_model`."""
    from gnnns.config import RunConfig

    lcwa = model == "compgcn" and args.training == "lcwa"
    if model == "rgcn":
        encoder_options = dict(
            num_layers=2, num_bases=args.num_bases, edge_dropout=EDGE_DROPOUT, self_loop_dropout=SELF_LOOP_DROPOUT
        )
    else:
        encoder_options = dict(num_layers=1, init_dim=args.init_dim, composition=args.composition, dropout=0.1)
    return RunConfig(
        dataset=args.dataset,
        model="distmult",
        encoder=model,
        encoder_options=encoder_options,
        graph_mode="full",
        dim=args.dim,
        training="kvsall" if lcwa else "negative",
        reciprocal=_inverse(model),
        sampler="uniform",
        num_negatives=args.negatives,
        loss="sce",
        optimizer="adam",
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.quality_epochs,
        eval_every=-1,
        diagnostics_every=0,
        progress=False,
        seed=args.seed,
    )


def gnnns_worker(args) -> dict:
    from gnnns.training.run import build_trainer, seed_everything

    t0 = time.perf_counter()
    kg = _load(args.dataset)
    config = gnnns_config(args.model, args)
    seed_everything(args.seed)
    trainer = build_trainer(config, kg, run_dir=None)
    loader = trainer.loader
    instances = len(loader.queries) if hasattr(loader, "queries") else len(kg.train)
    out = dict(
        steps_per_epoch=len(loader),
        instances_per_epoch=instances,
        num_parameters=sum(p.numel() for p in trainer.model.parameters()),
        config=config.to_dict(),
    )
    if args.mode == "quality":
        return out | _gnnns_quality(trainer, kg, args, setup=time.perf_counter() - t0)

    trainer.model.train()
    wall, cpu, losses = [], [], []
    batches = iter(loader)
    setup = time.perf_counter() - t0
    for _ in range(args.warmup + args.steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            batch = next(batches)
        except StopIteration:
            total = args.warmup + args.steps
            raise RuntimeError(f"one gnnns epoch has fewer than the {total} steps asked for") from None
        losses.append(float(trainer.step(batch)))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return out | dict(
        setup_seconds=setup,
        step_seconds=wall[args.warmup :],
        step_cpu_seconds=cpu[args.warmup :],
        losses=losses,
    )


def _gnnns_quality(trainer, kg, args, setup: float) -> dict:
    from gnnns.evaluation import evaluate

    # fit(e) trains up to epoch e (counted from the start), so one call per epoch times each epoch.
    epoch_seconds = []
    for epoch in range(1, args.quality_epochs + 1):
        start = time.perf_counter()
        summary = trainer.fit(epoch)
        epoch_seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    metrics = evaluate(trainer.model, kg, "test", args.eval_batch_size, progress=False)
    return dict(
        setup_seconds=setup,
        epoch_seconds=epoch_seconds,
        fit_summary=summary,
        eval_seconds=time.perf_counter() - start,
        test=metrics,
    )


# ---------------------------------------------------------------------------------------- orchestration


WORKER_OPTIONS = (
    "dataset",
    "dim",
    "init_dim",
    "num_bases",
    "composition",
    "training",
    "batch_size",
    "negatives",
    "lr",
    "seed",
    "steps",
    "warmup",
    "quality_epochs",
    "eval_batch_size",
)
WORKER_FLAGS = ("cross_check",)


def worker_command(side: str, model: str, mode: str, args) -> list[str]:
    cmd = [str(Path(__file__).resolve()), "--worker", side, "--model", model, "--mode", mode]
    for name in WORKER_OPTIONS:
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    cmd += [f"--{name.replace('_', '-')}" for name in WORKER_FLAGS if getattr(args, name)]
    return cmd


def run_side(side: str, model: str, mode: str, args) -> dict:
    cmd = worker_command(side, model, mode, args)
    try:
        out, wall = run_worker(cmd, env=child_env())
    except (RuntimeError, IndexError) as err:
        return dict(error=str(err)[-3000:], command=shown_command(["python", *cmd]))
    out.update(process_seconds=wall, command=shown_command(["python", *cmd]))
    return out


def summarize(runs: list[dict], models: list[str]) -> dict:
    """Median seconds per step and extrapolated epoch per tool and model; speed-ups within each round."""
    summary = {}
    for model in models:
        per_side, per_round = {}, {}
        for run in runs:
            if run["model"] != model or "step_seconds" not in run["result"]:
                continue
            res = run["result"]
            step = statistics.median(res["step_seconds"])
            per_round.setdefault(run["round"], {})[run["side"]] = (step, step * res["steps_per_epoch"])
            side = per_side.setdefault(
                run["side"],
                dict(steps_per_epoch=res["steps_per_epoch"], instances_per_epoch=res["instances_per_epoch"]),
            )
            side.setdefault("round_step_seconds", []).append(step)
            side.setdefault("cpu_step_seconds", []).append(statistics.median(res["step_cpu_seconds"]))
            side.setdefault("setup_seconds", []).append(res["setup_seconds"])
            side.setdefault("max_rss_mb", []).append(res.get("max_rss_mb"))
            side["num_parameters"] = res["num_parameters"]
        for side in per_side.values():
            side["step_seconds"] = statistics.median(side["round_step_seconds"])
            side["cpu_step_seconds_median"] = statistics.median(side["cpu_step_seconds"])
            side["epoch_seconds"] = side["step_seconds"] * side["steps_per_epoch"]
        step_ratios = [r["pykeen"][0] / r["gnnns"][0] for r in per_round.values() if len(r) == 2]
        epoch_ratios = [r["pykeen"][1] / r["gnnns"][1] for r in per_round.values() if len(r) == 2]
        summary[model] = dict(
            sides=per_side,
            speedup_per_step=statistics.median(step_ratios) if step_ratios else None,
            speedup_per_epoch=statistics.median(epoch_ratios) if epoch_ratios else None,
            speedup_per_epoch_rounds=epoch_ratios,
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="rgcn,compgcn", help="comma-separated: rgcn, compgcn")
    parser.add_argument("--sides", default="pykeen,gnnns", help="tools to run, in the order of the first round")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before them (>= 1)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; the order of the tools alternates")
    parser.add_argument("--rgcn-rounds", type=int, default=1, help="rounds for R-GCN (PyKEEN's steps take minutes)")
    parser.add_argument("--rgcn-steps", type=int, default=2, help="timed steps per process for R-GCN")
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--dim", type=int, default=200, help="entity/relation dimension (output of the encoder)")
    parser.add_argument("--init-dim", type=int, default=100, help="CompGCN input embedding dimension")
    parser.add_argument(
        "--num-bases", type=int, default=4, help="R-GCN bases per layer (even; PyKEEN: half per edge direction)"
    )
    parser.add_argument("--composition", default="corr", choices=sorted(PYKEEN_COMPOSITION))
    parser.add_argument("--training", default="slcwa", choices=["slcwa", "lcwa"], help="lcwa: CompGCN only")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--negatives", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality", action="store_true", help="train full epochs and evaluate test MRR instead")
    parser.add_argument("--quality-epochs", type=int, default=1)
    parser.add_argument("--quality-dataset", default=None, help="dataset of --quality (default: --dataset)")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument(
        "--cross-check",
        action="store_true",
        help="--quality: also evaluate the PyKEEN model with PyKEEN's RankBasedEvaluator (slow on FB15k-237)",
    )
    parser.add_argument("--output", default=None, help="results stem (default encoder_speed[_quality])")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["steps", "quality"], default="steps", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out = (pykeen_worker if args.worker == "pykeen" else gnnns_worker)(args)
        out.update(max_rss_mb=_max_rss_mb(), torch_threads=torch.get_num_threads())
        print(json.dumps(out))
        return
    stem = args.output or ("encoder_speed_quality" if args.quality else "encoder_speed")
    if args.render_only:
        payload = json.loads((RESULTS / f"{stem}.json").read_text())
        return save(stem, payload, (quality_markdown if payload.get("quality") else markdown)(payload))
    if args.warmup < 1:
        raise SystemExit("--warmup must be at least 1: the first step allocates and is not representative")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    for name in (*models, *sides):
        if name not in (*MODELS, *SIDES):
            raise SystemExit(f"unknown model or side {name!r}; models: {MODELS}, sides: {SIDES}")
    if "rgcn" in models and (args.num_bases < 2 or args.num_bases % 2):
        raise SystemExit(f"--num-bases must be even and >= 2 (PyKEEN: half per edge direction), got {args.num_bases}")
    if args.training == "lcwa" and "rgcn" in models:
        raise SystemExit("--training lcwa is for CompGCN only (PyKEEN's R-GCN has no inverse relations to train on)")
    machine = machine_info()
    if args.quality:
        args.dataset = args.quality_dataset or args.dataset
        results = {}
        for model in models:
            for side in sides:
                print(f"quality {model} {side} ...", flush=True)
                results.setdefault(model, {})[side] = run_side(side, model, "quality", args)
                print(json.dumps({k: v for k, v in results[model][side].items() if k not in ("config",)}), flush=True)
        machine["loadavg_at_end"] = os.getloadavg()
        payload = dict(quality=True, machine=machine, settings=settings(args), results=results)
        return save(stem, payload, quality_markdown(payload))

    runs = []
    rounds = {m: (args.rgcn_rounds if m == "rgcn" else args.rounds) for m in models}
    for r in range(max(rounds.values())):
        order = sides if r % 2 == 0 else sides[::-1]
        for model in models:
            if r >= rounds[model]:
                continue
            steps = args.rgcn_steps if model == "rgcn" else args.steps
            for side in order:
                run_args = argparse.Namespace(**{**vars(args), "steps": steps})
                print(f"round {r + 1} {model} {side} ...", flush=True)
                result = run_side(side, model, "steps", run_args)
                runs.append(dict(round=r + 1, model=model, side=side, result=result))
                shown = {k: v for k, v in result.items() if k not in ("config", "losses")}
                print(json.dumps(shown), flush=True)
    machine["loadavg_at_end"] = os.getloadavg()
    payload = dict(
        machine=machine,
        settings=settings(args),
        rounds=rounds,
        runs=runs,
        summary=summarize(runs, models),
    )
    save(stem, payload, markdown(payload))


def settings(args) -> dict:
    return dict(
        dataset=args.dataset,
        dim=args.dim,
        init_dim=args.init_dim,
        num_bases=args.num_bases,
        composition=args.composition,
        training=args.training,
        batch_size=args.batch_size,
        negatives=args.negatives,
        lr=args.lr,
        seed=args.seed,
        steps=args.steps,
        rgcn_steps=args.rgcn_steps,
        warmup=args.warmup,
        quality_epochs=args.quality_epochs,
    )


MODEL_NAMES = {"rgcn": "R-GCN", "compgcn": "CompGCN"}


def _describe(s: dict, models) -> list[str]:
    """Markdown lines with the settings of ``models`` and of training."""
    training = (
        "1-N over every distinct query incl. inverses (PyKEEN LCWA / gnnns KvsAll), softmax cross-entropy"
        if s["training"] == "lcwa"
        else f"{s['negatives']} uniform negatives per positive (head or tail), softmax cross-entropy"
    )
    described = {
        "rgcn": f"- R-GCN: DistMult, dim {s['dim']}, 2 layers (ReLU between), basis decomposition with "
        f"{s['num_bases']} basis matrices per layer (PyKEEN: {s['num_bases'] // 2} for forward and "
        f"{s['num_bases'] // 2} for inverse edges), edge dropout {EDGE_DROPOUT}, self-connection dropout "
        f"{SELF_LOOP_DROPOUT}.",
        "compgcn": f"- CompGCN: DistMult, 1 layer, composition `{s['composition']}`, input dim {s['init_dim']} -> "
        f"{s['dim']}, tanh, batch norm, dropout 0.1, inverse relations.",
    }
    return [
        *(described[m] for m in models),
        f"- Training: batch {s['batch_size']}, {training}, Adam lr {s['lr']:g}; the encoder runs over the whole "
        "training graph every step on both tools.",
    ]


def markdown(p: dict) -> str:
    s, m = p["settings"], p["machine"]
    lines = [
        f"# GNN encoders: epoch time, gnnns vs PyKEEN ({s['dataset']})\n",
        f"Seconds per training step (median; {s['warmup']} untimed warm-up step(s), then {s['steps']} timed "
        f"steps per process for CompGCN and {s['rgcn_steps']} for R-GCN; rounds: "
        + ", ".join(f"{MODEL_NAMES[k]} {v}" for k, v in p["rounds"].items())
        + ", the order of the tools alternating), and the epoch time extrapolated as steps per epoch x "
        "seconds per step, each tool with its own epoch. Speed-up = PyKEEN time / gnnns time (above 1: gnnns "
        "faster), the median over rounds of the ratio within a round.\n",
        *_describe(s, p["summary"]),
        "",
        "| model | tool | params | steps/epoch | s/step (wall) | process CPU s/step | epoch (extrapolated) | setup s |"
        " peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, summ in p["summary"].items():
        for side, x in summ["sides"].items():
            rss = [v for v in x["max_rss_mb"] if v]
            lines.append(
                f"| {MODEL_NAMES[model]} | {side} | {x['num_parameters']:,} | {x['steps_per_epoch']:,} | "
                f"{fmt(x['step_seconds'], 2)} | {fmt(x['cpu_step_seconds_median'], 2)} | "
                f"{_duration(x['epoch_seconds'])} | {fmt(statistics.median(x['setup_seconds']))} | "
                f"{fmt(max(rss) / 1024, 1) + ' GB' if rss else 'n/a'} |"
            )
        if summ["speedup_per_epoch"] is not None:
            lines.append(
                f"| **{MODEL_NAMES[model]}** | **speed-up** | | | **{summ['speedup_per_step']:.2f}x** | | "
                f"**{summ['speedup_per_epoch']:.2f}x** | | |"
            )
    lines.append("")
    for model, summ in p["summary"].items():
        if summ["speedup_per_epoch_rounds"]:
            rounds = ", ".join(f"{x:.2f}x" for x in summ["speedup_per_epoch_rounds"])
            lines.append(f"- {MODEL_NAMES[model]}: epoch speed-up in each round {rounds}.")
        if len(summ["sides"]) == 2:
            both = sum(x["epoch_seconds"] for x in summ["sides"].values())
            lines.append(
                f"- {MODEL_NAMES[model]}: one epoch of each tool (what `--quality` costs per epoch, before "
                f"evaluation) takes about {_duration(both)} at this load."
            )
    failed = [r for r in p["runs"] if "error" in r["result"]]
    for r in failed:
        last = r["result"]["error"].strip().splitlines()[-1:] or [""]
        lines.append(f"\nFailed: round {r['round']} {r['model']} {r['side']}: {last[0][:200]}")
    lines += [
        "",
        "PyKEEN's CompGCN trains on the triples and their inverses (twice the positives and steps of an epoch); "
        "gnnns corrupts one side of each triple per epoch and answers head queries through the inverse relation. "
        "The per-step speed-up compares equal work (same batch of positives and negatives).",
        "",
        machine_line(m),
        "",
        "Commands (one fresh process per tool, model and round):",
        "",
    ]
    seen = set()
    for r in p["runs"]:
        key = (r["model"], r["side"])
        if key not in seen and "command" in r["result"]:
            seen.add(key)
            lines.append(f"- {MODEL_NAMES[r['model']]}, {r['side']}: `{r['result']['command']}`")
    return "\n".join(lines) + "\n"


def quality_markdown(p: dict) -> str:
    s, m = p["settings"], p["machine"]
    lines = [
        f"# GNN encoders: test MRR after {s['quality_epochs']} epoch(s), gnnns vs PyKEEN ({s['dataset']})\n",
        "Each tool trains for the same number of its own epochs, then ranks the test triples (both sides, "
        "filtered by train, valid and test, ties at the mean rank) with the same ranking code on scores from its "
        "own model.\n",
        *_describe(s, p["results"]),
        "",
        "| model | tool | steps/epoch | epoch seconds | test MRR | Hits@10 | head MRR | tail MRR | eval s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for model, sides in p["results"].items():
        for side, x in sides.items():
            if "error" in x:
                last = x["error"].strip().splitlines()[-1:] or [""]
                lines.append(f"| {MODEL_NAMES[model]} | {side} | failed: {last[0][:120]} | | | | | | |")
                continue
            t = x["test"]
            epochs = ", ".join(fmt(e, 1 if e < 10 else 0) for e in x["epoch_seconds"] or [])
            lines.append(
                f"| {MODEL_NAMES[model]} | {side} | {x['steps_per_epoch']:,} | {epochs} | {t['mrr']:.4f} | "
                f"{t['hits@10']:.4f} | {t['head']['mrr']:.4f} | {t['tail']['mrr']:.4f} | {fmt(x['eval_seconds'])} |"
            )
    for model, sides in p["results"].items():
        times = {side: sum(x["epoch_seconds"]) for side, x in sides.items() if x.get("epoch_seconds")}
        if len(times) == 2:
            lines.append(
                f"\n{MODEL_NAMES[model]}: measured training time over the {s['quality_epochs']} epoch(s), PyKEEN "
                f"{_duration(times['pykeen'])}, gnnns {_duration(times['gnnns'])}: speed-up "
                f"{times['pykeen'] / times['gnnns']:.2f}x."
            )
    for model, sides in p["results"].items():
        check = sides.get("pykeen", {}).get("pykeen_evaluator")
        if check:
            lines.append(
                f"\nCross-check, {MODEL_NAMES[model]}: PyKEEN's own `RankBasedEvaluator(filtered=True)` on the same "
                f"PyKEEN model gives realistic MRR {check['both']:.4f} (head {check['head']:.4f}, tail "
                f"{check['tail']:.4f}) in {fmt(check['seconds'])} s."
            )
    lines += ["", machine_line(m), "", "Commands (one fresh process per tool and model):", ""]
    for model, sides in p["results"].items():
        for side, x in sides.items():
            if "command" in x:
                lines.append(f"- {MODEL_NAMES[model]}, {side}: `{x['command']}`")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


if __name__ == "__main__":
    sys.exit(main())
