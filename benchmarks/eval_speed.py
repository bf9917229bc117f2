"""Filtered evaluation time of gnnns vs PyKEEN on FB15k-237 test, RotatE d=200, same run.

Both sides rank the true head and the true tail of every test triple against all 14,541 entities,
filtered by train ∪ valid ∪ test, with ties at the mean of the optimistic and pessimistic rank
(PyKEEN's "realistic" rank). Each side runs in its own fresh process; we report the evaluation
seconds (inside the process) and the process wall time.

The model is a gnnns RotatE checkpoint: ``--run-dir`` (e.g. the one ``train_speed.py`` keeps), or,
by default, one trained here for one epoch on 5,000 training triples. PyKEEN evaluates its stock
``RotatE`` (d=200) with the same weights loaded (entity ``re + i·im``, relation ``e^{iθ}``); time
does not depend on the weights. Note PyKEEN's RotatE scores with the L2 norm of ``h∘r - t`` while
gnnns (like the RotatE paper) uses the sum of complex moduli (L1), so for the correctness
cross-check PyKEEN also evaluates the same weights with an L1 interaction defined here, on
``--check-test`` triples, and both-sides MRRs must agree (to ~1e-3).

``--max-test N`` evaluates a random subset of N test triples on both sides (the filter still uses
all of train and valid); evaluation time is linear in the number of test triples.

    GNNNS_DATA=/work/shared/datasets python benchmarks/eval_speed.py --max-test 2000
    GNNNS_DATA=/work/shared/datasets python benchmarks/eval_speed.py            # full test, ~20 min+

Writes ``benchmarks/results/eval_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
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

DIM = 200


def test_subset(test: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """The first ``n`` test triples of a seeded permutation (the same on both sides; nested in ``n``)."""
    if not n or n >= len(test):
        return test
    g = torch.Generator().manual_seed(seed)
    return test[torch.randperm(len(test), generator=g)[:n]]


def export_weights(run_dir: Path, out: Path) -> None:
    """gnnns RotatE checkpoint -> complex entity [E, d] and unit-complex relation [R, d] tensors."""
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    state = ckpt.get("model", ckpt)
    ent = state["encoder.entity.weight"]  # [E, 2d]: [re | im]
    phase = state["encoder.relation.weight"]  # [R, d]: theta
    re, im = ent.chunk(2, dim=-1)
    torch.save(dict(entity=torch.complex(re, im), relation=torch.polar(torch.ones_like(phase), phase)), out)


class _L1RotatE(torch.nn.Module):
    """Score ``-sum_i |h_i r_i - t_i|`` on complex tensors (RotatE paper / gnnns), for the cross-check."""

    def forward(self, h, r, t):
        return -(h * r - t).abs().sum(dim=-1)


def pykeen_worker(args) -> None:
    """Runs inside a fresh process; prints one JSON line."""
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.models import RotatE

    kg = load_kg()
    test = test_subset(kg["test"], args.max_test, args.seed)
    tf = triples_factory(kg["train"], kg)
    model = RotatE(triples_factory=tf, embedding_dim=DIM, random_seed=args.seed)
    if args.weights:
        w = torch.load(args.weights)
        with torch.no_grad():
            model.entity_representations[0]._embeddings.weight.copy_(
                torch.view_as_real(w["entity"]).view(len(w["entity"]), -1)
            )
            model.relation_representations[0]._embeddings.weight.copy_(
                torch.view_as_real(w["relation"]).view(len(w["relation"]), -1)
            )
    if args.l1:
        from pykeen.nn.modules import RotatEInteraction

        class L1(RotatEInteraction):
            def forward(self, h, r, t):
                return _L1RotatE()(h, r, t)

        model.interaction = L1()
    model.eval()
    start = time.perf_counter()
    result = RankBasedEvaluator(filtered=True).evaluate(
        model,
        test,
        additional_filter_triples=[kg["train"], kg["valid"]],
        batch_size=args.pykeen_batch_size,
        use_tqdm=False,
    )
    seconds = time.perf_counter() - start
    metrics = {
        side: dict(
            mrr=float(result.get_metric(f"{side}.realistic.inverse_harmonic_mean_rank")),
            hits_at_10=float(result.get_metric(f"{side}.realistic.hits_at_10")),
        )
        for side in ("both", "head", "tail")
    }
    print(
        json.dumps(
            dict(
                test_triples=len(test),
                eval_seconds=seconds,
                metrics=metrics,
                interaction="L1 (cross-check)" if args.l1 else "stock RotatE (L2)",
            )
        )
    )


def _entity_weight_check(weights: Path) -> None:
    """PyKEEN stores complex embeddings as [n, d, 2] real views; make sure the copy round-trips."""
    w = torch.load(weights)
    assert w["entity"].dtype == torch.complex64 and w["relation"].abs().sub(1).abs().max() < 1e-5


def gnnns_evaluate(run_dir: Path, kg: dict, test: torch.Tensor, extra: list[str]) -> dict:
    """``gnnns evaluate RUN_DIR --split test`` with a data root whose test split is ``test``."""
    with tempfile.TemporaryDirectory(prefix="gnnns_bench_") as tmp:
        env = child_env() if len(test) == len(kg["test"]) else child_env(write_subset_root(kg, Path(tmp), test=test))
        cmd = [*gnnns_cmd(), "evaluate", str(run_dir), "--split", "test", "--no-progress", *extra]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"gnnns evaluate failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    report = json.loads((run_dir / "evaluation_test.json").read_text())
    m = report.get("metrics", report)
    both = m.get("both", m)
    metrics = dict(both=dict(mrr=both.get("mrr"), hits_at_10=both.get("hits@10", both.get("hits_at_10"))))
    for side in ("head", "tail"):
        if isinstance(m.get(side), dict):
            metrics[side] = dict(mrr=m[side].get("mrr"), hits_at_10=m[side].get("hits@10", m[side].get("hits_at_10")))
    return dict(
        command=shown_command(cmd),
        process_seconds=wall,
        eval_seconds=report.get("seconds"),
        test_triples=len(test),
        metrics=metrics,
    )


def brief_train(run_dir: Path, kg: dict, n: int, seed: int) -> str:
    """One gnnns epoch on ``n`` training triples, to have a checkpoint (eval time does not depend on it)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    g = torch.Generator().manual_seed(seed)
    train = kg["train"][torch.randperm(len(kg["train"]), generator=g)[:n]]
    cmd = [
        *gnnns_cmd(),
        "train",
        "--dataset",
        DATASET,
        "--model",
        "rotate",
        "--dim",
        str(DIM),
        "--sampler",
        "uniform",
        "--num-negatives",
        "128",
        "--loss",
        "nssa",
        "--margin",
        "9.0",
        "--adversarial-temperature",
        "1.0",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--batch-size",
        "512",
        "--epochs",
        "1",
        "--eval-every",
        "-1",
        "--seed",
        str(seed),
        "--output",
        str(run_dir),
        "--overwrite",
        "--no-compile",
        "--no-progress",
    ]
    with tempfile.TemporaryDirectory(prefix="gnnns_bench_") as tmp:
        env = child_env(write_subset_root(kg, Path(tmp), train=train))
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO)
    return shown_command(cmd) + f"  (GNNNS_DATA: a copy with {n:,} random training triples)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-test", type=int, default=None, help="evaluate a random subset of N test triples")
    parser.add_argument(
        "--check-test",
        type=int,
        default=1000,
        help="test triples for the same-weights MRR cross-check (0: skip)",
    )
    parser.add_argument("--run-dir", default=None, help="gnnns run with checkpoint.pt (default: train briefly)")
    parser.add_argument("--order", default="pykeen,gnnns", help="comma-separated sides, run in this order")
    parser.add_argument("--pykeen-batch-size", type=int, default=32, help="PyKEEN evaluation batch size")
    parser.add_argument("--gnnns-args", default="", help="extra arguments for `gnnns evaluate`, e.g. '--compile'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="eval_speed", help="results stem under benchmarks/results/")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--worker", choices=["pykeen"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--l1", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return pykeen_worker(args)
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.output}.json").read_text())
        return save(args.output, payload, markdown(payload))

    machine = machine_info()
    kg = load_kg()
    test = test_subset(kg["test"], args.max_test, args.seed)
    if args.run_dir:
        run_dir, model_note = Path(args.run_dir).resolve(), f"checkpoint of {args.run_dir}"
    else:
        run_dir = REPO / "runs" / "benchmarks" / "eval_gnnns"
        model_note = brief_train(run_dir, kg, 5000, args.seed)
    tmp = tempfile.TemporaryDirectory(prefix="gnnns_bench_")
    weights = Path(tmp.name) / "weights.pt"
    export_weights(run_dir, weights)
    _entity_weight_check(weights)

    def pykeen(n: int | None, l1: bool = False) -> dict:
        worker = [
            str(Path(__file__).resolve()),
            "--worker",
            "pykeen",
            "--seed",
            str(args.seed),
            "--weights",
            str(weights),
            "--pykeen-batch-size",
            str(args.pykeen_batch_size),
        ]
        worker += (["--max-test", str(n)] if n else []) + (["--l1"] if l1 else [])
        out, wall = run_worker(worker)
        shown = [w if w != str(weights) else "WEIGHTS.pt" for w in worker]  # exported from RUN_DIR
        return dict(out, process_seconds=wall, command=shown_command(["python", *shown]))

    extra = shlex.split(args.gnnns_args)
    sides: dict[str, dict] = {}
    for side in args.order.split(","):
        try:
            sides[side] = pykeen(args.max_test) if side == "pykeen" else gnnns_evaluate(run_dir, kg, test, extra)
        except (RuntimeError, OSError) as err:
            sides[side] = dict(error=str(err)[-2000:])
        print(side, json.dumps(sides[side]), flush=True)
    check = {}
    if args.check_test:
        n_check = min(args.check_test, len(test))
        check_test = test_subset(kg["test"], n_check, args.seed)
        try:
            same = n_check == len(test) and "metrics" in sides.get("gnnns", {})
            g = sides["gnnns"] if same else gnnns_evaluate(run_dir, kg, check_test, extra)
            p = pykeen(n_check if n_check < len(kg["test"]) else None, l1=True)
            check = dict(
                test_triples=n_check,
                gnnns=g["metrics"],
                pykeen_l1=p["metrics"],
                abs_diff={
                    s: abs(g["metrics"][s]["mrr"] - p["metrics"][s]["mrr"]) for s in g["metrics"] if s in p["metrics"]
                },
            )
        except (RuntimeError, OSError, KeyError) as err:
            check = dict(error=str(err)[-2000:])
        print("check", json.dumps(check), flush=True)
    tmp.cleanup()
    ratio = {}
    if all("eval_seconds" in sides.get(k, {}) for k in ("gnnns", "pykeen")):
        g, p = sides["gnnns"], sides["pykeen"]
        ratio = dict(
            eval=p["eval_seconds"] / g["eval_seconds"] if g["eval_seconds"] else None,
            process=p["process_seconds"] / g["process_seconds"],
        )
    import os

    machine["loadavg_at_end"] = os.getloadavg()
    payload = dict(
        machine=machine,
        dataset=DATASET,
        test_triples=len(test),
        full_test=len(test) == len(kg["test"]),
        model=model_note,
        pykeen_batch_size=args.pykeen_batch_size,
        order=args.order,
        sides=sides,
        speedup_gnnns_over_pykeen=ratio,
        same_weights_check=check,
    )
    save(args.output, payload, markdown(payload))


def markdown(p: dict) -> str:
    m = p["machine"]
    n = p["test_triples"]
    what = (
        f"the full test split ({n:,} triples)"
        if p["full_test"]
        else f"a random subset of {n:,} of the 20,466 test triples (times scale linearly with the number of test "
        "triples; multiply by 20,466 / n for the full split)"
    )
    lines = [
        "# Filtered evaluation time: gnnns vs PyKEEN (FB15k-237 test, RotatE d=200)\n",
        f"Both sides rank heads and tails of {what} against all 14,541 entities, filtered by train ∪ valid ∪ "
        "test; MRR is both-sides, ties at the mean rank (PyKEEN 'realistic'). Same weights on both sides; "
        f"PyKEEN's stock RotatE scores with the L2 norm (gnnns: sum of moduli), hence its different MRR. "
        f"PyKEEN evaluation batch size {p['pykeen_batch_size']}.\n",
        "| side | evaluation s | process s | both-sides MRR | Hits@10 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in p["sides"].items():
        if "error" in s:
            lines.append(f"| {name} | failed: {s['error'].strip().splitlines()[-1][:80]} | | | |")
            continue
        b = s["metrics"]["both"]
        lines.append(
            f"| {name} | {fmt(s['eval_seconds'])} | {fmt(s['process_seconds'])} | {fmt(b['mrr'], 4)} | "
            f"{fmt(b['hits_at_10'], 4)} |"
        )
    r = p["speedup_gnnns_over_pykeen"]
    if r:
        lines.append(
            f"| **speed-up gnnns vs PyKEEN** (PyKEEN s / gnnns s) | **{r['eval']:.1f}×** | "
            f"**{r['process']:.1f}×** | | |"
        )
    c = p["same_weights_check"]
    lines.append("")
    if "abs_diff" in c:
        lines += [
            f"Correctness cross-check, same gnnns weights, {c['test_triples']:,} test triples, PyKEEN with an L1 "
            "RotatE interaction (sum of complex moduli, as gnnns):",
            "",
            "| MRR | gnnns | PyKEEN (L1) | abs. difference |",
            "|---|---:|---:|---:|",
        ]
        for s, d in c["abs_diff"].items():
            lines.append(f"| {s} | {c['gnnns'][s]['mrr']:.5f} | {c['pykeen_l1'][s]['mrr']:.5f} | {d:.1e} |")
        lines.append("")
    elif c:
        lines += [f"Cross-check failed: {c['error'].strip().splitlines()[-1][:200]}", ""]
    lines += [
        machine_line(m),
        f"Order: {p['order']} (sequential, each in a fresh process). Model: {p['model']}.",
        "",
        *command_lines(p["sides"]),
    ]
    lines.append(
        "- PyKEEN worker API: `RankBasedEvaluator(filtered=True).evaluate(model, test, "
        "additional_filter_triples=[train, valid], batch_size=...)`, metric "
        "`both.realistic.inverse_harmonic_mean_rank`."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
