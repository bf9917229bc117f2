"""Checkpoints that are written atomically and restore a run exactly, also in the middle of an epoch."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn


def rng_state() -> dict:
    """Every random generator a run draws from."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A crash or an interrupt while writing leaves the previous checkpoint intact.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint at ``path``, its tensors on ``map_location``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (EOFError, pickle.UnpicklingError, RuntimeError, OSError) as err:
        raise ValueError(f"{path}: not a readable gnnns checkpoint (truncated or corrupt: {err})") from None


def sampler_counters(sampler: nn.Module) -> dict:
    """The per-epoch counters (``stats``) and training progress of a sampler and of every sampler it
    wraps, by module name: plain attributes that ``state_dict()`` does not hold but a resumed
    epoch must continue from."""
    return {
        name: {"stats": dict(module.stats), "progress": float(module.progress)}
        for name, module in sampler.named_modules()
        if isinstance(getattr(module, "stats", None), dict) and hasattr(module, "progress")
    }


def load_sampler_counters(sampler: nn.Module, counters: dict) -> None:
    """Restore what :func:`sampler_counters` returned."""
    modules = dict(sampler.named_modules())
    for name, saved in counters.items():
        if name in modules:
            modules[name].stats = dict(saved["stats"])
            modules[name].progress = saved["progress"]


def diagnostics_state(diagnostics) -> dict:
    """The running sums of a :class:`~gnnns.sampling.diagnostics.NegativeDiagnostics` epoch."""
    return {
        "batches": diagnostics.batches,
        "sums": dict(diagnostics.sums),
        "counts": dict(diagnostics.counts),
        "generator": diagnostics._generator.get_state(),
        "sampled": diagnostics._sampled,
    }


def load_diagnostics_state(diagnostics, state: dict) -> None:
    """Restore what :func:`diagnostics_state` returned."""
    diagnostics.batches = int(state["batches"])
    diagnostics.sums, diagnostics.counts = dict(state["sums"]), dict(state["counts"])
    if "generator" in state:  # checkpoints from before it was saved restart it
        diagnostics._generator.set_state(state["generator"].cpu())
    diagnostics._sampled = bool(state.get("sampled", False))
