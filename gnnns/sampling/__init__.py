"""Negative samplers behind one interface: ``sampler(positives, num_negatives, scorer=None)``."""

from __future__ import annotations

from gnnns.data import KnowledgeGraph
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.bernoulli import BernoulliSampler, bernoulli_head_probability
from gnnns.sampling.negatives import Negatives, Scorer
from gnnns.sampling.uniform import UniformSampler

SAMPLERS: dict[str, type[NegativeSampler]] = {
    "uniform": UniformSampler,
    "bernoulli": BernoulliSampler,
}

__all__ = [
    "SAMPLERS",
    "BernoulliSampler",
    "NegativeSampler",
    "Negatives",
    "Scorer",
    "UniformSampler",
    "bernoulli_head_probability",
    "build_sampler",
]


def build_sampler(name: str, kg: KnowledgeGraph, **kwargs) -> NegativeSampler:
    """A sampler by registry name (``uniform``, ``bernoulli``), built from the training graph."""
    key = name.lower()
    if key not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[key](kg, **kwargs)
