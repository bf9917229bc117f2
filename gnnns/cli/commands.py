"""``gnnns train``, ``evaluate``, ``plot`` and ``datasets``: one handler per subcommand, each taking
the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gnnns.cli.train_flags import _config_from_args
from gnnns.config import RunConfig


def cmd_train(args: argparse.Namespace) -> int:
    from gnnns.training.distributed import process_group
    from gnnns.training.run import train

    if args.resume and not args.output:
        raise ValueError("--resume needs --output RUN_DIR, the run to continue")
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the run in --output and --overwrite deletes it: pass one")
    config = _config_from_args(args)
    # Under torchrun every process runs this; the group lets them agree on one run directory.
    with process_group(config.device) as distributed:
        if config.output is None:
            dataset = Path(config.dataset).name or "dataset"
            name = f"{dataset}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
            config.output = str(Path("runs") / distributed.broadcast(name))
        result = train(config, resume=args.resume, overwrite=args.overwrite)
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
