"""Samplers made of samplers: false-negative filtering, mixtures and curricula.

Each lives in its own module (:mod:`~gnnns.sampling.filtered`, :mod:`~gnnns.sampling.mixture`,
:mod:`~gnnns.sampling.curriculum`, with their common base in :mod:`~gnnns.sampling.sampler_wrapper`);
this module keeps ``from gnnns.sampling.wrappers import ...`` working.
"""

from gnnns.sampling.curriculum import Curriculum, Schedule
from gnnns.sampling.filtered import Filtered
from gnnns.sampling.mixture import Mixture, split_counts
from gnnns.sampling.sampler_wrapper import SamplerWrapper

__all__ = ["Curriculum", "Filtered", "Mixture", "SamplerWrapper", "Schedule", "split_counts"]
