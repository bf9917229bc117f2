"""The training loop: epochs, progress, metrics, checkpoints, early stopping."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gnnns.data import KnowledgeGraph
from gnnns.evaluation import evaluate
from gnnns.loaders import OneToNLoader, TripleLoader
from gnnns.models import KGCModel
from gnnns.sampling import NegativeSampler
from gnnns.sampling.diagnostics import NegativeDiagnostics
from gnnns.training import checkpoint
from gnnns.training.graph_scoring import FullGraphScoring, SubgraphScoring

LAST = "checkpoint.pt"
BEST = "best.pt"


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Trainer:
    r"""Trains a :class:`KGCModel` by negative sampling or by 1-N scoring.

    Negative sampling (``loader`` a :class:`TripleLoader`): each batch of positives ``[B, 3]``
    gets ``k`` negatives from ``sampler`` (which may score candidates with the model), and the
    loss sees positive scores ``[B]``, negative scores ``[B, k]`` and the sampler's weights.
    1-N (``loader`` a :class:`OneToNLoader`): each query ``(e, r)`` is scored against all
    entities and the loss's ``forward_all`` compares ``[B, E]`` with the targets.

    Each epoch appends a line to ``run_dir/metrics.jsonl`` and writes ``run_dir/checkpoint.pt``
    atomically (model, optimizer, sampler state, RNG states, epoch, early-stopping state), so
    :meth:`resume` continues bit for bit where the last completed epoch ended. A non-finite
    loss raises :class:`TrainingDiverged` before anything is written.

    Args:
        model (KGCModel): the model.
        kg (KnowledgeGraph): the graph (valid split for early stopping).
        loss (nn.Module): ``loss(pos, neg, weight)`` or, for 1-N, ``loss.forward_all(scores, targets)``.
        optimizer (torch.optim.Optimizer): the optimizer.
        loader: :class:`TripleLoader` or :class:`OneToNLoader`.
        sampler (NegativeSampler, optional): needed with a :class:`TripleLoader`.
        num_negatives (int): :math:`k`. (default: 64)
        run_dir (str or Path, optional): where metrics and checkpoints go; None keeps nothing.
        eval_every (int): validate every this many epochs; 0: only at the end; -1: never.
        patience (int): validations without a better MRR before stopping; 0: never.
        regularizer_weight (float): weight of the N3 penalty on the batch's embeddings.
        eval_batch_size (int): queries per evaluation batch.
        progress (bool): progress bars.
        extra_state (dict, optional): saved in every checkpoint (e.g. the run's config).
        time_budget (float): stop training once this many seconds of training steps have been
            spent (counted across resumes; evaluation excluded); 0: no budget. (default: 0)
        budget_clock (str): ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time,
            which other jobs on a shared machine do not inflate). (default: ``"wall"``)
        diagnostics (NegativeDiagnostics, optional): measures the sampler's negatives (hardness,
            false-negative rate, diversity, cost); its per-epoch means go to ``metrics.jsonl``
            under ``"negatives"``.
        scoring (FullGraphScoring or SubgraphScoring, optional): where a step's scores come from:
            one encoder pass over the model's whole graph (default), or neighbour-sampled
            subgraphs around the entities each step scores.
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
    ):
        if budget_clock not in CLOCKS:
            raise ValueError(f"budget_clock must be one of {sorted(CLOCKS)}, got {budget_clock!r}")
        if isinstance(loader, TripleLoader) and sampler is None:
            raise ValueError("negative-sampling training needs a sampler")
        self.model, self.kg, self.loss, self.optimizer = model, kg, loss, optimizer
        self.scoring = scoring if scoring is not None else FullGraphScoring(model)
        if isinstance(self.scoring, SubgraphScoring) and regularizer_weight > 0:
            raise ValueError("the N3 regulariser needs full-graph embeddings; it is not available with subgraphs")
        self.loader, self.sampler, self.num_negatives = loader, sampler, int(num_negatives)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.eval_every, self.patience = int(eval_every), int(patience)
        self.regularizer_weight = float(regularizer_weight)
        self.eval_batch_size, self.progress = int(eval_batch_size), progress
        self.extra_state = extra_state or {}
        self.diagnostics = diagnostics if sampler is not None else None
        self._sample_seconds = self._diagnostic_seconds = 0.0
        self.device = next(model.parameters()).device
        self.epoch = 0
        self.best = {"mrr": -math.inf, "epoch": 0}
        self.bad_evaluations = 0
        self.time_budget, self.clock = float(time_budget), CLOCKS[budget_clock]
        self.budget_used = 0.0
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    # -- one step ------------------------------------------------------------------------
    def step(self, batch) -> Tensor:
        """One optimisation step on a batch; returns the loss (detached)."""
        start = time.perf_counter()
        self._sample_seconds = self._diagnostic_seconds = 0.0
        if isinstance(self.loader, OneToNLoader):
            with self.scoring.step(None):
                loss = self._one_to_n_loss(*batch)
        else:
            positives = batch.to(self.device, non_blocking=True)
            with self.scoring.step(positives):
                loss = self._negative_sampling_loss(positives)
        if not bool(torch.isfinite(loss)):
            return loss.detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.diagnostics is not None and self.sampler is not None:
            step_seconds = time.perf_counter() - start - self._diagnostic_seconds
            self.diagnostics.add_time(self._sample_seconds, step_seconds)
        return loss.detach()

    def _negative_sampling_loss(self, positives: Tensor) -> Tensor:
        start = time.perf_counter()
        negatives = self.sampler(positives, self.num_negatives, scorer=self.scoring.score_candidates)
        self._sample_seconds = time.perf_counter() - start
        if self.diagnostics is not None and self.diagnostics.due():
            start = time.perf_counter()
            self.diagnostics.observe(positives, negatives, self.scoring.score_all)
            self._diagnostic_seconds = time.perf_counter() - start
        pos, neg = self.scoring.score_batch(
            positives, negatives.entities, negatives.corrupt_head, shared=negatives.shared
        )
        loss = self.loss(pos, neg, negatives.weight)
        if self.regularizer_weight > 0:
            loss = loss + self.regularizer_weight * self._n3(positives)
        return loss

    def _one_to_n_loss(self, queries: Tensor, targets: Tensor) -> Tensor:
        queries, targets = queries.to(self.device), targets.to(self.device)
        scores = self.model.score_all(queries[:, 0], queries[:, 1], predict_head=False)
        loss = self.loss.forward_all(scores, targets)
        if self.regularizer_weight > 0:
            answers = targets if targets.dim() == 1 else None
            loss = loss + self.regularizer_weight * self._n3_queries(queries, answers)
        return loss

    def _n3(self, triples: Tensor) -> Tensor:
        ent, rel = self.model.embeddings()
        return _n3_norm(ent[triples[:, 0]], rel[triples[:, 1]], ent[triples[:, 2]])

    def _n3_queries(self, queries: Tensor, answers: Tensor | None) -> Tensor:
        ent, rel = self.model.embeddings()
        tail = ent[answers] if answers is not None else None
        return _n3_norm(ent[queries[:, 0]], rel[queries[:, 1]], tail)

    # -- epochs ----------------------------------------------------------------------------
    def fit(self, epochs: int) -> dict:
        """Train until ``epochs`` (counted from the start of the run, so a resumed run stops
        at the same place as an uninterrupted one) or until early stopping; returns the summary."""
        self.model.train()
        stopped_early = False
        while self.epoch < epochs and not stopped_early and not self.budget_spent():
            record = self._train_epoch(self.epoch + 1, epochs)
            self.epoch += 1
            if self._validation_due(epochs):
                stopped_early = self._validate(record)
            self._write_metrics(record)
            self._save(LAST)
            if stopped_early:
                print(f"early stopping at epoch {self.epoch}: no better validation MRR for {self.patience} evaluations")
        return {
            "epochs_trained": self.epoch,
            "best_epoch": self.best["epoch"],
            "stopped_early": stopped_early,
            "budget_spent": self.budget_spent(),
            "budget_used": self.budget_used,
        }

    def _train_epoch(self, epoch: int, epochs: int) -> dict:
        start = time.perf_counter()
        total, rows, steps = torch.zeros((), dtype=torch.float64), 0, 0
        bar = tqdm(self.loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not self.progress)
        steps_per_epoch = max(len(self.loader), 1)
        for batch in bar:
            if self.sampler is not None:
                self.sampler.set_progress(self._progress(epoch, steps / steps_per_epoch, epochs))
            clock = self.clock()
            loss = self.step(batch)
            self.budget_used += self.clock() - clock
            size = len(batch[0]) if isinstance(batch, tuple) else len(batch)
            if not bool(torch.isfinite(loss)):
                raise TrainingDiverged(self._diverged_message(float(loss), epoch, steps + 1))
            total += loss.double() * size
            rows += size
            steps += 1
            if self.budget_spent():
                print(f"time budget of {self.time_budget:g} s spent in epoch {epoch}, step {steps}", flush=True)
                break
            if steps % 20 == 0:
                bar.set_postfix(loss=f"{float(total) / rows:.4f}", tps=f"{rows / (time.perf_counter() - start):,.0f}")
        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch,
            "loss": float(total) / max(rows, 1),
            "steps": steps,
            "train_seconds": seconds,
            "triples_per_second": rows / seconds if seconds > 0 else 0.0,
        }
        if self.sampler is not None:
            stats = self.sampler.epoch_stats()
            if stats:
                record["sampler"] = stats
        if self.diagnostics is not None:
            record["negatives"] = self.diagnostics.summary()
        print(
            f"epoch {epoch:>3}/{epochs}  loss {record['loss']:.4f}  "
            f"{record['triples_per_second']:,.0f} triples/s  {seconds:.1f}s{_describe(record.get('negatives'))}",
            flush=True,
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
        if self.run_dir is not None and (self.run_dir / LAST).exists():
            kept = f"the last good checkpoint {self.run_dir / LAST} (epoch {self.epoch}) is intact"
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
        metrics = evaluate(self.model, self.kg, "valid", self.eval_batch_size, progress=self.progress)
        self.model.train()
        record["valid"] = metrics
        print(f"          valid mrr {metrics['mrr']:.4f}  hits@10 {metrics['hits@10']:.4f}", flush=True)
        if metrics["mrr"] > self.best["mrr"]:
            self.best = {"mrr": metrics["mrr"], "epoch": self.epoch}
            self.bad_evaluations = 0
            self._save(BEST, with_optimizer=False)
            return False
        self.bad_evaluations += 1
        return 0 < self.patience <= self.bad_evaluations

    # -- persistence ---------------------------------------------------------------------
    def _write_metrics(self, record: dict) -> None:
        if self.run_dir is None:
            return
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def state(self, with_optimizer: bool = True) -> dict:
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "best": dict(self.best),
            "bad_evaluations": self.bad_evaluations,
            "budget_used": self.budget_used,
            "rng": checkpoint.rng_state(),
            **self.extra_state,
        }
        if with_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
            state["sampler"] = self.sampler.state_dict() if self.sampler is not None else None
        return state

    def _save(self, name: str, with_optimizer: bool = True) -> None:
        if self.run_dir is not None:
            checkpoint.save_atomic(self.state(with_optimizer), self.run_dir / name)

    def resume(self) -> None:
        """Restore everything from ``run_dir/checkpoint.pt`` and drop later metric lines."""
        if self.run_dir is None:
            raise ValueError("resume needs a run directory")
        state = checkpoint.load(self.run_dir / LAST, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.sampler is not None and state.get("sampler") is not None:
            self.sampler.load_state_dict(state["sampler"])
        self.epoch = int(state["epoch"])
        self.best = dict(state["best"])
        self.bad_evaluations = int(state["bad_evaluations"])
        self.budget_used = float(state.get("budget_used", 0.0))
        checkpoint.set_rng_state(state["rng"])
        self._truncate_metrics(self.epoch)
        print(f"resumed {self.run_dir} at epoch {self.epoch}", flush=True)

    def _truncate_metrics(self, epoch: int) -> None:
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line).get("epoch", 0) <= epoch]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def load_best(self) -> bool:
        """Load the weights of the best validation epoch, if one was saved."""
        if self.run_dir is None or not (self.run_dir / BEST).exists():
            return False
        self.model.load_state_dict(checkpoint.load(self.run_dir / BEST, map_location=self.device)["model"])
        return True


def _describe(negatives: dict | None) -> str:
    """A short account of the epoch's negatives for the progress line."""
    if not negatives or "hardness" not in negatives:
        return ""
    return (
        f"  negatives: hardness {negatives['hardness']:.2f}, false {100 * negatives['false_negative_rate']:.2f}%, "
        f"distinct {negatives['distinct_share']:.2f}, sampling {100 * negatives.get('sample_share', 0):.0f}% of a step"
    )


def _n3_norm(head: Tensor, rel: Tensor, tail: Tensor | None) -> Tensor:
    r"""N3-style penalty (after Lacroix et al., 2018): :math:`\frac{1}{B}\sum \|x\|_3^3` over the
    batch's embedding rows, on their real coordinates (the paper uses complex moduli)."""
    parts = [head, rel] + ([tail] if tail is not None else [])
    return sum(p.abs().pow(3).sum() for p in parts) / head.size(0)
