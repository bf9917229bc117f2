"""Build every part of a run from a :class:`~gnnns.config.RunConfig` and train it."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from gnnns.config import RunConfig
from gnnns.data import KnowledgeGraph, load_dataset
from gnnns.data.loading import dataset_reference
from gnnns.loaders import NeighborSubgraphs, OneToNLoader, TripleLoader
from gnnns.losses import build_loss
from gnnns.models import KGCModel, build_model
from gnnns.sampling import build_sampler
from gnnns.sampling.diagnostics import NegativeDiagnostics
from gnnns.training.distributed import SINGLE, Distributed, evaluate_split, process_group, rank_device, rank_seed
from gnnns.training.graph_scoring import FullGraphScoring, SubgraphScoring
from gnnns.training.optim import build_lr_schedule, build_optimizer
from gnnns.training.positive_weights import SubsamplingWeights
from gnnns.training.trainer import BEST, LAST, Trainer

ONE_TO_N = ("1vsall", "kvsall")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_run_model(config: RunConfig, kg: KnowledgeGraph) -> KGCModel:
    """The model a config describes.

    1-N training and ConvE imply reciprocal relations, except that ``head_queries: direct`` (1-N
    training only) scores head queries :math:`(?, r, t)` with the decoder's own head query, as
    LibKGE's models without ``reciprocal_relations_model`` do. ConvE answers tail queries only.
    """
    kwargs = dict(config.decoder_options)
    if config.model == "transe":
        kwargs.setdefault("p", config.p)
    if config.model == "rotate":
        kwargs.setdefault("margin", config.margin)
    if config.head_queries not in ("inverse", "direct"):
        raise ValueError(f"head_queries must be 'inverse' or 'direct', got {config.head_queries!r}")
    direct = config.head_queries == "direct"
    if direct and (config.training not in ONE_TO_N or config.reciprocal or config.model == "conve"):
        raise ValueError(
            "head_queries: direct is for 1-N training (1vsall, kvsall) without reciprocal relations and not with "
            "ConvE, which answers tail queries only"
        )
    reciprocal = config.reciprocal or (config.training in ONE_TO_N and not direct) or config.model == "conve"
    model = build_model(
        config.model,
        kg,
        config.dim,
        reciprocal=reciprocal,
        compile=config.compile,
        negative_scoring=config.negative_scoring,
        encoder=config.encoder,
        encoder_options=config.encoder_options,
        sparse=config.sparse,
        **kwargs,
    )
    return model.to(config.device)


def build_scoring(config: RunConfig, kg: KnowledgeGraph, model: KGCModel) -> FullGraphScoring | SubgraphScoring:
    """Full-graph scoring, or neighbour-sampled subgraphs (``graph_mode: neighbor``)."""
    if config.graph_mode not in ("full", "neighbor"):
        raise ValueError(f"unknown graph_mode {config.graph_mode!r}; expected 'full' or 'neighbor'")
    if config.graph_mode == "full":
        return FullGraphScoring(model, exclude_positives=config.exclude_positives)
    if config.encoder == "embedding":
        raise ValueError("graph_mode 'neighbor' needs a GNN encoder (--encoder rgcn or compgcn)")
    if config.training in ONE_TO_N:
        raise ValueError(f"graph_mode 'neighbor' trains by negative sampling; {config.training} scores every entity")
    subgraphs = NeighborSubgraphs(kg.train, kg.num_entities, kg.num_relations, config.num_neighbors)
    return SubgraphScoring(model, subgraphs)


def build_run_loss(config: RunConfig) -> torch.nn.Module:
    kwargs = {
        "margin": {"margin": config.margin},
        "nssa": {"margin": config.margin, "adversarial_temperature": config.adversarial_temperature},
        "infonce": {"temperature": config.temperature},
        "debiased": {
            "temperature": config.temperature,
            "prior": config.false_negative_prior,
            "hardness": config.negative_hardness,
        },
        "sce": {"label_smoothing": config.label_smoothing},
        "bce": {"label_smoothing": config.label_smoothing, "smoothing": config.smoothing},
    }
    if config.loss not in kwargs:
        raise ValueError(f"unknown loss {config.loss!r}; expected one of {sorted(kwargs)}")
    if config.training in ONE_TO_N and config.loss not in ("sce", "bce"):
        raise ValueError(f"1-N training ({config.training}) needs loss 'sce' or 'bce', got {config.loss!r}")
    return build_loss(config.loss, **kwargs[config.loss])


def build_trainer(
    config: RunConfig, kg: KnowledgeGraph, run_dir: Path | None, distributed: Distributed = SINGLE
) -> Trainer:
    """The trainer of a run, for this process of ``distributed``.

    Every process builds the same model from ``config.seed`` and draws the same epoch orders
    (the loader's own seed); each draws its negatives from a stream of its own
    (:func:`~gnnns.training.distributed.rank_seed`, rank 0's being the single-process stream).
    """
    if config.training not in ("negative", *ONE_TO_N):
        raise ValueError(f"unknown training {config.training!r}; expected 'negative', '1vsall' or 'kvsall'")
    model = build_run_model(config, kg)
    scoring = build_scoring(config, kg, model)
    sampler = diagnostics = None
    if distributed.rank > 0:
        seed_everything(rank_seed(config.seed, distributed.rank))
    shard = {"seed": config.seed, "rank": distributed.rank, "world_size": distributed.world_size}
    if config.training in ONE_TO_N:
        loader = OneToNLoader(
            kg.train, kg.num_entities, kg.num_relations, config.batch_size, mode=config.training, **shard
        )
    else:
        loader = TripleLoader(kg.train, config.batch_size, **shard)
    if distributed.is_main and config.batch_size % distributed.world_size:
        share = loader.rank_batch_size
        print(
            f"note: batch_size {config.batch_size} is not a multiple of the {distributed.world_size} processes; "
            f"each takes {share}, a global batch of {share * distributed.world_size}",
            flush=True,
        )
    if config.training not in ONE_TO_N:
        sampler = build_sampler(config.sampler, kg, filter_negatives=config.filter_negatives, **config.sampler_options)
        sampler = sampler.to(config.device)
        # Only rank 0's measurements are reported, so the others need not spend time on them.
        if config.diagnostics_every > 0 and distributed.is_main:
            diagnostics = NegativeDiagnostics(kg, config.diagnostics_every, config.hardness_queries)
    optimizer = build_optimizer(config, model)
    return Trainer(
        model,
        kg,
        build_run_loss(config),
        optimizer,
        loader,
        sampler=sampler,
        num_negatives=config.num_negatives,
        negative_sides=config.negative_sides,
        num_head_negatives=config.num_head_negatives,
        run_dir=run_dir,
        eval_every=config.eval_every,
        patience=config.patience,
        regularizer_weight=config.regularizer_weight,
        regularizer=config.regularizer,
        relation_regularizer_weight=config.relation_regularizer_weight,
        eval_batch_size=config.eval_batch_size,
        progress=config.progress,
        extra_state={"config": config.to_dict()},
        diagnostics=diagnostics,
        time_budget=config.time_budget,
        budget_clock=config.budget_clock,
        scoring=scoring,
        checkpoint_every=config.checkpoint_every,
        checkpoint_seconds=config.checkpoint_seconds,
        distributed=distributed,
        lr_schedule=build_lr_schedule(config, optimizer),
        precision=config.precision,
        positive_weights=_positive_weights(config, kg),
    )


def _positive_weights(config: RunConfig, kg: KnowledgeGraph) -> SubsamplingWeights | None:
    """The weights of the positives a config asks for (``positive_weights``), on its device."""
    if config.positive_weights == "none":
        return None
    return SubsamplingWeights(kg.train, kg.num_relations).to(config.device)


def train(config: RunConfig, resume: bool = False, kg: KnowledgeGraph | None = None, overwrite: bool = False) -> dict:
    """Train as ``config`` says, evaluate, and write ``metrics.json`` into the run directory.

    A fresh run (``resume=False``) in a folder that holds a finished run replaces it. A folder
    whose run was interrupted (a checkpoint, but no ``metrics.json``) is refused unless
    ``overwrite=True``: its checkpoint is the only copy of that training.

    Under ``torchrun`` (``WORLD_SIZE > 1``), or inside a process group the caller initialised,
    every process runs this: training is data-parallel (:class:`~gnnns.training.Trainer`), the
    evaluation is shared out, and rank 0 alone writes files and prints. Every process returns
    the same metrics.

    Returns:
        ``{"valid": metrics, "test": metrics, ...}`` (no metrics when ``eval_every == -1``).
    """
    # A dataset folder is recorded absolute: the run can be evaluated or resumed from anywhere.
    config = dataclasses.replace(config, dataset=dataset_reference(config.dataset))
    run_dir = Path(config.output) if config.output else None
    if resume and (run_dir is None or not (run_dir / LAST).exists()):
        raise FileNotFoundError(f"--resume: no checkpoint {run_dir / LAST if run_dir else LAST} to resume from")
    if resume:
        _check_resumable(config, run_dir)
    elif run_dir is not None and not overwrite:
        _check_not_interrupted(run_dir)
    with process_group(config.device) as distributed:
        return _train(config, resume, kg, run_dir, distributed)


RESUME_MAY_CHANGE = frozenset(
    {
        "epochs", "time_budget", "budget_clock", "patience", "device", "progress", "compile",
        "checkpoint_every", "checkpoint_seconds", "eval_batch_size", "diagnostics_every",
        "hardness_queries", "output",
    }
)  # fmt: skip
"""Settings a resumed run may change: when to stop, where it runs, what it measures and shows."""


def _check_not_interrupted(run_dir: Path) -> None:
    """Refuse a fresh run that would delete an interrupted run's checkpoint."""
    if (run_dir / LAST).exists() and not (run_dir / "metrics.json").exists():
        raise FileExistsError(
            f"{run_dir} holds an unfinished run ({run_dir / LAST}, no metrics.json); continue it with --resume, "
            "or pass --overwrite to start again there and delete it"
        )


def _check_resumable(config: RunConfig, run_dir: Path) -> None:
    """Refuse to resume with settings that would change the run (the saved ``config.json``)."""
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        return
    saved, now = json.loads(saved_path.read_text(encoding="utf-8")), config.to_dict()
    if isinstance(saved.get("dataset"), str):  # a folder saved relative by an older version
        saved["dataset"] = dataset_reference(saved["dataset"])
    changed = [
        f"{key}: {saved[key]!r} -> {now[key]!r}"
        for key in sorted(set(saved) & set(now) - RESUME_MAY_CHANGE)
        if saved[key] != now[key]
    ]
    if changed:
        raise ValueError(
            f"--resume: {saved_path} was trained with other settings ({'; '.join(changed)}); a resumed run "
            f"may change only {sorted(RESUME_MAY_CHANGE)}. Start a new run (another --output) to change the others"
        )


def _train(
    config: RunConfig, resume: bool, kg: KnowledgeGraph | None, run_dir: Path | None, distributed: Distributed
) -> dict:
    saved_config = config.to_dict()
    config = dataclasses.replace(config, device=rank_device(config.device, distributed))
    kg = kg if kg is not None else load_dataset(config.dataset)
    if distributed.is_main:
        print(kg if not distributed.enabled else f"{kg}, {distributed.world_size} processes", flush=True)
    seed_everything(config.seed)
    trainer = build_trainer(config, kg, run_dir, distributed)
    if run_dir is not None and distributed.is_main and not resume:
        # A fresh run in a used folder: nothing of the old run may be read back.
        for name in ("metrics.json", "metrics.jsonl", LAST, BEST):
            (run_dir / name).unlink(missing_ok=True)
    if resume:
        trainer.resume()
        if run_dir is not None and distributed.is_main:
            (run_dir / "metrics.json").unlink(missing_ok=True)  # the run is unfinished again
    if run_dir is not None and distributed.is_main:  # after a resume that worked: a failed one changes nothing
        (run_dir / "config.json").write_text(json.dumps(saved_config, indent=2) + "\n", encoding="utf-8")
    start = time.perf_counter()
    summary = trainer.fit(config.epochs)
    summary["train_seconds"] = time.perf_counter() - start
    result = {"summary": summary}
    if config.eval_every >= 0:
        at_budget_end = summary.get("budget_validation")
        if at_budget_end is not None and at_budget_end["better"]:
            # Validated after the budget stopped it and better than every scheduled validation: tested as it is.
            trainer.print("evaluating the weights where the time budget stopped training (the best validation MRR)")
            result["valid"] = at_budget_end["valid"]  # these weights' validation, just computed
        elif trainer.best["epoch"] > 0 and trainer.load_best():
            trainer.print(f"evaluating the best validation epoch ({trainer.best['epoch']})")
        for split in ("valid", "test"):
            if split not in result and len(kg.split(split)):
                result[split] = evaluate_split(
                    trainer.model, kg, split, config.eval_batch_size, config.progress, distributed
                )
    if run_dir is not None and distributed.is_main:
        (run_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
