"""Optimizers of a run, including sparse updates for embedding tables too large to touch whole."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from gnnns.config import RunConfig

OPTIMIZERS = ("adam", "adagrad", "sgd")


def sparse_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of the model's ``nn.Embedding(sparse=True)`` tables (their gradients are sparse)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]


class LazyAdam(torch.optim.Optimizer):
    r"""Adam for sparse gradients that reads and writes only the rows a step touched.

    The update rule is :class:`torch.optim.SparseAdam`'s ("lazy" Adam): for the rows :math:`i`
    of the step's coalesced gradient :math:`g_i`, with the table's step count :math:`t`,

    .. math::
        m_i \leftarrow \beta_1 m_i + (1-\beta_1) g_i, \qquad
        v_i \leftarrow \beta_2 v_i + (1-\beta_2) g_i^2, \qquad
        \theta_i \leftarrow \theta_i - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
        \frac{m_i}{\sqrt{v_i} + \epsilon},

    and other rows are left as they are. SparseAdam computes this through masked sparse tensors
    over the whole state; here the touched rows of :math:`m, v, \theta` are gathered, updated and
    written back with ``index_select``/``index_copy_``/``index_add_``: 1.7× faster than SparseAdam
    at ogbl-wikikg2's size (2.5M × 200 table, 66k row reads a step; ``benchmarks/sparse_optimizer.py``).

    Args:
        params (iterable): parameters whose gradients are sparse (``nn.Embedding(sparse=True)``).
        lr (float): :math:`\eta`. (default: 1e-3)
        betas (tuple of float): :math:`(\beta_1, \beta_2)`. (default: (0.9, 0.999))
        eps (float): :math:`\epsilon`. (default: 1e-8)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if lr < 0 or eps < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"LazyAdam: invalid lr={lr}, betas={betas} or eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError(
                        f"LazyAdam updates sparse gradients only; a parameter of shape {tuple(param.shape)} got a "
                        "dense one (read its rows through KGCModel.gather, or use Adam)"
                    )
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                if rows.numel() == 0:
                    continue
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                m = exp_avg.index_select(0, rows).lerp_(values, 1 - beta1)
                v = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
                exp_avg.index_copy_(0, rows, m)
                exp_avg_sq.index_copy_(0, rows, v)
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                param.index_add_(0, rows, m.div_(v.sqrt_().add_(group["eps"])), alpha=-step_size)
        return loss


class CombinedOptimizer:
    r"""Several optimizers over disjoint parameter sets, stepped together as one.

    Used for Adam with sparse embedding tables: :class:`LazyAdam` updates the rows a
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

    With dense gradients: Adam or Adagrad (fused, one pass over each table), or SGD.

    With sparse embedding tables (``sparse: true``) each step touches only the rows of its batch:

    - ``adam``: :class:`LazyAdam` (SparseAdam's rule, faster) for the tables and Adam for any
      dense parameter. It is *lazy* Adam: a row's moments :math:`m, v` and its bias correction advance only
      in steps that touch it, where dense Adam decays every row's moments every step. On a graph
      with a few popular entities and millions of rare ones the two differ for the rare rows; the
      per-step cost becomes proportional to the batch instead of to :math:`E`.
    - ``adagrad`` and ``sgd``: PyTorch's own, which apply sparse gradients row by row (Adagrad's
      accumulator :math:`G_i \mathrel{+}= g_i^2` is exact for untouched rows, whose gradient is 0).

    ``weight_decay`` :math:`\lambda` adds :math:`\lambda \theta` to each gradient: the gradient of a
    penalty :math:`\frac{\lambda}{2} \|\theta\|_2^2` on every parameter (LibKGE's unweighted ``lp``
    penalty with ``p: 2``, whose weight :math:`w` gives :math:`\frac{w}{2} \|\theta\|_2^2` on its own
    loss scale for each embedder that reads the table: twice for LibKGE's entity table, which is both
    its subject and its object embedder). ``relation_weight_decay`` gives the relation table a decay of its own. Weight
    decay would touch every row every step, so it is refused with sparse tables; use the N3
    regulariser or none.

    Args:
        config (RunConfig): ``optimizer``, ``lr``, ``weight_decay``, ``relation_weight_decay``.
        model (nn.Module): the model; its ``nn.Embedding(sparse=True)`` tables are the sparse part.

    Raises:
        ValueError: an unknown optimizer, or weight decay or 1-N training with sparse tables.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    sparse = sparse_parameters(model)
    if not sparse:
        return _dense(config, model.parameters(), model)
    if config.training in ("1vsall", "kvsall"):
        raise ValueError(
            f"sparse embedding gradients pay off when a step touches few rows; {config.training} training scores "
            "every entity each step, so its gradient is dense: train it without sparse"
        )
    if config.weight_decay or config.relation_weight_decay:
        raise ValueError(
            f"weight_decay={config.weight_decay} would update every row of the sparse embedding tables each "
            "step; set it to 0 (or train with dense gradients)"
        )
    if config.optimizer != "adam":
        # Adagrad and SGD take sparse and dense gradients in one optimizer.
        return _dense(config, model.parameters(), fused=False)
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
    parts = [LazyAdam(sparse, lr=config.lr)]
    if dense:
        parts.append(torch.optim.Adam(dense, lr=config.lr))
    return CombinedOptimizer(parts)


def _dense(
    config: RunConfig, params: Iterable[nn.Parameter], model: nn.Module | None = None, fused: bool = True
) -> torch.optim.Optimizer:
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    relation = _relation_table(model) if config.relation_weight_decay is not None else None
    if relation is not None:
        # Two groups: the relation table with its own decay, everything else with weight_decay.
        params = [
            {"params": [p for p in params if p is not relation]},
            {"params": [relation], "weight_decay": config.relation_weight_decay},
        ]
    if config.optimizer == "adam":
        # One fused pass over the (dense) embedding tables instead of eight: same update rule.
        return torch.optim.Adam(params, fused=True, **kwargs)
    if config.optimizer == "adagrad":
        # One fused pass, 3.5x faster for WN18RR's 40,943 x 512 table on 2 CPU cores
        # (benchmarks/adagrad_fused.py); the fused kernel takes no sparse gradients (fused=False: sparse tables).
        return torch.optim.Adagrad(params, fused=fused or None, **kwargs)
    return torch.optim.SGD(params, **kwargs)


def _relation_table(model: nn.Module | None) -> nn.Parameter | None:
    """The relation embedding table (``model.encoder.relation``), which ``relation_weight_decay`` decays."""
    encoder = getattr(model, "encoder", None)
    table = getattr(encoder, "relation", None)
    if not isinstance(table, nn.Embedding):
        raise ValueError("relation_weight_decay needs a model whose encoder holds a relation table (encoder.relation)")
    return table.weight


class PlateauSchedule:
    r"""Multiply the learning rate by :obj:`factor` when the validation MRR stops improving.

    The rule of :class:`torch.optim.lr_scheduler.ReduceLROnPlateau` in ``mode="max"`` with a
    relative threshold (LibKGE's ``lr_scheduler: ReduceLROnPlateau``): after each validation with
    value :math:`v`, the evaluation counts as better when :math:`v > b (1 + \tau)` for the best
    value :math:`b` so far; once more than :obj:`patience` evaluations in a row were not better,
    every group's rate becomes :math:`\max(\eta \cdot \text{factor}, \eta_{\min})` and the count
    restarts. It works on any object with ``param_groups`` (also :class:`CombinedOptimizer`) and
    its state goes into the checkpoint.

    Args:
        optimizer: what to adjust (its ``param_groups``).
        factor (float): :math:`0 < \text{factor} < 1`. (default: 0.1)
        patience (int): evaluations without improvement tolerated. (default: 10)
        threshold (float): :math:`\tau`. (default: 1e-4)
        min_lr (float): :math:`\eta_{\min}`. (default: 0)
    """

    def __init__(
        self, optimizer, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4, min_lr: float = 0.0
    ):
        if not 0 < factor < 1 or patience < 0 or threshold < 0 or min_lr < 0:
            raise ValueError(
                f"PlateauSchedule: need 0 < factor < 1, patience >= 0, threshold >= 0, min_lr >= 0; got "
                f"factor={factor}, patience={patience}, threshold={threshold}, min_lr={min_lr}"
            )
        self.optimizer = optimizer
        self.factor, self.patience = float(factor), int(patience)
        self.threshold, self.min_lr = float(threshold), float(min_lr)
        self.best = -math.inf
        self.bad = 0

    def start_epoch(self, epoch: int) -> bool:
        """Nothing happens at an epoch's start: the rate moves only after validations."""
        return False

    def step(self, value: float) -> bool:
        """Record one validation value; returns whether the rate was lowered."""
        if value > self.best * (1 + self.threshold):  # best = -inf: any value is better
            self.best, self.bad = float(value), 0
            return False
        self.bad += 1
        if self.bad <= self.patience:
            return False
        self.bad = 0
        for group in self.optimizer.param_groups:
            group["lr"] = max(group["lr"] * self.factor, self.min_lr)
        return True

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad = float(state["best"]), int(state["bad"])


class StepSchedule:
    r"""Multiply the learning rate by :obj:`factor` after each milestone epoch: epoch :math:`e`
    (counted from 1) trains at

    .. math::
        \eta_e = \eta_0 \cdot \text{factor}^{\,|\{m \in \text{milestones} \,:\, m < e\}|}

    for each parameter group's initial rate :math:`\eta_0` (:class:`torch.optim.lr_scheduler.MultiStepLR`
    on epochs). The RotatE authors' code divides its rate by 10 once half its steps are done
    (``milestones: [E / 2]``, ``factor: 0.1``). The rate is a function of the epoch alone, so a
    resumed run continues on the same schedule; the initial rates go into the checkpoint.

    Args:
        optimizer: what to adjust (its ``param_groups``).
        milestones (list of int): increasing positive epoch numbers.
        factor (float): :math:`0 < \text{factor}`. (default: 0.1)
    """

    def __init__(self, optimizer, milestones, factor: float = 0.1):
        if (
            not isinstance(milestones, list | tuple)
            or not milestones
            or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in milestones)
            or list(milestones) != sorted(set(milestones))
        ):
            raise ValueError(f"StepSchedule: milestones must be increasing positive epoch numbers, got {milestones!r}")
        if not factor > 0:
            raise ValueError(f"StepSchedule: factor must be > 0, got {factor}")
        self.optimizer = optimizer
        self.milestones, self.factor = [int(m) for m in milestones], float(factor)
        self.base = [float(group["lr"]) for group in optimizer.param_groups]

    def start_epoch(self, epoch: int) -> bool:
        """Set every group's rate for epoch ``epoch``; returns whether it changed."""
        scale = self.factor ** sum(m < epoch for m in self.milestones)
        changed = False
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            if group["lr"] != base * scale:
                group["lr"], changed = base * scale, True
        return changed

    def step(self, value: float) -> bool:
        """Validations do not move this schedule."""
        return False

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"base": list(self.base)}

    def load_state_dict(self, state: dict) -> None:
        self.base = [float(b) for b in state["base"]]


LR_SCHEDULES = ("none", "plateau", "step")


def build_lr_schedule(config: RunConfig, optimizer) -> PlateauSchedule | StepSchedule | None:
    """The learning-rate schedule a config names (``lr_scheduler``, ``lr_scheduler_options``)."""
    if config.lr_scheduler not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_scheduler {config.lr_scheduler!r}; expected one of {list(LR_SCHEDULES)}")
    if config.lr_scheduler == "none":
        if config.lr_scheduler_options:
            raise ValueError(f"lr_scheduler_options {config.lr_scheduler_options} given without an lr_scheduler")
        return None
    schedule, valid = {
        "plateau": (PlateauSchedule, ("factor", "patience", "threshold", "min_lr")),
        "step": (StepSchedule, ("milestones", "factor")),
    }[config.lr_scheduler]
    unknown = sorted(set(config.lr_scheduler_options) - set(valid))
    if unknown:
        raise ValueError(f"lr_scheduler {config.lr_scheduler!r} has no option {unknown}; its options: {list(valid)}")
    if config.lr_scheduler == "step" and "milestones" not in config.lr_scheduler_options:
        raise ValueError("lr_scheduler 'step' needs lr_scheduler_options milestones: a list of epochs, e.g. [188]")
    return schedule(optimizer, **config.lr_scheduler_options)
