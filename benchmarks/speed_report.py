"""One speed report from the speed benchmarks' result files: every figure a ratio to a peer measured in the same run.

Reads (never re-measures) ``benchmarks/results/``:

* ``train_speed.json`` (and ``train_speed_reversed.json``, the same with the order of the sides
  swapped; ``train_speed_100k.json``, on 100,000 of the training triples): training throughput
  against PyKEEN;
* ``one_to_n_speed_fb15k-237[_bce].json``: KvsAll training throughput (softmax or binary
  cross-entropy) against PyKEEN's LCWA loop;
* ``one_to_n_loss.json``: the 1-N losses and embedding dropout against PyTorch's own functions;
* ``candidate_scoring.json``: a negative-sampling step with the negatives scored in chunks against
  the one-shot gather;
* ``negative_scoring.json``: registry configs' negative-sampling steps scoring the batch's distinct
  negatives against gathering each row's;
* ``precision_speed[_intel].json``: training steps of registry configs in bfloat16 autocast against
  float32 (one file per CPU measured: the gain depends on it);
* ``omp_wait.json`` and ``allocator.json``: training steps under OpenMP's default wait policy
  against ``PASSIVE``, and with freed memory kept against glibc's allocator as it is;
* ``eval_speed.json``: the filtered test evaluation against PyKEEN;
* ``encoder_speed.json``: R-GCN and CompGCN steps and epochs against PyKEEN;
* ``sampler_cost.json``: each sampler's cost within a training step, against uniform sampling;
* ``sparse_optimizer.json``: the sparse-table Adam step against ``torch.optim.SparseAdam``;
* ``gnn_sparse_input.json``: a neighbour-sampled R-GCN step with a sparse input table against a
  dense one;
* ``budget_<dataset>.json``: training steps in the same wall-clock budget against PyKEEN and
  PyG's kge module (``budget_compare.py``, which also compares their MRR);

and writes ``benchmarks/results/speed_report.{json,md}``: one row per comparison with the
figures of both sides, the ratio, the machine, the date, the commit and the file it came from.
A missing result file is listed as "not run" with the command that produces it.

    python benchmarks/speed_report.py        # or: gnnns bench speed_report
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, save


def _load(stem: str) -> dict | None:
    path = RESULTS / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _where(data: dict, stem: str) -> dict:
    m = data.get("machine", {})
    return {
        "machine": f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('torch_threads', '?')} threads",
        "date": str(m.get("date", "?"))[:10],
        "commit": m.get("gnnns_commit") or "?",
        "file": f"benchmarks/results/{stem}.json",
    }


def _train(stem: str, label: str) -> list[dict]:
    data = _load(stem)
    if data is None:
        return []
    s, g, p = data["settings"], data["sides"]["gnnns"], data["sides"]["pykeen"]
    setting = (
        f"{data['dataset']}, {s['model']} d={s['dim']}, batch {s['batch_size']} x {s['negatives']} negatives, "
        f"{s['loss']}, {label}"
    )
    return [
        {
            "comparison": "training throughput",
            "peer": "PyKEEN",
            "setting": setting,
            "gnnns": f"{g['triples_per_second']:,.0f} triples/s",
            "peer_figure": f"{p['triples_per_second']:,.0f} triples/s",
            "ratio": data["ratio_gnnns_over_pykeen"]["in_loop"],
            **_where(data, stem),
        }
    ]


def _one_to_n(stem: str) -> list[dict]:
    data = _load(stem)
    if data is None or not data.get("ratio_gnnns_over_pykeen"):
        return []
    s, g, p = data["settings"], data["sides"]["gnnns"], data["sides"]["pykeen"]
    scope = "full epoch" if data["full_epoch"] else f"{data['triples']:,} of the training triples"
    return [
        {
            "comparison": "1-N training throughput",
            "peer": "PyKEEN (LCWA)",
            "setting": f"{data['dataset']}, {s['model']} d={s['dim']}, {s['training']}, batch {s['batch_size']} "
            f"queries, {s['loss']}, {scope}",
            "gnnns": f"{g['queries_per_second']:,.0f} queries/s",
            "peer_figure": f"{p['queries_per_second']:,.0f} queries/s",
            "ratio": data["ratio_gnnns_over_pykeen"],
            **_where(data, stem),
        }
    ]


def _gnn_sparse() -> list[dict]:
    data = _load("gnn_sparse_input")
    if data is None:
        return []
    return [
        {
            "comparison": "neighbour-sampled R-GCN step, sparse input table",
            "peer": "dense input table (gnnns)",
            "setting": f"wikikg2_like({r['scale']:g}), {round(2_500_604 * r['scale']):,} entities, R-GCN d=100, "
            "fan-out 10, 5, 512 x 32",
            "gnnns": f"{1000 * r['sparse']['seconds_per_step']:,.0f} ms",
            "peer_figure": f"{1000 * r['dense']['seconds_per_step']:,.0f} ms",
            "ratio": r["ratio"],
            **_where(data, "gnn_sparse_input"),
        }
        for r in data["rows"]
    ]


def _chunked() -> list[dict]:
    data = _load("candidate_scoring")
    if data is None:
        return []
    return [
        {
            "comparison": "negative-sampling step, negatives scored in chunks",
            "peer": "one-shot gather of the [B, k, d] candidates (gnnns before; PyKEEN's and PyG's way)",
            "setting": f"{r['model']}, {data['entities']:,} entities, 200 real coordinates, "
            f"batch {data['batch_size']:,} x {r['negatives']} negatives",
            "gnnns": f"{r['chunked_ms']:,.1f} ms",
            "peer_figure": f"{r['one_shot_ms']:,.1f} ms",
            "ratio": r["ratio"],
            **_where(data, "candidate_scoring"),
        }
        for r in data["rows"]
    ]


def _distinct() -> list[dict]:
    data = _load("negative_scoring")
    if data is None:
        return []
    return [
        {
            "comparison": "negative-sampling step, the batch's distinct negatives scored (negative_scoring: distinct)",
            "peer": "each row's negatives gathered (negative_scoring: rows, gnnns's default)",
            "setting": f"{r['config']}: {r['dataset']}, {r['setting']}, {r['distinct_per_batch']:,.0f} distinct a side",
            "gnnns": f"{r['distinct_ms']:,.1f} ms",
            "peer_figure": f"{r['rows_ms']:,.1f} ms",
            "ratio": r["ratio"],
            **_where(data, "negative_scoring"),
        }
        for r in data["rows"]
    ]


def _precision(stem: str) -> list[dict]:
    data = _load(stem)
    if data is None:
        return []
    return [
        {
            "comparison": "training step, precision bf16 (bfloat16 autocast)",
            "peer": "the same step in float32 (gnnns's default)",
            "setting": f"{r['config']}: {r['dataset']}, {r['setting']}",
            "gnnns": f"{r['bf16_ms']:,.0f} ms",
            "peer_figure": f"{r['fp32_ms']:,.0f} ms",
            "ratio": r["ratio"],
            **_where(data, stem),
        }
        for r in data["rows"]
    ]


def _omp_wait() -> list[dict]:
    data = _load("omp_wait")
    if data is None:
        return []
    ms = {(r["config"], r["load"], r["policy"]): r["ms_per_step"] for r in data["rows"]}
    return [
        {
            "comparison": "training step, OpenMP's default wait policy (what the gnnns CLI leaves)",
            "peer": "the same step with OMP_WAIT_POLICY=PASSIVE",
            "setting": f"{name}, {'free cores' if load == 'free' else 'one core busy'}",
            "gnnns": f"{ms[name, load, 'default']:,.1f} ms",
            "peer_figure": f"{ms[name, load, 'PASSIVE']:,.1f} ms",
            "ratio": ms[name, load, "PASSIVE"] / ms[name, load, "default"],
            **_where(data, "omp_wait"),
        }
        for name in data["configs"]
        for load in ("free", "busy")
        if (name, load, "default") in ms and (name, load, "PASSIVE") in ms
    ]


def _allocator() -> list[dict]:
    data = _load("allocator")
    if data is None:
        return []
    return [
        {
            "comparison": "training step, freed memory kept (GNNNS_MALLOC=keep, the gnnns CLI's default)",
            "peer": "the same step with glibc's allocator as it is (GNNNS_MALLOC=system)",
            "setting": f"{r['config']}: {r['setting']}; peak memory {r['memory_ratio']:.2f}x",
            "gnnns": f"{r['keep_ms']:,.1f} ms",
            "peer_figure": f"{r['system_ms']:,.1f} ms",
            "ratio": r["speedup"],
            **_where(data, "allocator"),
        }
        for r in data["summary"]
    ]


def _loss_pieces() -> list[dict]:
    data = _load("one_to_n_loss")
    if data is None:
        return []
    return [
        {
            "comparison": "1-N step piece, forward and backward",
            "peer": "PyTorch's own (F.cross_entropy, F.binary_cross_entropy_with_logits, F.dropout)",
            "setting": f"{r['what']}, [{data['queries']:,}, {data['entities']:,}] scores",
            "gnnns": f"{r['gnnns_ms']:,.1f} ms",
            "peer_figure": f"{r['torch_ms']:,.1f} ms",
            "ratio": r["ratio"],
            **_where(data, "one_to_n_loss"),
        }
        for r in data["rows"]
    ]


def _eval() -> list[dict]:
    data = _load("eval_speed")
    if data is None:
        return []
    g, p = data["sides"]["gnnns"], data["sides"]["pykeen"]
    return [
        {
            "comparison": "filtered evaluation",
            "peer": "PyKEEN",
            "setting": f"{data['dataset']}, {data['test_triples']:,} test triples, both sides, the same RotatE weights",
            "gnnns": f"{g['eval_seconds']:,.0f} s",
            "peer_figure": f"{p['eval_seconds']:,.0f} s",
            "ratio": data["speedup_gnnns_over_pykeen"]["eval"],
            **_where(data, "eval_speed"),
        }
    ]


def _encoders() -> list[dict]:
    data = _load("encoder_speed")
    if data is None:
        return []
    rows, s = [], data["settings"]
    for name, label in (("rgcn", "R-GCN"), ("compgcn", "CompGCN")):
        summary = data["summary"][name]
        g, p = summary["sides"]["gnnns"], summary["sides"]["pykeen"]
        rows.append(
            {
                "comparison": f"{label} epoch",
                "peer": "PyKEEN",
                "setting": f"{s['dataset']}, DistMult decoder, d={s['dim']}, full-graph encoder every step, "
                f"batch {s['batch_size']} x {s['negatives']} negatives",
                "gnnns": f"{g['epoch_seconds'] / 60:,.1f} min ({g['step_seconds']:.2f} s/step)",
                "peer_figure": f"{p['epoch_seconds'] / 60:,.1f} min ({p['step_seconds']:.2f} s/step)",
                "ratio": summary["speedup_per_epoch"],
                **_where(data, "encoder_speed"),
            }
        )
    return rows


def _samplers() -> list[dict]:
    data = _load("sampler_cost")
    if data is None:
        return []
    a = data["args"]
    uniform = next(r for r in data["rows"] if r["sampler"] == "uniform")
    rows = []
    for r in data["rows"]:
        if r["sampler"] == "uniform":
            continue
        rows.append(
            {
                "comparison": f"training step with {r['sampler']} negatives",
                "peer": "uniform negatives (gnnns)",
                "setting": f"wikikg2_like({a['scale']:g}), RotatE d=100, {a['batch_size']} x {a['num_negatives']}",
                "gnnns": f"{r['step_ms']:,.1f} ms",
                "peer_figure": f"{uniform['step_ms']:,.1f} ms",
                # The peer here is the cheaper side: report how much of a uniform step's speed is kept.
                "ratio": 1.0 / r["step_ratio"],
                **_where(data, "sampler_cost"),
            }
        )
    return rows


def _sparse() -> list[dict]:
    data = _load("sparse_optimizer")
    if data is None:
        return []
    a, med = data["args"], data["median_seconds"]
    return [
        {
            "comparison": "sparse-table Adam step",
            "peer": "torch.optim.SparseAdam",
            "setting": f"{a['entities']:,} x {a['dim']} table, {a['rows']:,} row reads",
            "gnnns": f"{1000 * med['lazy']:.0f} ms",
            "peer_figure": f"{1000 * med['sparse']:.0f} ms",
            "ratio": data["ratio"],
            **_where(data, "sparse_optimizer"),
        }
    ]


BUDGET_PEERS = {
    "pykeen": "PyKEEN",
    "pyg": "PyG kge (NSSA loop of budget_compare.py)",
    "pykeen-plain": "PyKEEN, DistMult without constraints (run later, merged)",
}


def _budget(stem: str) -> list[dict]:
    data = _load(stem)
    if data is None:
        return []
    s, sides = data["settings"], data["sides"]
    ours = sides.get("gnnns", {}).get("curve")
    if not ours:
        return []
    rows = []
    for name, label in BUDGET_PEERS.items():
        theirs = sides.get(name, {}).get("curve")
        if not theirs:
            continue
        g, p = ours[-1], theirs[-1]
        rows.append(
            {
                "comparison": "training steps in an equal wall-clock budget",
                "peer": label,
                "setting": f"{data['dataset']}, {s['model']} d={s['dim']}, batch {s['batch_size']} x {s['negatives']} "
                f"negatives, {s['loss']}, {data['budget_seconds']:g} s",
                "gnnns": f"{g['triples'] / g['train_seconds']:,.0f} triples/s ({g['steps']:,} steps)",
                "peer_figure": f"{p['triples'] / p['train_seconds']:,.0f} triples/s ({p['steps']:,} steps)",
                "ratio": (g["triples"] / g["train_seconds"]) / (p["triples"] / p["train_seconds"]),
                **_where(data, stem),
            }
        )
    return rows


SOURCES = {
    "train_speed": "python benchmarks/train_speed.py",
    "train_speed_100k": "python benchmarks/train_speed.py --max-triples 100000 --output train_speed_100k",
    "eval_speed": "python benchmarks/eval_speed.py",
    "encoder_speed": "python benchmarks/encoder_speed.py",
    "sampler_cost": "python benchmarks/sampler_cost.py",
    "sparse_optimizer": "python benchmarks/sparse_optimizer.py",
    "gnn_sparse_input": "python benchmarks/gnn_sparse_input.py",
    "one_to_n_speed_fb15k-237": "python benchmarks/one_to_n_speed.py --dataset fb15k-237",
    "one_to_n_speed_fb15k-237_bce": "python benchmarks/one_to_n_speed.py --dataset fb15k-237 --loss bce",
    "one_to_n_loss": "python benchmarks/one_to_n_loss.py",
    "candidate_scoring": "python benchmarks/candidate_scoring.py",
    "negative_scoring": "python benchmarks/negative_scoring.py",
    "precision_speed": "python benchmarks/precision.py speed",
    "precision_speed_intel": "python benchmarks/precision.py speed --output precision_speed_intel",
    "omp_wait": "python benchmarks/omp_wait.py",
    "allocator": "python benchmarks/allocator.py",
    "budget_fb15k-237": "python benchmarks/budget_compare.py --dataset fb15k-237",
    "budget_wn18rr": "python benchmarks/budget_compare.py --dataset wn18rr",
    "budget_fb15k-237_distmult": "python benchmarks/budget_compare.py --dataset fb15k-237 --model distmult "
    "--budget 300 --points 3",
    "budget_wn18rr_distmult": "python benchmarks/budget_compare.py --dataset wn18rr --model distmult "
    "--budget 300 --points 3",
}
BUDGETS = [stem for stem in SOURCES if stem.startswith("budget_")]


def main() -> None:
    rows = [
        *_train("train_speed", "PyKEEN first"),
        *_train("train_speed_reversed", "gnnns first"),
        *_train("train_speed_100k", "PyKEEN first, 100,000 training triples"),
        *_one_to_n("one_to_n_speed_fb15k-237"),
        *_one_to_n("one_to_n_speed_fb15k-237_bce"),
        *_loss_pieces(),
        *_chunked(),
        *_distinct(),
        *_precision("precision_speed"),
        *_precision("precision_speed_intel"),
        *_omp_wait(),
        *_allocator(),
        *[row for stem in BUDGETS for row in _budget(stem)],
        *_eval(),
        *_encoders(),
        *_sparse(),
        *_gnn_sparse(),
        *_samplers(),
    ]
    missing = {stem: cmd for stem, cmd in SOURCES.items() if _load(stem) is None}
    lines = [
        "# Speed report: gnnns against its peers, each ratio measured in one run",
        "",
        "Gathered by `python benchmarks/speed_report.py` from the result files named in each row (nothing is "
        "re-measured here). *Ratio*: the peer's time over gnnns's (above 1: gnnns is faster); for the sampler "
        "rows, the share of a uniform-negative step's speed that a step with that sampler keeps. All runs on "
        "the machine named in the row, whose 2 cores were shared with other jobs.",
        "",
        "| comparison | setting | gnnns | peer | peer's figure | ratio | machine | date | commit | result |",
        "|---|---|---:|---|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['comparison']} | {r['setting']} | {r['gnnns']} | {r['peer']} | {r['peer_figure']} | "
            f"**{r['ratio']:.2f}×** | {r['machine']} | {r['date']} | {r['commit']} | "
            # The report sits beside the files it links.
            f"[{Path(r['file']).name}]({Path(r['file']).name}) |"
        )
    if missing:
        lines += ["", "Not run yet:", "", *[f"- `{stem}`: `{cmd}`" for stem, cmd in missing.items()]]
    lines.append("")
    save("speed_report", {"rows": rows, "missing": missing}, "\n".join(lines))


if __name__ == "__main__":
    main()
