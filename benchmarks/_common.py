"""Helpers shared by the benchmark scripts: data, PyKEEN factories, machine info, result tables.

Not part of the gnnns package. Data is read from ``$GNNNS_DATA`` (default ``../shared/datasets``
relative to the repository root) and never downloaded.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
DATASET = "fb15k-237"
SPLITS = ("train", "valid", "test")
if str(REPO) not in sys.path:  # use this checkout's gnnns even when it is not pip-installed
    sys.path.insert(1, str(REPO))


def data_root() -> Path:
    """The dataset root: ``$GNNNS_DATA`` or ``<repo>/../shared/datasets``."""
    return Path(os.environ.get("GNNNS_DATA", REPO.parent / "shared" / "datasets")).resolve()


def _open_text(path: Path):
    return gzip.open(path, "rt", newline=None) if path.suffix == ".gz" else open(path, newline=None)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{stem}[.gz] not in {folder}")


def _read_dict(path: Path) -> dict[str, int]:
    out = {}
    with _open_text(path) as f:
        for line in f:
            line = line.strip()
            if line:
                idx, name = line.split("\t")
                out[name] = int(idx)
    return out


def _read_minimal(folder: Path) -> dict:
    """Fallback reader (used only while ``gnnns.data.load_dataset`` is missing)."""
    ent = _read_dict(_find(folder, "entities.dict"))
    rel = _read_dict(_find(folder, "relations.dict"))
    splits = {}
    for split in SPLITS:
        rows = []
        with _open_text(_find(folder, f"{split}.txt")) as f:
            for line in f:
                parts = line.strip().split("\t")
                if len(parts) == 3:
                    rows.append((ent[parts[0]], rel[parts[1]], ent[parts[2]]))
        splits[split] = torch.tensor(rows, dtype=torch.long).view(-1, 3)
    names_e = [n for n, _ in sorted(ent.items(), key=lambda kv: kv[1])]
    names_r = [n for n, _ in sorted(rel.items(), key=lambda kv: kv[1])]
    return dict(**splits, entity_names=names_e, relation_names=names_r, reader="benchmarks minimal reader")


def load_kg(name: str = DATASET) -> dict:
    """Triples and names as plain tensors/lists, through ``gnnns.data.load_dataset`` when available."""
    try:
        from gnnns.data import load_dataset
    except ImportError:
        return _read_minimal(data_root() / name)
    kg = load_dataset(name, root=data_root(), download=False)
    return dict(
        train=kg.train,
        valid=kg.valid,
        test=kg.test,
        entity_names=list(kg.entity_names),
        relation_names=list(kg.relation_names),
        reader="gnnns.data.load_dataset",
    )


def write_subset_root(
    kg: dict,
    folder: Path,
    train: torch.Tensor | None = None,
    test: torch.Tensor | None = None,
    name: str = DATASET,
) -> Path:
    """Write a dataset root whose ``name`` has the same id mapping and the given train/test subsets.

    Used to time a prefix of an epoch / a subset of the test set through the gnnns CLI, which reads
    ``$GNNNS_DATA``. Entity/relation dictionaries are copied, so the id space (and model size) is unchanged.
    """
    src = data_root() / name
    dst = folder / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith(("entities.dict", "relations.dict")) or f.name.startswith("README"):
            shutil.copy(f, dst / f.name)
    chosen = {"train": train, "valid": None, "test": test}
    for split in SPLITS:
        triples = chosen[split] if chosen[split] is not None else kg[split]
        e, r = kg["entity_names"], kg["relation_names"]
        with gzip.open(dst / f"{split}.txt.gz", "wt", newline="") as f:
            for h, rel, t in triples.tolist():
                f.write(f"{e[h]}\t{r[rel]}\t{e[t]}\r\n")
    return folder


def triples_factory(triples: torch.Tensor, kg: dict):
    """A PyKEEN TriplesFactory over the gnnns id mapping (all entities/relations, even if unused)."""
    from pykeen.triples import TriplesFactory

    return TriplesFactory(
        mapped_triples=triples,
        entity_to_id={n: i for i, n in enumerate(kg["entity_names"])},
        relation_to_id={n: i for i, n in enumerate(kg["relation_names"])},
    )


def gnnns_cmd() -> list[str]:
    """How to call the gnnns CLI: the console script if installed, else ``python -m gnnns.cli``."""
    exe = shutil.which("gnnns")
    return [exe] if exe else [sys.executable, "-m", "gnnns.cli"]


def shown_command(cmd: list[str]) -> str:
    """``cmd`` as a line to paste into a shell at the repository root: the interpreter as
    ``python``, the gnnns console script as ``gnnns``, and paths inside this checkout (also after
    ``--flag=``) relative to it, so results files do not record where the checkout happened to be."""
    gnnns = shutil.which("gnnns")
    words = []
    for word in cmd:
        if word == sys.executable:
            word = "python"
        elif gnnns is not None and word == gnnns:
            word = "gnnns"
        else:
            flag, eq, value = word.rpartition("=") if word.startswith("--") else ("", "", word)
            if Path(value).is_absolute() and Path(value).resolve().is_relative_to(REPO):
                word = flag + eq + Path(value).resolve().relative_to(REPO).as_posix()
        words.append(word)
    return shlex.join(words)


def this_command() -> str:
    """The command line that started this benchmark script, as :func:`shown_command` writes it."""
    return shown_command(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def machine_info() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = dict(
        date=_dt.datetime.now().isoformat(timespec="seconds"),
        cpu=cpu,
        cores=os.cpu_count(),
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        python=platform.python_version(),
        loadavg_at_start=load,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
    )
    try:
        import pykeen

        info["pykeen"] = pykeen.get_version()
    except ImportError:
        info["pykeen"] = None
    try:
        info["gnnns_commit"] = (
            subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            or "uncommitted"
        )
    except OSError:
        info["gnnns_commit"] = None
    return info


def child_env(root: Path | None = None) -> dict:
    """The environment for child processes, with ``GNNNS_DATA`` set explicitly (``root`` or :func:`data_root`)."""
    # Both sides get the same OpenMP wait policy: PASSIVE, because this machine is shared and spinning
    # threads lose most when other jobs take a core (results/omp_wait.md); an explicit setting wins.
    # Both get glibc's allocator as it is: the gnnns command line would otherwise keep freed memory
    # (GNNNS_MALLOC=keep, results/allocator.md), which PyKEEN and PyG do not do on their own.
    return {
        "OMP_WAIT_POLICY": "PASSIVE",
        "GNNNS_MALLOC": "system",
        **os.environ,
        "GNNNS_DATA": str(root or data_root()),
    }


def run_worker(args: list[str], env: dict | None = None) -> tuple[dict, float]:
    """Run ``python <script> args`` in a fresh process; return its last stdout JSON line and wall seconds."""
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env or child_env(), cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"worker {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(last), wall


def registry_trainer(name: str, **overrides):
    """``(config, kg, trainer)`` for the registry config ``benchmarks/configs/NAME.yaml``, seeded, no run folder."""
    from gnnns.config import RunConfig, read_config_file
    from gnnns.data import load_dataset
    from gnnns.training.run import build_trainer, seed_everything

    values = read_config_file(REPO / "benchmarks" / "configs" / f"{name}.yaml")
    config = RunConfig.from_dict({**values, "progress": False, **overrides})
    kg = load_dataset(config.dataset)
    seed_everything(0)
    return config, kg, build_trainer(config, kg, None)


def describe(config) -> str:
    """A registry config's model, dimension, training (or negatives per positive) and batch, for a table."""
    if config.training == "negative":
        heads = config.num_head_negatives or config.num_negatives
        sides = (
            f"{heads} + {config.num_negatives} negatives"
            if config.negative_sides == "both"
            else f"{config.num_negatives} negatives"
        )
        return f"{config.model} d={config.dim}, {sides}, batch {config.batch_size}"
    return f"{config.model} d={config.dim}, {config.training}, batch {config.batch_size}"


def endless(loader):
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def timed_steps(name: str, seconds: float, threads: int) -> dict:
    """Mean time of the registry config's own training steps (sampling, diagnostics, loss,
    backward, optimizer) over ``seconds`` after 3 warm-up steps, and the process's peak resident
    memory; for a fresh process whose environment is what is being measured."""
    import resource
    import time

    torch.set_num_threads(threads)
    config, _, trainer = registry_trainer(name)
    batches = endless(trainer.loader)
    for _ in range(3):
        trainer.step(next(batches))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.step(next(batches))
        steps += 1
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "steps": steps,
        "seconds": elapsed,
        "ms_per_step": 1000 * elapsed / steps,
        "peak_rss_mib": peak_mib,
        "described": describe(config),
    }


def child_step_timing(measure=None) -> bool:
    """In a ``SCRIPT _child NAME --seconds S --threads T`` process: print :func:`timed_steps`'s
    JSON line (through ``measure(name, seconds, threads)`` when given) and return True."""
    import argparse

    if sys.argv[1:2] != ["_child"]:
        return False
    parser = argparse.ArgumentParser()
    parser.add_argument("_child")
    parser.add_argument("name")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--threads", type=int, required=True)
    a = parser.parse_args()
    print(json.dumps((measure or timed_steps)(a.name, a.seconds, a.threads)))
    return True


def save(stem: str, payload: dict, markdown: str) -> None:
    """Write ``results/STEM.{json,md}``; the JSON gets the command line that made it (``command``)
    unless the payload names one, so ``gnnns bench list`` can tell which script wrote the file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "command" not in payload:
        payload = {**payload, "command": this_command()}
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown)
    print(markdown)


def fmt(x, digits: int = 1) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def machine_line(m: dict) -> str:
    """The markdown line naming the machine, the versions and the load during a measurement."""
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), PyKEEN "
        f"{m['pykeen']}, Python {m['python']}, gnnns {m['gnnns_commit']}, {m['date']}; load average "
        f"{_loadavg(m['loadavg_at_start'])} at start, {_loadavg(m['loadavg_at_end'])} at end (the machine is shared); "
        f"OMP_WAIT_POLICY={m.get('omp_wait_policy', 'unset: PyKEEN spinning, gnnns passive')} for both sides."
    )


def alternating_footer(p: dict) -> list[str]:
    """The markdown lines closing a one-process benchmark whose two sides alternate: the machine
    (``p["machine"]``, from :func:`machine_info` with ``loadavg_at_end`` added) and ``p["command"]``."""
    m = p["machine"]
    return [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), gnnns "
        f"{m['gnnns_commit']}, {m['date']}; load average {m['loadavg_at_start'][0]:.1f} at start, "
        f"{m['loadavg_at_end'][0]:.1f} at end (the machine is shared; the sides alternate, so both see its load).",
        "",
        f"Command: `{p['command']}`",
        "",
    ]


def block_arguments(parser, configs: list[str], blocks: int) -> None:
    """The options of a one-trainer benchmark that alternates blocks of registry configs' steps."""
    parser.add_argument("--configs", nargs="+", default=configs, help="registry config names (benchmarks/configs)")
    parser.add_argument("--blocks", type=int, default=blocks, help="blocks of steps per way")
    parser.add_argument("--block", type=int, default=5, help="steps per block")
    parser.add_argument("--threads", type=int, default=2)


def blocks_footer(p: dict) -> list[str]:
    """The markdown lines closing such a benchmark: its blocks, threads and allocator, then
    :func:`alternating_footer`."""
    kept = p["machine"].get("freed_memory_kept")
    setting = {True: "freed memory kept (the CLI's default)", False: "glibc's allocator as it is"}.get(kept, "")
    setting = setting or "allocator setting not recorded (glibc's as it is)"
    line = f"{p['blocks']} blocks of {p['block']} steps a way, {p['threads']} threads, {setting}."
    return ["", line, *alternating_footer(p)]


def command_lines(sides: dict) -> list[str]:
    """Markdown lines listing the command each side ran."""
    return ["Commands:", "", *[f"- {name}: `{s['command']}`" for name, s in sides.items() if "command" in s]]


def _loadavg(x) -> str:
    return "/".join(f"{v:.1f}" for v in x) if x else "n/a"
