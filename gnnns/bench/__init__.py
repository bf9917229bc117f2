"""``gnnns bench``: published-result reproductions and benchmark scripts by name, and the README's results table.

A reproduction is one entry of ``benchmarks/reproductions.yaml``: a plain run config
(:class:`~gnnns.config.RunConfig` fields) and the published figures it should reach. Running it
trains the config and writes ``benchmarks/results/repro_<name>.json``; the README's results table
is rendered from those files alone, so every figure in it points to a file a command produced.
The comparison and speed scripts ``benchmarks/<name>.py`` run by name too.
"""

from gnnns.bench.budget_table import BUDGET_COLUMNS, BUDGET_SIDES, render_budget_table
from gnnns.bench.readme import BUDGET_END, BUDGET_START, END, START, update_readme
from gnnns.bench.record import (
    TOLERANCE,
    _record,
    bench_command,
    git_commit,
    load_result,
    machine,
    reached,
    relative,
    run_kind,
)
from gnnns.bench.registry import (
    HARDWARE,
    REGISTRY,
    REQUIRED,
    RESERVED,
    RESULTS,
    _check_entry,
    find_root,
    load_registry,
    run_script,
    scripts,
)
from gnnns.bench.reproduce import run_reproduction
from gnnns.bench.results_table import (
    _NOT_COMPARED,
    COLUMNS,
    _figures,
    _machine_text,
    config_changes,
    format_seconds,
    render_table,
)

__all__ = [
    "BUDGET_COLUMNS",
    "BUDGET_END",
    "BUDGET_SIDES",
    "BUDGET_START",
    "COLUMNS",
    "END",
    "HARDWARE",
    "REGISTRY",
    "REQUIRED",
    "RESERVED",
    "RESULTS",
    "START",
    "TOLERANCE",
    "_NOT_COMPARED",
    "_check_entry",
    "_figures",
    "_machine_text",
    "_record",
    "bench_command",
    "config_changes",
    "find_root",
    "format_seconds",
    "git_commit",
    "load_registry",
    "load_result",
    "machine",
    "reached",
    "relative",
    "render_budget_table",
    "render_table",
    "run_kind",
    "run_reproduction",
    "run_script",
    "scripts",
    "update_readme",
]
