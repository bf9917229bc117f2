"""A negative-sampling training step with each row's negatives gathered, the batch's distinct ones scored, or
every negative scored as a triple of its own.

``KGCModel(negative_scoring="rows")`` gathers each positive's ``k`` candidates (``[B, k, d]``) and
matches them against its query; ``"distinct"`` gathers the batch's ``U`` distinct candidates once,
scores every query against all of them with the decoder's ``match_all`` (one matrix product for
bilinear decoders and L2 TransE) and picks each row's ``k`` scores, as LibKGE's ``batch``
implementation does (which LibKGE uses for more than 30 negatives, except for TransE); ``"triple"``
builds a query of its own for every negative (``[B, k, d]`` queries), LibKGE's ``triple``
implementation, which its TransE uses (with neither per-lookup dropout nor a decoder that draws
its own masks, as ConvE's does in training, triple is rows scoring and its column times rows).
For registry configs on their own datasets, one trainer takes blocks of ``--block`` steps each
way, rotating the order (rows distinct triple, distinct triple rows, ...), and the script reports
the mean step time of each (sampling, loss, backward and optimizer; the negatives' diagnostics as
the config runs them) and the ratios.

With per-lookup embedding dropout (the LibKGE configs) the two are not the same computation: rows
drop each looked-up candidate row apart, distinct drops each distinct candidate once per batch
(LibKGE's behaviour), and triple drops the query's rows apart for every negative as well. Without
dropout they give the same scores up to rounding
(``tests/models/test_kgc_model.py``). Freed memory is kept as the ``gnnns`` command keeps it
(``GNNNS_MALLOC``, default ``keep``; ``benchmarks/allocator.py``).

    python benchmarks/negative_scoring.py

Writes ``benchmarks/results/negative_scoring.{json,md}`` (``--stem`` names another file), for example
``python benchmarks/negative_scoring.py --configs libkge-transe-wn18rr --stem negative_scoring_transe_wn18rr``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from _common import (
    RESULTS,
    block_arguments,
    blocks_footer,
    describe,
    endless,
    machine_info,
    registry_trainer,
    save,
    this_command,
)

CONFIGS = [
    "libkge-transe-fb15k237",  # batch 128, 61 + 192 negatives, d = 128, 14,541 entities
    "libkge-transe-wn18rr",  # batch 128, 70 + 158 negatives, d = 512, 40,943 entities
    "libkge-distmult-fb15k237",  # batch 1024, 255 + 402 negatives, d = 256
    "libkge-complex-fb15k237",  # batch 1024, 529 + 1000 negatives, d = 2 x 128
    "umls-rotate-sans",  # batch 256, 64 negatives, 135 entities, no dropout
]
WAYS = ("rows", "distinct", "triple")


def distinct_per_row(trainer, batches, steps: int = 20) -> float:
    """Mean distinct candidates per side of a batch over ``steps`` sampled batches, for the table."""
    counts = []
    for _ in range(steps):
        positives = next(batches).to(trainer.device)
        if trainer.negative_sides == "both":
            sides = trainer.sampler.both_sides(positives, trainer.num_negatives, trainer.num_head_negatives)
        else:
            sides = (trainer.sampler(positives, trainer.num_negatives),)
        counts += [negatives.entities.unique().numel() for negatives in sides]
    return sum(counts) / len(counts)


def measure(name: str, blocks: int, block: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    config, kg, trainer = registry_trainer(name)
    if config.training != "negative":
        raise ValueError(f"{name}: 1-N training scores every entity; negative_scoring is for negative sampling")
    batches = endless(trainer.loader)
    model = trainer.model
    seconds = dict.fromkeys(WAYS, 0.0)
    steps = dict.fromkeys(WAYS, 0)
    for way in WAYS:  # warm-up, each way
        model.negative_scoring = way
        for _ in range(3):
            trainer.step(next(batches))
    for index in range(len(WAYS) * blocks):
        way = WAYS[(index + index // len(WAYS)) % len(WAYS)]  # the order rotates: none always first
        model.negative_scoring = way
        start = time.perf_counter()
        for _ in range(block):
            trainer.step(next(batches))
        seconds[way] += time.perf_counter() - start
        steps[way] += block
    model.negative_scoring = config.negative_scoring
    ms = {way: 1000 * seconds[way] / steps[way] for way in WAYS}
    return {
        "config": name,
        "dataset": config.dataset,
        "entities": kg.num_entities,
        "setting": describe(config),
        "dropout": dict(config.encoder_options).get("dropout_mask") == "lookup",
        "distinct_per_batch": distinct_per_row(trainer, batches),
        "steps": steps["rows"],
        "rows_ms": ms["rows"],
        "distinct_ms": ms["distinct"],
        "triple_ms": ms["triple"],
        "ratio": ms["rows"] / ms["distinct"],
        "triple_ratio": ms["triple"] / ms["distinct"],
    }


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"  # results from before triple scoring have none


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def markdown(p: dict) -> str:
    lines = [
        "# Negatives: each row's gathered, the batch's distinct ones scored, or each scored as a triple",
        "",
        "Whole training steps of registry configs on their datasets (sampling, the negatives' diagnostics as the "
        "config runs them, loss, backward, optimizer), one trainer alternating blocks of steps each way. "
        "*Distinct per side*: the distinct negatives of one side of a batch, the `U` of the `[B, U]` product. "
        "*Per-lookup dropout*: the config drops each looked-up row (LibKGE's configs), where distinct drops each "
        "distinct candidate once per batch as LibKGE's batch scoring does, and triple drops the query's rows "
        "apart for every negative as LibKGE's triple scoring (its TransE's) does.",
        "",
        "| config | setting | per-lookup dropout | distinct per side | rows ms | distinct ms | triple ms | "
        "rows / distinct | triple / distinct |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['config']} | {r['dataset']} ({r['entities']:,} entities), {r['setting']} | "
            f"{'yes' if r['dropout'] else 'no'} | {r['distinct_per_batch']:,.0f} | {r['rows_ms']:.1f} | "
            f"{r['distinct_ms']:.1f} | {_ms(r.get('triple_ms'))} | **{r['ratio']:.2f}×** | "
            f"{_ratio(r.get('triple_ratio'))} |"
        )
    lines += blocks_footer(p)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    block_arguments(parser, CONFIGS, blocks=4)
    parser.add_argument("--stem", default="negative_scoring", help="results file name, without extension")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    args = parser.parse_args()
    if args.render_only:
        payload = json.loads((RESULTS / f"{args.stem}.json").read_text())
        return save(args.stem, payload, markdown(payload))
    from gnnns.training.allocator import apply_setting

    kept = apply_setting()  # GNNNS_MALLOC, as the command line reads it
    machine = machine_info()
    machine["freed_memory_kept"] = kept
    rows = []
    for name in args.configs:
        row = measure(name, args.blocks, args.block, args.threads)
        print(json.dumps(row), flush=True)
        rows.append(row)
    machine["loadavg_at_end"] = os.getloadavg()
    command = this_command()
    payload = {"machine": machine, "blocks": args.blocks, "block": args.block, "threads": args.threads}
    payload.update(rows=rows, command=command)
    save(args.stem, payload, markdown(payload))


if __name__ == "__main__":
    main()
