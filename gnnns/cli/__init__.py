"""``gnnns train | evaluate | plot | datasets | bench``: the command line.

The parser and :func:`main` live here; ``train``'s flags come from
:mod:`gnnns.cli.train_flags`, the handlers from :mod:`gnnns.cli.commands` and
:mod:`gnnns.cli.bench_command`.
"""

from __future__ import annotations

import argparse
import os
import sys

from gnnns.cli.bench_command import _bench_list, cmd_bench
from gnnns.cli.commands import _not_here, cmd_datasets, cmd_evaluate, cmd_plot, cmd_train
from gnnns.cli.train_flags import HELP, _add_train_flags, _config_from_args, _key_values
from gnnns.training.allocator import apply_setting

__all__ = [
    "HELP",
    "_add_train_flags",
    "_bench_list",
    "_config_from_args",
    "_key_values",
    "_not_here",
    "build_parser",
    "cmd_bench",
    "cmd_datasets",
    "cmd_evaluate",
    "cmd_plot",
    "cmd_train",
    "main",
]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


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
    ev.add_argument("--batch-size", type=_positive_int, default=256, help="queries scored at a time")
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
    bench.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default=None,
        help="reproductions: training precision (default: the config's, fp32); the results table shows bf16",
    )
    bench.add_argument("--output", default=None, help="results folder (default: benchmarks/results)")
    bench.add_argument("--registry", default=None, help="registry file (default: benchmarks/reproductions.yaml)")
    bench.add_argument("--readme", default=None, help="readme: the file to update (default: README.md)")
    bench.add_argument(
        "--resume", action="store_true", help="reproductions: continue runs/bench/NAME from its checkpoint"
    )
    bench.add_argument(
        "--overwrite",
        action="store_true",
        help="reproductions: start afresh even if runs/bench/NAME holds an unfinished run (deleting it)",
    )
    bench.set_defaults(func=cmd_bench, extra=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP's wait policy is left to the user (README, "Speed"): on free cores its default, a
    # short spin before sleeping, keeps small steps fast (a LibKGE TransE FB15k-237 step 2.8x
    # faster than with OMP_WAIT_POLICY=PASSIVE), while on a core another job holds PASSIVE is
    # the faster (1.7x); benchmarks/results/omp_wait.md.
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
        # Large tensors reuse the memory the last step freed instead of faulting in fresh pages
        # (gnnns.training.allocator; GNNNS_MALLOC=system opts out).
        apply_setting()
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
