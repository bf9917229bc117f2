"""The common part of samplers made of samplers, and the dense ``[B, k]`` weights they combine."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives


class SamplerWrapper(NegativeSampler):
    """Common part of the wrappers: they hold other samplers as submodules (so that ``.to()``
    and ``state_dict`` reach them), forward :meth:`set_progress` to them and report their
    epoch statistics under ``"<name>.<stat>"``.

    Args:
        samplers (Mapping[str, NegativeSampler]): the wrapped samplers, by name.
    """

    def __init__(self, samplers: Mapping[str, NegativeSampler]):
        if not samplers:
            raise ValueError(f"{type(self).__name__} needs at least one sampler to wrap, got none")
        for name, sampler in samplers.items():
            if not isinstance(sampler, NegativeSampler):
                raise TypeError(
                    f"{type(self).__name__}: {name!r} is a {type(sampler).__name__}, expected a NegativeSampler"
                )
        first = next(iter(samplers.values()))
        super().__init__(None, max_rounds=0, num_entities=first.num_entities)
        self.samplers = nn.ModuleDict(samplers)

    def corrupt_head(self, positives: Tensor) -> Tensor:
        """The sides of the first wrapped sampler, shape ``[B]``."""
        return next(iter(self.samplers.values())).corrupt_head(positives)

    def set_progress(self, fraction: float) -> None:
        super().set_progress(fraction)
        for sampler in self.samplers.values():
            sampler.set_progress(fraction)

    def epoch_stats(self) -> dict[str, float]:
        stats = super().epoch_stats()
        for name, sampler in self.samplers.items():
            stats.update({f"{name}.{key}": value for key, value in sampler.epoch_stats().items()})
        return stats


def _dense_weight(negatives: Negatives) -> Tensor:
    """The weights of ``negatives`` as a ``[B, k]`` tensor (a fresh copy; uniform if absent)."""
    if negatives.weight is None:
        return torch.full(negatives.entities.shape, 1.0 / negatives.entities.size(1), device=negatives.entities.device)
    return negatives.weight.clone()
