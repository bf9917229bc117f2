"""``gnnns train``'s flags: one per :class:`~gnnns.config.RunConfig` field, with its help text in
:data:`HELP`, and the merge of a ``--config`` file, a resumed run's ``config.json`` and the flags
given into one :class:`~gnnns.config.RunConfig`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gnnns.config import RunConfig, read_config_file, setting_lines

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
    "num_negatives": "negatives per positive (with --negative-sides both: new tails per positive)",
    "negative_sides": "random (one side of each positive, the sampler's choice) or both (its head and tail, as LibKGE)",
    "num_head_negatives": "with --negative-sides both: new heads per positive (default: --num-negatives)",
    "negative_scoring": (
        "rows (gather each positive's negatives) or distinct (score every query against the batch's distinct "
        "negatives in one product and pick: LibKGE's batch scoring, faster for small batches of many negatives), or "
        "triple (every negative with a query, and query dropout masks, of its own: LibKGE's triple scoring)"
    ),
    "positive_weights": (
        "none, or subsampling: each positive weighted (n(h,r) + n(r,t) + 6)^-1/2 in the batch's mean, as the "
        "RotatE authors' code does by default"
    ),
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
    "regularizer_weight": "weight of a penalty on the batch's embedding rows (N3 unless --regularizer l2)",
    "optimizer": "adam, adagrad or sgd",
    "lr": "learning rate",
    "weight_decay": "L2 weight decay of the optimizer",
    "relation_weight_decay": "the relation table's own weight decay (default: weight_decay)",
    "regularizer": "penalty on the batch's embedding rows: n3 (mean |x|^3) or l2 (mean x^2, LibKGE's weighted lp)",
    "relation_regularizer_weight": "the relation rows' own penalty weight (default: regularizer_weight)",
    "lr_scheduler": (
        "none, plateau (lower the rate when the validation MRR stops improving) or step (multiply it by a factor "
        "after milestone epochs)"
    ),
    "lr_scheduler_options": (
        "a schedule setting KEY=VALUE, repeatable: --lr-scheduler-option factor=0.95 (plateau: also patience, "
        "threshold, min_lr; step: milestones=[188] and factor)"
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
    "precision": "fp32, or bf16 (training steps' matrix products in bfloat16 autocast; evaluation stays fp32)",
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
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh in --output even if it holds an unfinished run"
    )


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    values = read_config_file(args.config) if args.config else {}
    from_file = dict(values)
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
    # An invalid setting from the file is named with its line; one from a flag is not in the file.
    lines = (
        {k: n for k, n in setting_lines(args.config).items() if values.get(k) == from_file.get(k)}
        if args.config
        else None
    )
    return RunConfig.from_dict(values, source=args.config or "command line", lines=lines)


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
