"""Losses: ``loss(pos [B], neg [B, k], weight=None) -> scalar``; 1-N losses also have
``loss.forward_all(scores [B, E], targets) -> scalar``."""

from __future__ import annotations

import inspect

from torch import nn

from gnnns.losses.bce import BCELoss
from gnnns.losses.debiased import DebiasedInfoNCELoss
from gnnns.losses.infonce import InfoNCELoss
from gnnns.losses.margin import MarginRankingLoss
from gnnns.losses.nssa import NSSALoss
from gnnns.losses.softmax_cross_entropy import SoftmaxCrossEntropyLoss
from gnnns.losses.weighting import row_mean, self_adversarial_weights

LOSSES: dict[str, type[nn.Module]] = {
    "margin": MarginRankingLoss,
    "nssa": NSSALoss,
    "infonce": InfoNCELoss,
    "debiased": DebiasedInfoNCELoss,
    "sce": SoftmaxCrossEntropyLoss,
    "bce": BCELoss,
}


def loss_parameters(name: str) -> list[str]:
    """Names of the constructor arguments of the loss registered as :obj:`name`."""
    return list(inspect.signature(_loss_class(name)).parameters)


def build_loss(name: str, **kwargs: float) -> nn.Module:
    """The loss registered as :obj:`name` (see :data:`LOSSES`), built with :obj:`kwargs`.

    Raises:
        ValueError: for an unknown name, or a keyword the loss does not take.
    """
    cls = _loss_class(name)
    valid = loss_parameters(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"loss {name!r} ({cls.__name__}) does not take {unknown}; its parameters: {valid}")
    return cls(**kwargs)


def _loss_class(name: str) -> type[nn.Module]:
    key = name.lower()
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[key]


__all__ = [
    "LOSSES",
    "BCELoss",
    "DebiasedInfoNCELoss",
    "InfoNCELoss",
    "MarginRankingLoss",
    "NSSALoss",
    "SoftmaxCrossEntropyLoss",
    "build_loss",
    "loss_parameters",
    "row_mean",
    "self_adversarial_weights",
]
