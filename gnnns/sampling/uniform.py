"""Uniform corruption: the negative sampler of TransE."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.sampling.base import NegativeSampler


class UniformSampler(NegativeSampler):
    r"""Replace the head or the tail (fair coin) by entities drawn uniformly from all :math:`E`.

    From "Translating Embeddings for Modeling Multi-relational Data" (Bordes et al., NeurIPS
    2013). Each negative is :math:`(e, r, t)` or :math:`(h, r, e)` with
    :math:`e \sim \mathcal{U}\{0, \dots, E-1\}`, independently per negative.

    Args:
        kg (KnowledgeGraph): the training graph.
        filtered (bool): redraw negatives that are known training triples. (default: False)
        max_rounds (int): redraw rounds for ``filtered``. (default: 10)
    """

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        return torch.randint(self.num_entities, (positives.size(0), num_negatives), device=positives.device)
