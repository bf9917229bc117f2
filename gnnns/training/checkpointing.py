"""The run directory of a :class:`~gnnns.training.trainer.Trainer`: its checkpoints (also mid-epoch), how
they resume a run, and ``metrics.jsonl``."""

from __future__ import annotations

import json
import time

import torch

from gnnns.training import checkpoint
from gnnns.training.epoch_sums import EpochSums

LAST = "checkpoint.pt"
BEST = "best.pt"


def keep_implementation(optimizer, saved: dict) -> dict:
    """``saved``, an optimizer state, with this ``optimizer``'s choice of a fused kernel in each parameter
    group: ``load_state_dict`` takes the groups' settings from the file, so a run written before dense
    Adagrad was fused would resume unfused (and on a GPU the kernel decides where ``step`` lives)."""
    if not isinstance(optimizer, torch.optim.Optimizer) or len(optimizer.param_groups) != len(saved["param_groups"]):
        return saved  # a CombinedOptimizer's parts are never fused; load_state_dict says what does not match
    pairs = zip(saved["param_groups"], optimizer.param_groups, strict=True)
    fused = [{**old, "fused": new["fused"]} if "fused" in new else old for old, new in pairs]
    return {**saved, "param_groups": fused}


class CheckpointMixin:
    """Writes and restores the state of a :class:`~gnnns.training.trainer.Trainer`, whose attributes it reads
    (``run_dir``, ``model``, ``optimizer``, ``sampler``, ``sums``, ``dist``, ...)."""

    def _save_due(self) -> bool:
        if self.checkpoint_every > 0 and self.sums.steps % self.checkpoint_every == 0:
            return True
        return self.checkpoint_seconds > 0 and time.monotonic() - self._last_save >= self.checkpoint_seconds

    def _where_saved(self) -> str:
        epoch, steps = self._saved_at
        return f"epoch {epoch}" if steps == 0 else f"epoch {epoch + 1}, step {steps}"

    def _write_metrics(self, record: dict) -> None:
        if self.run_dir is None or not self.dist.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _local_state(self) -> dict:
        """What differs between processes: random streams, the sampler, the partial epoch's sums."""
        state = {"rng": checkpoint.rng_state(), "sums": self.sums.state_dict(), "sampler": None}
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
            state["sampler_counters"] = checkpoint.sampler_counters(self.sampler)
        if self.diagnostics is not None:
            state["diagnostics"] = checkpoint.diagnostics_state(self.diagnostics)
        return state

    def state(self, with_optimizer: bool = True) -> dict:
        """The checkpoint: rank 0's view, plus every process's own part under ``"ranks"`` when
        there are several (a collective then: every process must call it)."""
        local = self._local_state() if with_optimizer else {"rng": checkpoint.rng_state()}
        state = {
            "epoch": self.epoch,
            "batches_done": self.sums.steps,
            "model": self.model.state_dict(),
            "best": dict(self.best),
            "bad_evaluations": self.bad_evaluations,
            "budget_used": self.budget_used,
            "world_size": self.dist.world_size,
            **local,
            **self.extra_state,
        }
        if with_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
            if self.lr_schedule is not None:
                state["lr_schedule"] = self.lr_schedule.state_dict()
            if self.dist.enabled:
                state["ranks"] = self.dist.gather(local)
        return state

    def _save(self, name: str, with_optimizer: bool = True) -> None:
        if self.run_dir is None:
            return
        state = self.state(with_optimizer)
        if self.dist.is_main:
            checkpoint.save_atomic(state, self.run_dir / name)
        # No process may go on to read a file that rank 0 is still writing.
        self.dist.barrier()
        if name == LAST:
            self._saved_at = (self.epoch, self.sums.steps)
            self._last_save = time.monotonic()

    def resume(self) -> None:
        """Restore everything from ``run_dir/checkpoint.pt`` and drop later metric lines.

        Every process reads the file. With as many processes as wrote it, each takes back its
        own sampler, RNG and partial sums, and the run continues bit for bit; with another number,
        the model, optimizer and position are restored, rank 0 takes the partial sums of all
        and rank 0's sampler and RNG states, and the other processes keep fresh ones.
        """
        if self.run_dir is None:
            raise ValueError("resume needs a run directory")
        # On the CPU: the RNG states must stay CPU tensors; load_state_dict moves the rest.
        state = checkpoint.load(self.run_dir / LAST, map_location="cpu")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(keep_implementation(self.optimizer, state["optimizer"]))
        if self.lr_schedule is not None and "lr_schedule" in state:
            self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.epoch = int(state["epoch"])
        self.best = dict(state["best"])
        self.bad_evaluations = int(state["bad_evaluations"])
        self.budget_used = float(state.get("budget_used", 0.0))
        local = self._own_part(state)
        if local is not None:
            self._load_local(local)
        self.sums.steps = int(state.get("batches_done", 0))
        self._saved_at = (self.epoch, self.sums.steps)
        if self.dist.is_main:
            self._truncate_metrics(self.epoch)
        at = f"epoch {self.epoch}" + (f" + {self.sums.steps} steps" if self.sums.steps else "")
        self.print(f"resumed {self.run_dir} at {at}")

    def _own_part(self, state: dict) -> dict | None:
        written_by = int(state.get("world_size", 1))
        top = {key: state[key] for key in ("rng", "sums", "sampler", "sampler_counters", "diagnostics") if key in state}
        if written_by == self.dist.world_size:
            return state["ranks"][self.dist.rank] if written_by > 1 else top
        self.print(
            f"note: the checkpoint was written by {written_by} process(es) and is resumed by "
            f"{self.dist.world_size}: the position and weights are restored, per-process sampler and "
            "random states are not, so the run does not continue bit for bit"
        )
        if not self.dist.is_main:
            return None
        if written_by > 1:
            # The epoch's loss so far is the sum over the processes that wrote it.
            parts = [EpochSums.from_state(part["sums"]) for part in state["ranks"]]
            top["sums"] = {**top["sums"], "loss": sum(p.loss for p in parts), "rows": sum(p.rows for p in parts)}
        return top

    def _load_local(self, local: dict) -> None:
        if self.sampler is not None and local.get("sampler") is not None:
            self.sampler.load_state_dict(local["sampler"])
            checkpoint.load_sampler_counters(self.sampler, local.get("sampler_counters", {}))
        if self.diagnostics is not None and "diagnostics" in local:
            checkpoint.load_diagnostics_state(self.diagnostics, local["diagnostics"])
        if "sums" in local:
            self.sums = EpochSums.from_state(local["sums"])
        checkpoint.set_rng_state(local["rng"])

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
