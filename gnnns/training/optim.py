"""Optimizers of a run, including sparse updates for embedding tables too large to touch whole."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from gnnns.config import RunConfig

OPTIMIZERS = ("adam", "adagrad", "sgd")


def sparse_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of the model's ``nn.Embedding(sparse=True)`` tables (their gradients are sparse)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]


class CombinedOptimizer:
    r"""Several optimizers over disjoint parameter sets, stepped together as one.

    Used for Adam with sparse embedding tables: :class:`torch.optim.SparseAdam` updates the rows a
    step touched, and :class:`torch.optim.Adam` the dense rest (decoder weights). It offers what the
    trainer calls: :meth:`zero_grad`, :meth:`step`, :meth:`state_dict`, :meth:`load_state_dict`,
    and :attr:`param_groups` (all groups of all parts, so a learning-rate schedule reaches each).

    Args:
        optimizers (iterable of Optimizer): the parts, each with its own parameters.
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict:
        return {"parts": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        parts = state.get("parts") if isinstance(state, dict) else None
        if parts is None or len(parts) != len(self.optimizers):
            raise ValueError(
                f"optimizer state has {len(parts) if parts is not None else 'no'} parts, this optimizer "
                f"{len(self.optimizers)}: the checkpoint was written with different sparse/dense settings"
            )
        for opt, part in zip(self.optimizers, parts, strict=True):
            opt.load_state_dict(part)

    def __repr__(self) -> str:
        return f"CombinedOptimizer({', '.join(type(opt).__name__ for opt in self.optimizers)})"


def build_optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer | CombinedOptimizer:
    r"""The optimizer a config names, for the model's parameters.

    With dense gradients: Adam (fused, one pass over each table), Adagrad or SGD.

    With sparse embedding tables (``sparse: true``) each step touches only the rows of its batch:

    - ``adam``: :class:`torch.optim.SparseAdam` for the tables and Adam for any dense parameter.
      SparseAdam is *lazy* Adam: a row's moments :math:`m, v` and its bias correction advance only
      in steps that touch it, where dense Adam decays every row's moments every step. On a graph
      with a few popular entities and millions of rare ones the two differ for the rare rows; the
      per-step cost becomes proportional to the batch instead of to :math:`E`.
    - ``adagrad`` and ``sgd``: PyTorch's own, which apply sparse gradients row by row (Adagrad's
      accumulator :math:`G_i \mathrel{+}= g_i^2` is exact for untouched rows, whose gradient is 0).

    Weight decay would touch every row every step, so it is refused with sparse tables; use the
    N3 regulariser or none.

    Args:
        config (RunConfig): ``optimizer``, ``lr``, ``weight_decay``.
        model (nn.Module): the model; its ``nn.Embedding(sparse=True)`` tables are the sparse part.

    Raises:
        ValueError: an unknown optimizer, or weight decay or 1-N training with sparse tables.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    sparse = sparse_parameters(model)
    if not sparse:
        return _dense(config, model.parameters())
    if config.training in ("1vsall", "kvsall"):
        raise ValueError(
            f"sparse embedding gradients pay off when a step touches few rows; {config.training} training scores "
            "every entity each step, so its gradient is dense: train it without sparse"
        )
    if config.weight_decay:
        raise ValueError(
            f"weight_decay={config.weight_decay} would update every row of the sparse embedding tables each "
            "step; set it to 0 (or train with dense gradients)"
        )
    if config.optimizer != "adam":
        # Adagrad and SGD take sparse and dense gradients in one optimizer.
        return _dense(config, model.parameters())
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
    parts = [torch.optim.SparseAdam(sparse, lr=config.lr)]
    if dense:
        parts.append(torch.optim.Adam(dense, lr=config.lr))
    return CombinedOptimizer(parts)


def _dense(config: RunConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "adam":
        # One fused pass over the (dense) embedding tables instead of eight: same update rule.
        return torch.optim.Adam(params, fused=True, **kwargs)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, **kwargs)
    return torch.optim.SGD(params, **kwargs)
