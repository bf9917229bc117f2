"""The training loop: epochs, progress, metrics, checkpoints (also mid-epoch), early stopping, DDP."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gnnns.config import PRECISIONS
from gnnns.data import KnowledgeGraph
from gnnns.loaders import OneToNLoader, TripleLoader
from gnnns.loaders.triples import ShardedBatches
from gnnns.models import KGCModel
from gnnns.sampling import NegativeSampler
from gnnns.sampling.diagnostics import NegativeDiagnostics
from gnnns.training.batch_loss import BatchLossMixin
from gnnns.training.checkpointing import BEST, LAST, CheckpointMixin
from gnnns.training.distributed import SINGLE, Distributed, StepLoss, data_parallel, evaluate_split
from gnnns.training.epoch_sums import EpochSums
from gnnns.training.graph_scoring import FullGraphScoring, SubgraphScoring
from gnnns.training.interrupts import INTERRUPT_SIGNALS, InterruptMixin, TrainingDiverged, TrainingInterrupted
from gnnns.training.optim import PlateauSchedule, StepSchedule, sparse_parameters

__all__ = [
    "BEST",
    "CLOCKS",
    "INTERRUPT_SIGNALS",
    "LAST",
    "EpochSums",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
]

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class Trainer(BatchLossMixin, CheckpointMixin, InterruptMixin):
    r"""Trains a :class:`KGCModel` by negative sampling or by 1-N scoring, in one process or several.

    Negative sampling (``loader`` a :class:`TripleLoader`): each batch of positives ``[B, 3]``
    gets ``k`` negatives from ``sampler`` (which may score candidates with the model), and the
    loss sees positive scores ``[B]``, negative scores ``[B, k]`` and the sampler's weights.
    1-N (``loader`` a :class:`OneToNLoader`): each query ``(e, r)`` is scored against all
    entities and the loss's ``forward_all`` compares ``[B, E]`` with the targets.

    **Checkpoints.** Each epoch appends a line to ``run_dir/metrics.jsonl`` and writes
    ``run_dir/checkpoint.pt`` atomically: model, optimizer, sampler state and counters, RNG
    states, position (epochs done and batches done of the current one), the running loss sums of
    a partial epoch, early-stopping state. ``checkpoint_every`` and ``checkpoint_seconds`` also
    write it inside an epoch, and Ctrl-C (SIGINT) or SIGTERM writes it at the end of the step in
    progress and raises :class:`TrainingInterrupted` (a second Ctrl-C stops at once). So
    :meth:`resume` continues bit for bit from the last step written: the loader regenerates the
    epoch's order and skips the batches done. A non-finite loss raises :class:`TrainingDiverged`
    before anything is written.

    **Several processes** (``distributed`` enabled, see :mod:`gnnns.training.distributed`): the
    model and the loss are wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` through
    :class:`~gnnns.training.distributed.StepLoss`, each process trains on its shard of every
    batch (the loader must be a :class:`TripleLoader` or :class:`OneToNLoader` built with the
    same ``rank`` and ``world_size``), and gradients are averaged: each process's loss is the
    mean over its equal share of the batch, so their average is the loss of the whole batch. The
    epoch loss and triples/s are reduced over processes, evaluation is shared out, rank 0 alone
    writes files and prints, checkpoints carry each process's sampler and RNG states, and every
    stop (divergence, time budget, interrupt) is agreed by all processes at the same step.

    Args:
        model (KGCModel): the model.
        kg (KnowledgeGraph): the graph (valid split for early stopping).
        loss (nn.Module): ``loss(pos, neg, weight)`` or, for 1-N, ``loss.forward_all(scores, targets)``.
        optimizer (torch.optim.Optimizer): the optimizer.
        loader: :class:`TripleLoader` or :class:`OneToNLoader`.
        sampler (NegativeSampler, optional): needed with a :class:`TripleLoader`.
        num_negatives (int): :math:`k`, per positive (with ``negative_sides="both"``: new tails per
            positive). (default: 64)
        negative_sides (str): ``"random"``: one side of each positive, the sampler's choice
            (:meth:`~gnnns.sampling.NegativeSampler.corrupt_head`); ``"both"``: every positive's
            head and tail (:meth:`~gnnns.sampling.NegativeSampler.both_sides`), the loss being
            the mean of the two sides' losses, as LibKGE's negative sampling. (default: ``"random"``)
        num_head_negatives (int, optional): with ``negative_sides="both"``, new heads per
            positive; None: ``num_negatives``. (default: None)
        run_dir (str or Path, optional): where metrics and checkpoints go; None keeps nothing.
        eval_every (int): validate every this many epochs; 0: only at the end; -1: never.
        patience (int): validations without a better MRR before stopping; 0: never.
        regularizer_weight (float): weight of the penalty on the batch's embedding rows.
        regularizer (str): ``"n3"`` (:math:`\frac{1}{B}\sum |x|^3` over the batch's rows) or ``"l2"``
            (:math:`\frac{1}{B}\sum x^2`, LibKGE's weighted ``lp`` penalty with ``p: 2``).
            (default: ``"n3"``)
        relation_regularizer_weight (float, optional): the relation rows' own weight; None: the
            same as the entity rows'. (default: None)
        eval_batch_size (int): queries per evaluation batch.
        progress (bool): progress bars.
        extra_state (dict, optional): saved in every checkpoint (e.g. the run's config).
        diagnostics (NegativeDiagnostics, optional): measures the sampler's negatives (hardness,
            false-negative rate, diversity, cost); its per-epoch means go to ``metrics.jsonl``
            under ``"negatives"``.
        time_budget (float): stop training once this many seconds of training steps have been
            spent (counted across resumes; evaluation excluded); 0: no budget. (default: 0)
        budget_clock (str): ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time,
            which other jobs on a shared machine do not inflate). (default: ``"wall"``)
        scoring (FullGraphScoring or SubgraphScoring, optional): where a step's scores come from:
            one encoder pass over the model's whole graph (default), or neighbour-sampled
            subgraphs around the entities each step scores.
        checkpoint_every (int): also write the checkpoint every this many steps of an epoch;
            0: at epoch ends only. (default: 0)
        checkpoint_seconds (float): also write it when this many seconds have passed since the
            last one; 0: never. (default: 0)
        distributed (Distributed, optional): this process's place in a distributed run; None: alone.
        lr_schedule (PlateauSchedule or StepSchedule, optional): told each epoch's start
            (``start_epoch``) and stepped with the validation MRR after every validation; its
            state is in the checkpoint. (default: None, a constant rate)
        precision (str): ``"fp32"``, or ``"bf16"``: each step's forward pass (sampling, scoring,
            loss) runs under :func:`torch.autocast` with bfloat16, so matrix products (the 1-N
            ``[B, d] x [d, E]`` scores, batched candidate products, GNN and ConvE layers) take
            bfloat16 inputs and accumulate in float32; the losses compute in float32, and the
            parameters, their gradients and the optimizer stay float32. Evaluation and the
            negatives' diagnostics are always float32: bfloat16's 8-bit mantissa would tie close
            scores and change ranks.
            (default: ``"fp32"``)
        positive_weights (callable, optional): ``positives [B, 3] -> [B]``, each positive's
            weight in the batch's loss (:class:`~gnnns.training.SubsamplingWeights`), passed to
            the loss as ``row_weight``; negative sampling only. (default: None, equal weights)
    """

    def __init__(
        self,
        model: KGCModel,
        kg: KnowledgeGraph,
        loss: nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: TripleLoader | OneToNLoader,
        sampler: NegativeSampler | None = None,
        num_negatives: int = 64,
        run_dir: str | Path | None = None,
        eval_every: int = 0,
        patience: int = 0,
        regularizer_weight: float = 0.0,
        eval_batch_size: int = 256,
        progress: bool = True,
        extra_state: dict | None = None,
        diagnostics: NegativeDiagnostics | None = None,
        time_budget: float = 0.0,
        budget_clock: str = "wall",
        scoring: FullGraphScoring | SubgraphScoring | None = None,
        checkpoint_every: int = 0,
        checkpoint_seconds: float = 0.0,
        distributed: Distributed | None = None,
        lr_schedule: PlateauSchedule | StepSchedule | None = None,
        regularizer: str = "n3",
        relation_regularizer_weight: float | None = None,
        negative_sides: str = "random",
        num_head_negatives: int | None = None,
        precision: str = "fp32",
        positive_weights: Callable[[Tensor], Tensor] | None = None,
    ):
        if budget_clock not in CLOCKS:
            raise ValueError(f"budget_clock must be one of {sorted(CLOCKS)}, got {budget_clock!r}")
        if isinstance(loader, TripleLoader) and sampler is None:
            raise ValueError("negative-sampling training needs a sampler")
        if checkpoint_every < 0 or checkpoint_seconds < 0:
            raise ValueError(
                f"checkpoint_every and checkpoint_seconds must be >= 0 (0: off), got {checkpoint_every} "
                f"and {checkpoint_seconds}"
            )
        self.dist = distributed if distributed is not None else SINGLE
        _check_distributed(self.dist, loader, model)
        self.model, self.kg, self.loss, self.optimizer = model, kg, loss, optimizer
        self.lr_schedule = lr_schedule
        self.scoring = scoring if scoring is not None else FullGraphScoring(model)
        if isinstance(self.scoring, SubgraphScoring) and regularizer_weight > 0:
            raise ValueError("the N3 regulariser needs full-graph embeddings; it is not available with subgraphs")
        self.loader, self.sampler, self.num_negatives = loader, sampler, int(num_negatives)
        if negative_sides not in ("random", "both"):
            raise ValueError(f"negative_sides must be 'random' or 'both', got {negative_sides!r}")
        if num_head_negatives is not None and negative_sides != "both":
            raise ValueError("num_head_negatives counts the head side's negatives: it needs negative_sides='both'")
        self.negative_sides, self.num_head_negatives = negative_sides, num_head_negatives
        if positive_weights is not None:
            if not isinstance(loader, TripleLoader):
                raise ValueError("positive_weights weight negative-sampling positives; 1-N training has none")
            if "row_weight" not in inspect.signature(loss.forward).parameters:
                raise ValueError(f"positive_weights: the loss {type(loss).__name__} takes no row_weight")
        self.positive_weights = positive_weights
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.eval_every, self.patience = int(eval_every), int(patience)
        if regularizer not in ("n3", "l2"):
            raise ValueError(f"regularizer must be 'n3' or 'l2', got {regularizer!r}")
        self.regularizer_weight = float(regularizer_weight)
        self.regularizer = regularizer
        self.relation_regularizer_weight = relation_regularizer_weight
        self.eval_batch_size = int(eval_batch_size)
        self.progress = progress and self.dist.is_main
        self.extra_state = extra_state or {}
        self.diagnostics = diagnostics if sampler is not None else None
        self._sample_seconds = self._diagnostic_seconds = 0.0
        self.device = next(model.parameters()).device
        self.epoch = 0
        self.sums = EpochSums()
        self.best = {"mrr": -math.inf, "epoch": 0}
        self.bad_evaluations = 0
        self.time_budget, self.clock = float(time_budget), CLOCKS[budget_clock]
        self.budget_used = 0.0
        self.checkpoint_every, self.checkpoint_seconds = int(checkpoint_every), float(checkpoint_seconds)
        self.step_module = data_parallel(StepLoss(model, loss, self._batch_loss), self.dist)
        self._interrupted: int | None = None
        self._saved_at: tuple[int, int] | None = None
        self._last_save = time.monotonic()
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    def print(self, *args, **kwargs) -> None:
        """``print`` on rank 0 only (flushed)."""
        if self.dist.is_main:
            print(*args, **kwargs, flush=True)

    # -- one step ------------------------------------------------------------------------
    def step(self, batch) -> Tensor:
        """One optimisation step on a batch; returns the loss (detached).

        When the loss is not finite (on any process) nothing is updated and the returned loss is
        not finite either, so that every process stops at the same step.
        """
        start = time.perf_counter()
        self._sample_seconds = self._diagnostic_seconds = 0.0
        with self.autocast():
            loss = self.step_module(batch)
        here = not bool(torch.isfinite(loss))
        if self.dist.any(here)[0]:
            # DDP would wait forever for a backward pass that a diverged process does not make.
            return loss.detach() if here else torch.full_like(loss.detach(), math.nan)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.diagnostics is not None and self.sampler is not None:
            step_seconds = time.perf_counter() - start - self._diagnostic_seconds
            self.diagnostics.add_time(self._sample_seconds, step_seconds)
        return loss.detach()

    def autocast(self) -> torch.autocast:
        """The step's forward context: bfloat16 autocast with ``precision="bf16"``, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    # -- epochs ----------------------------------------------------------------------------
    def fit(self, epochs: int) -> dict:
        """Train until ``epochs`` (counted from the start of the run, so a resumed run stops
        at the same place as an uninterrupted one) or until early stopping; returns the summary.

        Raises:
            TrainingInterrupted: on Ctrl-C or SIGTERM, after the checkpoint of the step in progress.
            TrainingDiverged: on a non-finite loss.
        """
        self.model.train()
        # A run that had stopped early (and was resumed, say after a kill during its test) stays stopped.
        stopped_early = 0 < self.patience <= self.bad_evaluations
        with self._deferred_interrupts():
            # Every process asks the same question: budgets are measured per process.
            while self.epoch < epochs and not stopped_early and not self.dist.any(self.budget_spent())[0]:
                stopped_early = self._epoch(epochs)
                if self.sums.steps:  # the budget ran out mid-epoch (see _epoch)
                    break
        if stopped_early:
            self.print(f"early stopping at epoch {self.epoch}: no better validation MRR in {self.patience} evaluations")
        summary = {
            "epochs_trained": self.epoch,
            "best_epoch": self.best["epoch"],
            "stopped_early": stopped_early,
            "budget_spent": self.budget_spent(),
            "budget_used": self.budget_used,
        }
        if self._unvalidated_at_budget_end(stopped_early, epochs):
            summary["budget_validation"] = self._validate_at_budget_end()
        return summary

    def _unvalidated_at_budget_end(self, stopped_early: bool, epochs: int) -> bool:
        """Whether the time budget stopped training with steps since the last scheduled validation."""
        if stopped_early or not self.dist.any(self.budget_spent())[0] or self.eval_every <= 0 or not len(self.kg.valid):
            return False
        if self.sums.steps > 0:  # stopped mid-epoch
            return True
        return self.epoch > 0 and not self._validation_due(epochs)  # at the end of an epoch not validated

    def _validate_at_budget_end(self) -> dict:
        """Validate the weights a time budget stopped at, after the last scheduled validation.

        Nothing the run goes on with changes: not the best epoch, the patience count, the learning
        rate schedule nor ``best.pt``, and the checkpoint was written before. A resumed run (a
        larger budget) is therefore the run that was not cut, while a run that ends here can test
        these weights instead of the best epoch's when their validation MRR is higher
        (:func:`gnnns.training.run.train` does).
        """
        metrics = evaluate_split(self.model, self.kg, "valid", self.eval_batch_size, self.progress, self.dist)
        self.model.train()
        where = f"epoch {self.epoch + 1}, step {self.sums.steps}" if self.sums.steps else f"epoch {self.epoch}"
        better = metrics["mrr"] > self.best["mrr"]
        best = (
            f"the best validated epoch, {self.best['epoch']}, had {self.best['mrr']:.4f}"
            if self.best["epoch"] > 0
            else "no epoch had been validated"
        )
        self.print(
            f"          valid mrr {metrics['mrr']:.4f}  hits@10 {metrics['hits@10']:.4f} where the budget stopped "
            f"({where}); {best}"
        )
        return {"epoch": self.epoch, "step": self.sums.steps, "valid": metrics, "better": better}

    def _epoch(self, epochs: int) -> bool:
        """Train (the rest of) the next epoch, validate if due, record and save; returns whether
        to stop early."""
        record = self._train_epoch(self.epoch + 1, epochs)
        if self.lr_schedule is not None:
            record["lr"] = self.lr_schedule.lr
        if record.get("partial"):
            # The time budget ran out mid-epoch: the checkpoint holds the epoch's position, and a
            # resume drops this line and finishes the epoch. Nothing is validated.
            self._write_metrics(record)
            return False
        self.epoch += 1
        self.sums = EpochSums()
        stop = self._validate(record) if self._validation_due(epochs) else False
        self._write_metrics(record)
        self._save(LAST)
        if self.dist.any(self._interrupted is not None)[0]:
            self._raise_interrupted()
        return stop

    def _train_epoch(self, epoch: int, epochs: int) -> dict:
        if self.lr_schedule is not None and self.lr_schedule.start_epoch(epoch):
            self.print(f"epoch {epoch}: learning rate set to {self.lr_schedule.lr:.4g}")
        sums = self.sums
        start = time.perf_counter()
        steps_per_epoch = max(len(self.loader), 1)
        bar = tqdm(
            self._batches(epoch, sums),
            desc=f"epoch {epoch}/{epochs}",
            total=len(self.loader),
            initial=sums.steps,
            leave=False,
            disable=not self.progress,
        )
        partial = False
        for batch in bar:
            if self.sampler is not None:
                self.sampler.set_progress(self._progress(epoch, sums.steps / steps_per_epoch, epochs))
            clock = self.clock()
            loss = self.step(batch)
            self.budget_used += self.clock() - clock
            size = len(batch[0]) if isinstance(batch, tuple) else len(batch)
            if not bool(torch.isfinite(loss)):
                raise TrainingDiverged(self._diverged_message(float(loss), epoch, sums.steps + 1))
            sums.loss += loss.double() * size
            sums.rows += size
            sums.steps += 1
            budget, interrupted, save = self.dist.any(
                self.budget_spent(), self._interrupted is not None, self._save_due()
            )
            last = sums.steps == len(self.loader)
            if (budget or save or interrupted) and not last:
                sums.seconds += time.perf_counter() - start
                start = time.perf_counter()
                self._save(LAST)  # mid-epoch; at its end _epoch saves, after the counters are reset
            if budget:
                self.print(f"time budget of {self.time_budget:g} s spent in epoch {epoch}, step {sums.steps}")
                partial = not last
                break
            if interrupted and not last:
                self._raise_interrupted()
            if sums.steps % 20 == 0:
                rate = sums.rows / max(sums.seconds + time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{float(sums.loss) / sums.rows:.4f}", tps=f"{rate:,.0f}")
        record = self._epoch_record(epoch, epochs, sums, sums.seconds + time.perf_counter() - start)
        if partial:
            record["partial"] = True
        return record

    def _batches(self, epoch: int, sums: EpochSums) -> Iterator:
        """The epoch's batches from batch ``sums.steps`` on (the same order after a resume)."""
        if isinstance(self.loader, ShardedBatches):
            return self.loader.batches(epoch, sums.steps)
        # Other loaders draw their order from the global generator when iteration starts: keep
        # the state it started from, and to resume, replay it and skip the batches done.
        if sums.steps == 0:
            sums.epoch_rng = torch.get_rng_state()
            return iter(self.loader)
        now = torch.get_rng_state()
        torch.set_rng_state(sums.epoch_rng)
        batches = iter(self.loader)
        for _ in range(sums.steps):
            next(batches)
        torch.set_rng_state(now)
        return batches

    def _epoch_record(self, epoch: int, epochs: int, sums: EpochSums, seconds: float) -> dict:
        total, rows = self.dist.sum([float(sums.loss), float(sums.rows)])
        (seconds,) = self.dist.max([seconds])
        record = {
            "epoch": epoch,
            "loss": total / max(rows, 1),
            "steps": sums.steps,
            "train_seconds": seconds,
            "triples_per_second": rows / seconds if seconds > 0 else 0.0,
        }
        if self.dist.enabled:
            record["processes"] = self.dist.world_size
        if self.sampler is not None:
            stats = self.sampler.epoch_stats()
            if stats:
                record["sampler"] = stats
        if self.diagnostics is not None:
            record["negatives"] = self.diagnostics.summary()
        self.print(
            f"epoch {epoch:>3}/{epochs}  loss {record['loss']:.4f}  "
            f"{record['triples_per_second']:,.0f} triples/s  {seconds:.1f}s{_describe(record.get('negatives'))}"
        )
        return record

    def _progress(self, epoch: int, within: float, epochs: int) -> float:
        """Share of training done: epochs done of those planned, or of the time budget if that is further."""
        done = (epoch - 1 + within) / max(epochs, 1)
        if self.time_budget > 0:
            done = max(done, self.budget_used / self.time_budget)
        return min(done, 1.0)

    def budget_spent(self) -> bool:
        """Whether the time budget (if any) is used up."""
        return 0 < self.time_budget <= self.budget_used

    def _diverged_message(self, value: float, epoch: int, step: int) -> str:
        where = f"epoch {epoch}, step {step}"
        if self._saved_at is not None:
            kept = f"the last good checkpoint {self.run_dir / LAST} ({self._where_saved()}) is intact"
        elif self.run_dir is not None and (self.run_dir / LAST).exists():
            kept = f"the last good checkpoint {self.run_dir / LAST} is intact"
        else:
            kept = "no checkpoint had been written yet"
        return f"loss became {value} at {where}; training stopped and {kept}. Try a lower learning rate."

    def _validation_due(self, epochs: int) -> bool:
        if self.eval_every < 0 or len(self.kg.valid) == 0:
            return False
        if self.eval_every == 0:
            return False
        return self.epoch % self.eval_every == 0 or self.epoch == epochs

    def _validate(self, record: dict) -> bool:
        metrics = evaluate_split(self.model, self.kg, "valid", self.eval_batch_size, self.progress, self.dist)
        self.model.train()
        record["valid"] = metrics
        self.print(f"          valid mrr {metrics['mrr']:.4f}  hits@10 {metrics['hits@10']:.4f}")
        if self.lr_schedule is not None:
            if self.lr_schedule.step(metrics["mrr"]):
                self.print(f"          learning rate lowered to {self.lr_schedule.lr:.4g}")
            record["lr"] = self.lr_schedule.lr
        if metrics["mrr"] > self.best["mrr"]:
            self.best = {"mrr": metrics["mrr"], "epoch": self.epoch}
            self.bad_evaluations = 0
            self._save(BEST, with_optimizer=False)
            return False
        self.bad_evaluations += 1
        return 0 < self.patience <= self.bad_evaluations


def _check_distributed(distributed: Distributed, loader, model: KGCModel) -> None:
    """Refuse what several processes cannot train correctly, saying why."""
    if not distributed.enabled:
        return
    name = type(loader).__name__
    if not isinstance(loader, ShardedBatches):
        raise ValueError(
            f"distributed training shards the batches of a TripleLoader or OneToNLoader; {name} is not sharded: "
            "train it in one process"
        )
    if (loader.rank, loader.world_size) != (distributed.rank, distributed.world_size):
        raise ValueError(
            f"the {name} is sharded as rank {loader.rank} of {loader.world_size}, but this process is rank "
            f"{distributed.rank} of {distributed.world_size}: build it with rank= and world_size= of the run"
        )
    if distributed.backend == "nccl" and sparse_parameters(model):
        raise ValueError(
            "sparse embedding gradients cannot be reduced across processes with NCCL, which has no sparse "
            "all-reduce; train with dense gradients (sparse: false) on GPUs, or with gloo on CPUs"
        )


def _describe(negatives: dict | None) -> str:
    """A short account of the epoch's negatives for the progress line."""
    if not negatives or "hardness" not in negatives:
        return ""
    # An epoch resumed from a checkpoint written before distinct_vs_uniform existed may lack it.
    diversity = negatives.get("distinct_vs_uniform")
    return (
        f"  negatives: hardness {negatives['hardness']:.2f}, false {100 * negatives['false_negative_rate']:.2f}%, "
        + (f"distinct {diversity:.2f}× uniform's, " if diversity is not None else "")
        + f"sampling {100 * negatives.get('sample_share', 0):.0f}% of a step"
    )
