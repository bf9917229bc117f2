"""Optimizers of a run, including sparse updates for embedding tables too large to touch whole."""

from __future__ import annotations

import torch

from gnnns.config import RunConfig

OPTIMIZERS = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad, "sgd": torch.optim.SGD}


def build_optimizer(config: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "adam":
        # One fused pass over the (dense) embedding tables instead of eight: same update rule.
        kwargs["fused"] = True
    return OPTIMIZERS[config.optimizer](model.parameters(), **kwargs)
