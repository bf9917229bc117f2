"""``gnnns train | evaluate | plot | datasets | bench``: the command line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from gnnns.config import RunConfig, read_config_file

HELP = {
    "dataset": "dataset name (see `gnnns datasets`) or a folder with train/valid/test.txt",
    "model": "decoder: transe, distmult, complex, rotate, rescal, conve",
    "decoder_options": "a decoder setting KEY=VALUE, repeatable: --decoder-option num_filters=200",
    "encoder": "encoder: embedding (a free vector per entity), rgcn or compgcn",
    "encoder_options": (
        "an encoder setting KEY=VALUE, repeatable: --encoder-option num_bases=2 (embedding: entity_dropout=0.1)"
    ),
    "graph_mode": "GNN encoders: full (one pass over the whole graph per step) or neighbor (sampled subgraphs)",
    "num_neighbors": "neighbor mode: neighbours sampled per hop, comma-separated (-1: all)",
    "exclude_positives": "full mode: keep each batch's positive edges out of message passing",
    "smoothing": "bce label smoothing: mix ((1-eps) y + eps/E) or conve ((1-eps) y + 1/E)",
    "dim": "embedding size (complex coordinates for complex/rotate)",
    "sparse": "sparse embedding gradients (shallow models, or a GNN's input table in neighbor mode): optimizers "
    "update only the rows a batch touches",
    "p": "norm of TransE (1 or 2)",
    "training": "negative (negative sampling), 1vsall or kvsall (1-N scoring, reciprocal relations)",
    "reciprocal": "answer head queries through inverse relations",
    "head_queries": "1-N training: inverse (ask (?, r, t) as (t, r^-1, ?)) or direct (the decoder's own head query)",
    "sampler": (
        "negative sampler: uniform, bernoulli, khop, typed, inbatch, dynamic, nscaching, adversarial, "
        "mixture, curriculum"
    ),
    "sampler_options": "a sampler setting KEY=VALUE (YAML value), repeatable: --sampler-option k=3",
    "filter_negatives": "resample negatives that are known training triples (the Filtered wrapper)",
    "diagnostics_every": "measure the negatives (hardness, false negatives, diversity) every N batches; 0: never",
    "time_budget": "stop training after this many seconds of training steps (0: no budget)",
    "budget_clock": "clock of --time-budget: wall, or cpu (this process's CPU time)",
    "hardness_queries": "queries per measured batch scored against all entities for hardness",
    "num_negatives": "negatives per positive",
    "loss": (
        "margin, nssa (sigmoid margin; self-adversarial when --adversarial-temperature > 0), infonce, "
        "debiased (false-negative-aware InfoNCE), sce, bce"
    ),
    "margin": "margin of the margin and nssa losses (also RotatE's init range)",
    "adversarial_temperature": "self-adversarial temperature alpha of nssa (0: uniform weights)",
    "temperature": "InfoNCE temperature tau",
    "false_negative_prior": "debiased loss: probability tau+ that a sampled negative is in fact true",
    "negative_hardness": "debiased loss: hardness beta of the negative weights (0: plain debiased)",
    "label_smoothing": "label smoothing of sce and bce",
    "regularizer_weight": "weight of an N3 penalty on the batch's embeddings",
    "optimizer": "adam, adagrad or sgd",
    "lr": "learning rate",
    "weight_decay": "L2 weight decay of the optimizer",
    "relation_weight_decay": "the relation table's own weight decay (default: weight_decay)",
    "lr_scheduler": "none, or plateau (lower the rate when the validation MRR stops improving)",
    "lr_scheduler_options": (
        "a plateau setting KEY=VALUE, repeatable: --lr-scheduler-option factor=0.95 (also patience, threshold, min_lr)"
    ),
    "batch_size": "positives (or 1-N queries) per batch",
    "epochs": "training epochs",
    "checkpoint_every": "also write the checkpoint every N steps of an epoch, for resuming mid-epoch (0: epoch ends)",
    "checkpoint_seconds": "also write the checkpoint when this many seconds passed since the last one (0: never)",
    "eval_every": "validate every N epochs (0: at the end only; -1: never)",
    "eval_batch_size": "queries per evaluation batch",
    "patience": "stop after this many validations without a better MRR (0: never)",
    "seed": "random seed",
    "device": "cpu, cuda, cuda:1, ...",
    "compile": "fuse scoring kernels with torch.compile (faster after a ~20 s warm-up)",
    "progress": "show progress bars",
    "output": "run directory for metrics.jsonl, metrics.json and checkpoints (default: runs/DATASET-MODEL-TIME)",
}


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    defaults = RunConfig()
    for name in RunConfig.field_names():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        if isinstance(default, dict):
            parser.add_argument(
                "--" + name.replace("_", "-").removesuffix("s"),
                dest=name,
                action="append",
                default=None,
                metavar="KEY=VALUE",
                help=HELP[name],
            )
        elif isinstance(default, list):
            text = ",".join(str(v) for v in default)
            parser.add_argument(flag, default=None, metavar="N,N", help=f"{HELP[name]} (default: {text})")
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=HELP[name])
        else:
            kind = str if default is None else type(default)
            parser.add_argument(flag, type=kind, default=None, help=f"{HELP[name]} (default: {default})")
    parser.add_argument("--config", help="YAML file of settings; flags given on the command line win")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    values = read_config_file(args.config) if args.config else {}
    if args.resume and args.output and (Path(args.output) / "config.json").exists():
        saved = json.loads((Path(args.output) / "config.json").read_text(encoding="utf-8"))
        values = {**saved, **values}
    for name in RunConfig.field_names():
        given = getattr(args, name, None)
        if given is None:
            continue
        if isinstance(getattr(RunConfig(), name), dict):
            given = {**values.get(name, {}), **_key_values(given, "--" + name.replace("_", "-").removesuffix("s"))}
        values[name] = given
    return RunConfig.from_dict(values, source=args.config or "command line")


def _key_values(items: list[str], flag: str) -> dict:
    """``["k=2", "mode=top"]`` -> ``{"k": 2, "mode": "top"}`` (values read as YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value.strip() else None
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from gnnns.training.distributed import process_group
    from gnnns.training.run import train

    config = _config_from_args(args)
    # Under torchrun every process runs this; the group lets them agree on one run directory.
    with process_group(config.device) as distributed:
        if config.output is None:
            dataset = Path(config.dataset).name or "dataset"
            name = f"{dataset}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
            config.output = str(Path("runs") / distributed.broadcast(name))
        result = train(config, resume=args.resume)
    if not distributed.is_main:
        return 0
    for split in ("valid", "test"):
        if split in result:
            m = result[split]
            print(
                f"{split}: MRR {m['mrr']:.4f}  MR {m['mr']:.1f}  Hits@1 {m['hits@1']:.4f}  "
                f"Hits@3 {m['hits@3']:.4f}  Hits@10 {m['hits@10']:.4f}"
            )
    if config.output:
        print(f"run directory: {config.output}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gnnns.plots import plot_runs

    print(f"wrote {plot_runs(args.run_dirs, args.output)}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gnnns.data import load_dataset
    from gnnns.evaluation import evaluate
    from gnnns.training import checkpoint
    from gnnns.training.run import build_run_model
    from gnnns.training.trainer import BEST, LAST

    run_dir = Path(args.run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} does not exist: is {run_dir} a gnnns run directory?")
    config = RunConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")), source=str(config_path))
    if args.device:
        config.device = args.device
    config.compile = args.compile
    name = {"best": BEST, "last": LAST}[args.checkpoint]
    path = run_dir / name
    if args.checkpoint == "best" and not path.exists():
        path = run_dir / LAST
    kg = load_dataset(config.dataset)
    model = build_run_model(config, kg)
    model.load_state_dict(checkpoint.load(path, map_location=config.device)["model"])
    start = time.perf_counter()
    metrics = evaluate(model, kg, args.split, args.batch_size, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    out = {"split": args.split, "checkpoint": str(path), "seconds": seconds, "metrics": metrics}
    (run_dir / f"evaluation_{args.split}.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
    return 0


def _not_here(name: str) -> str:
    if name == "synthetic":
        return "generated in code"
    if name.startswith("ogbl-"):
        return "not found (never downloaded; see datasets/ogb.md)"
    return "not found (downloads)"


def cmd_datasets(args: argparse.Namespace) -> int:
    from gnnns.data import list_datasets

    header = f"{'name':<12} {'here':<5} {'entities':>9} {'relations':>9} {'train':>10} {'valid':>7} {'test':>7}  where"
    print(header)
    for row in list_datasets(root=args.root):
        c = row.get("counts") or {}
        where = row.get("path") or _not_here(row["name"])
        print(
            f"{row['name']:<12} {'yes' if row['present'] else 'no':<5} {c.get('entities', 0):>9,} "
            f"{c.get('relations', 0):>9,} {c.get('train', 0):>10,} {c.get('valid', 0):>7,} "
            f"{c.get('test', 0):>7,}  {where}"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gnnns import bench

    root = Path(args.registry).resolve().parent.parent if args.registry else bench.find_root()
    registry = bench.load_registry(args.registry or root / bench.REGISTRY)
    reproductions = {entry["name"]: entry for entry in registry}
    scripts = bench.scripts(root)
    results = Path(args.output) if args.output else root / bench.RESULTS
    clash = sorted(set(reproductions) & set(scripts))
    if clash:
        raise ValueError(f"{root / bench.REGISTRY}: reproduction name(s) {clash} clash with benchmarks/*.py scripts")
    if args.name == "list":
        return _bench_list(reproductions, scripts, results)
    if args.name == "readme":
        readme = Path(args.readme) if args.readme else root / "README.md"
        diff = bench.update_readme(readme, bench.render_table(registry, results, root))
        print("\n".join(diff) if diff else f"{readme}: the results table is up to date")
        if bench.BUDGET_START not in readme.read_text(encoding="utf-8"):
            print(f"{readme}: no {bench.BUDGET_START} marker, so no equal-budget table written")
            return 0
        diff = bench.update_readme(
            readme, bench.render_budget_table(results, root), bench.BUDGET_START, bench.BUDGET_END
        )
        print("\n".join(diff) if diff else f"{readme}: the equal-budget table is up to date")
        return 0
    overrides = {
        key: value
        for key, value in (("epochs", args.epochs), ("device", args.device), ("time_budget", args.time_budget))
        if value is not None
    }
    if args.name in reproductions:
        if args.extra:
            raise ValueError(f"{args.name} is a reproduction; arguments after -- are for scripts, got {args.extra}")
        command = shlex.join(["gnnns", *args.argv])
        record = bench.run_reproduction(
            reproductions[args.name], overrides, results, command=command, resume=args.resume
        )
        m = record["test"]
        if record["published"] is None:
            verdict = f"a run of ours, no published figure; {record['run']} run"
        else:
            reached = "yes" if record["reached"] else "no"
            verdict = f"published {record['published']['mrr']}; reached: {reached}, {record['run']} run"
        print(f"{args.name}: test MRR {m['mrr']:.4f}  Hits@10 {m['hits@10']:.4f}  ({verdict})")
        print(f"wrote {results / f'repro_{args.name}.json'}")
        return 0
    if args.name in scripts:
        if overrides or args.output or args.resume:
            raise ValueError(
                f"{args.name} is a script: pass its own options after --, e.g. gnnns bench {args.name} -- --help"
            )
        return bench.run_script(scripts[args.name], args.extra)
    raise ValueError(
        f"unknown benchmark {args.name!r}; reproductions: {sorted(reproductions)}; scripts: {sorted(scripts)}; "
        "or list, readme"
    )


def _bench_list(reproductions: dict, scripts: dict, results: Path) -> int:
    from gnnns.bench import load_result

    print(f"{'name':<32} {'kind':<12} {'hardware':<8} result")
    for name, entry in reproductions.items():
        found = "yes" if load_result(results, name) is not None else "no"
        print(f"{name:<32} {'reproduction':<12} {entry['hardware']:<8} {found}")
    for name in scripts:
        found = "yes" if (results / f"{name}.json").exists() else "no"
        print(f"{name:<32} {'script':<12} {'cpu':<8} {found}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnnns", description="Knowledge-graph completion with PyG")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model and report filtered test metrics")
    _add_train_flags(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="filtered evaluation of a run's checkpoint")
    ev.add_argument("run_dir", help="run directory written by `gnnns train --output`")
    ev.add_argument("--split", default="test", choices=["valid", "test"])
    ev.add_argument("--checkpoint", default="best", choices=["best", "last"])
    ev.add_argument("--batch-size", type=int, default=256)
    ev.add_argument("--device", default=None)
    ev.add_argument("--compile", action="store_true", help="fuse the scoring kernel with torch.compile")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    plot = sub.add_parser("plot", help="draw a run's curves and negative diagnostics as a PNG")
    plot.add_argument("run_dirs", nargs="+", help="run directories (several: one line each)")
    plot.add_argument("--output", default=None, help="PNG path (default: RUN_DIR/metrics.png)")
    plot.set_defaults(func=cmd_plot)

    ds = sub.add_parser("datasets", help="list known datasets and where they are")
    ds.add_argument("--root", default=None, help="dataset root (default: $GNNNS_DATA, then the cache)")
    ds.set_defaults(func=cmd_datasets)

    bench = sub.add_parser(
        "bench",
        help="run a reproduction or benchmark script by name; list; readme (the README's results table)",
        description="gnnns bench NAME [options] [-- script arguments]",
    )
    bench.add_argument("name", help="a reproduction or script name (see `gnnns bench list`), list, or readme")
    bench.add_argument("--epochs", type=int, default=None, help="reproductions: train this many epochs instead")
    bench.add_argument("--device", default=None, help="reproductions: cpu, cuda, cuda:1, ...")
    bench.add_argument("--time-budget", type=float, default=None, help="reproductions: stop training after S seconds")
    bench.add_argument("--output", default=None, help="results folder (default: benchmarks/results)")
    bench.add_argument("--registry", default=None, help="registry file (default: benchmarks/reproductions.yaml)")
    bench.add_argument("--readme", default=None, help="readme: the file to update (default: README.md)")
    bench.add_argument(
        "--resume", action="store_true", help="reproductions: continue runs/bench/NAME from its checkpoint"
    )
    bench.set_defaults(func=cmd_bench, extra=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads spin while they wait by default; when other jobs share the cores, that made a
    # default run here 17x slower (54 s vs 3 s an epoch). Waiting passively costs little on a free
    # machine. It must be set before torch loads OpenMP; an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    given, extra = argv, []
    # argparse cannot hand a subcommand's positional the words after `--`, so bench splits them off first.
    if argv[:1] == ["bench"] and "--" in argv:
        cut = argv.index("--")
        given, extra = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(given)
    if args.command == "bench":
        args.extra, args.argv = extra, argv
    # Under torchrun (WORLD_SIZE > 1) rank 0 speaks for all processes; errors name their process.
    rank, processes = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        from gnnns.training.trainer import TrainingInterrupted

        if rank == 0 and isinstance(err, TrainingInterrupted):
            print(f"interrupted: {err}; continue with --resume", file=sys.stderr)
        elif rank == 0:
            print("interrupted; the last checkpoint written is kept (continue with --resume)", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        where = f" (rank {rank})" if processes > 1 else ""
        print(f"gnnns {args.command}{where}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
