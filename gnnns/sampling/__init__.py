"""Negative samplers behind one interface: ``sampler(positives, num_negatives, scorer=None)``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from gnnns.data import KnowledgeGraph
from gnnns.sampling.adversarial import AdversarialSampler
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.bernoulli import BernoulliSampler, bernoulli_head_probability
from gnnns.sampling.diagnostics import NegativeDiagnostics, hardness
from gnnns.sampling.dynamic import DynamicSampler
from gnnns.sampling.inbatch import InBatchSampler
from gnnns.sampling.khop import KHopSampler
from gnnns.sampling.negatives import Negatives, Scorer
from gnnns.sampling.nscaching import NSCachingSampler
from gnnns.sampling.typed import TypedSampler
from gnnns.sampling.uniform import UniformSampler
from gnnns.sampling.wrappers import Curriculum, Filtered, Mixture

SAMPLERS: dict[str, type[NegativeSampler]] = {
    "uniform": UniformSampler,
    "bernoulli": BernoulliSampler,
    "khop": KHopSampler,
    "typed": TypedSampler,
    "inbatch": InBatchSampler,
    "dynamic": DynamicSampler,
    "nscaching": NSCachingSampler,
    "adversarial": AdversarialSampler,
}
"""Samplers by registry name; ``build_sampler`` also knows the wrappers ``mixture`` and ``curriculum``."""

WRAPPERS = ("mixture", "curriculum")

__all__ = [
    "SAMPLERS",
    "AdversarialSampler",
    "BernoulliSampler",
    "Curriculum",
    "DynamicSampler",
    "Filtered",
    "InBatchSampler",
    "KHopSampler",
    "Mixture",
    "NSCachingSampler",
    "NegativeDiagnostics",
    "NegativeSampler",
    "Negatives",
    "Scorer",
    "TypedSampler",
    "UniformSampler",
    "bernoulli_head_probability",
    "build_sampler",
    "hardness",
]


def build_sampler(name: str, kg: KnowledgeGraph, filter_negatives: bool = False, **options) -> NegativeSampler:
    """A sampler by registry name, built from the training graph.

    Args:
        name (str): one of :data:`SAMPLERS`, or ``"mixture"`` / ``"curriculum"``.
        kg (KnowledgeGraph): the training graph.
        filter_negatives (bool): wrap the sampler in :class:`Filtered` (resample known training
            triples). A sampler's own ``filtered`` option, where it has one, is passed in ``options``.
        **options: the sampler's own arguments. ``mixture`` takes ``components``: a mapping of
            sampler name to weight, or a list of ``{"name": ..., "weight": ..., <options>}``;
            ``curriculum`` takes ``easy`` and ``hard`` (a name or ``{"name": ..., <options>}``;
            default ``uniform`` and ``dynamic``) and :class:`Curriculum`'s schedule arguments.

    Raises:
        ValueError: for an unknown name or an option the sampler does not take.
    """
    key = name.lower()
    if key == "mixture":
        sampler = _mixture(kg, **options)
    elif key == "curriculum":
        easy = _component(options.pop("easy", "uniform"), kg)
        hard = _component(options.pop("hard", "dynamic"), kg)
        _check_options(Curriculum, options, "curriculum", skip=("easy", "hard"))
        sampler = Curriculum(easy, hard, **options)
    else:
        if key not in SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}; expected one of {sorted([*SAMPLERS, *WRAPPERS])}")
        _check_options(SAMPLERS[key], options, key)
        sampler = SAMPLERS[key](kg, **options)
    return Filtered(sampler, kg) if filter_negatives else sampler


def _mixture(kg: KnowledgeGraph, components=None, **rest) -> Mixture:
    if rest:
        raise ValueError(f"sampler 'mixture' does not take {sorted(rest)}; it takes 'components'")
    if not components:
        raise ValueError("sampler 'mixture' needs components, e.g. {uniform: 0.5, khop: 0.5}")
    if isinstance(components, Mapping):
        components = [{"name": n, "weight": w} for n, w in components.items()]
    samplers, weights = {}, {}
    for spec in components:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        weight = float(spec.pop("weight", 1.0))
        label = spec["name"] if spec["name"] not in samplers else f"{spec['name']}{len(samplers)}"
        samplers[label] = _component(spec, kg)
        weights[label] = weight
    return Mixture(samplers, weights)


def _component(spec: str | Mapping, kg: KnowledgeGraph) -> NegativeSampler:
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    if "name" not in spec:
        raise ValueError(f"a component sampler needs a 'name', got {spec}")
    return build_sampler(spec.pop("name"), kg, **spec)


def _check_options(cls: type, options: Mapping, name: str, skip: tuple[str, ...] = ()) -> None:
    valid = [p for p in inspect.signature(cls).parameters if p not in ("kg", *skip)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"sampler {name!r} ({cls.__name__}) does not take {unknown}; its options: {valid}")
