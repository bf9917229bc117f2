"""``gnnns bench``: run a reproduction or a benchmark script by name, list them, or update the
README's results tables.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


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
        for key, value in (
            ("epochs", args.epochs),
            ("device", args.device),
            ("time_budget", args.time_budget),
            ("precision", args.precision),
        )
        if value is not None
    }
    if args.name in reproductions:
        if args.extra:
            raise ValueError(f"{args.name} is a reproduction; arguments after -- are for scripts, got {args.extra}")
        command = shlex.join(["gnnns", *args.argv])
        record = bench.run_reproduction(
            reproductions[args.name],
            overrides,
            results,
            command=command,
            resume=args.resume,
            overwrite=args.overwrite,
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
        if overrides or args.output or args.resume or args.overwrite:
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
    commands = _result_commands(results)
    for name in scripts:
        files = _script_results(commands, name)
        found = f"yes ({len(files)})" if files else "no"
        print(f"{name:<32} {'script':<12} {'cpu':<8} {found}")
    return 0


def _result_commands(results: Path) -> dict[Path, str | None]:
    """Every script result file (``repro_*`` left out) with the ``command`` it records, if any."""
    import json

    commands = {}
    for path in sorted(results.glob("*.json")):
        if path.stem.startswith("repro_"):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        command = record.get("command") if isinstance(record, dict) else None
        commands[path] = command if isinstance(command, str) else None
    return commands


def _script_results(commands: dict[Path, str | None], name: str) -> list[Path]:
    """The result files a script wrote: ``NAME.json``, ``NAME_*.json`` (a script's ``--stem`` or
    ``--output`` variants), and any other JSON whose ``command`` runs ``benchmarks/NAME.py``
    (``budget_compare.py`` names its files by dataset)."""
    return [
        path
        for path, command in commands.items()
        if path.stem == name
        or path.stem.startswith(f"{name}_")
        or (command is not None and f"benchmarks/{name}.py" in command.split())
    ]
