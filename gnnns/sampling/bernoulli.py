"""Bernoulli corruption: the side is chosen by the relation's cardinality."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.data.triple_index import sorted_distinct
from gnnns.sampling.uniform import UniformSampler


class BernoulliSampler(UniformSampler):
    r"""Corrupt the head with probability :math:`\mathrm{tph}_r / (\mathrm{tph}_r + \mathrm{hpt}_r)`.

    From "Knowledge Graph Embedding by Translating on Hyperplanes" (Wang et al., AAAI 2014).
    For relation :math:`r`, :math:`\mathrm{tph}_r` is the mean number of tails per distinct
    ``(head, r)`` pair and :math:`\mathrm{hpt}_r` the mean number of heads per distinct
    ``(r, tail)`` pair, counted on the training triples. A one-to-many relation (large tph) then
    mostly corrupts its head, which is less likely to produce a false negative than replacing
    one of its many valid tails. Replacement entities are uniform, as in :class:`UniformSampler`.
    Relations without training triples use 0.5.

    Args:
        kg (KnowledgeGraph): the training graph.
        filtered (bool): redraw negatives that are known training triples. (default: False)
        max_rounds (int): redraw rounds for ``filtered``. (default: 10)
    """

    def __init__(self, kg: KnowledgeGraph, filtered: bool = False, max_rounds: int = 10):
        super().__init__(kg, filtered=filtered, max_rounds=max_rounds)
        self.register_buffer("head_prob", bernoulli_head_probability(kg.train, kg.num_relations))

    def corrupt_head(self, positives: Tensor) -> Tensor:
        prob = self.head_prob[positives[:, 1]]
        return torch.rand(positives.size(0), device=positives.device) < prob


def bernoulli_head_probability(triples: Tensor, num_relations: int) -> Tensor:
    r"""Per-relation :math:`\mathrm{tph}/(\mathrm{tph} + \mathrm{hpt})`, shape ``[R]``.

    Args:
        triples (Tensor): training triples, shape ``[N, 3]`` (duplicates count once).
        num_relations (int): :math:`R`.
    """
    num_entities = int(triples[:, [0, 2]].max()) + 1 if len(triples) else 1
    head, rel, tail = triples.long().unbind(1)
    # Distinct triples, (head, r) and (r, tail) pairs as single int64 keys: a 1-D sort in place is far
    # faster and leaner than unique(dim=0) on millions of rows.
    triple_rel = sorted_distinct((head * num_relations + rel).mul_(num_entities).add_(tail))
    triple_rel = triple_rel.floor_divide_(num_entities).remainder_(num_relations)
    count = torch.bincount(triple_rel, minlength=num_relations).double()
    head_pairs = sorted_distinct(head * num_relations + rel).remainder_(num_relations)
    tail_pairs = sorted_distinct(rel * num_entities + tail).floor_divide_(num_entities)
    heads = torch.bincount(head_pairs, minlength=num_relations).double()
    tails = torch.bincount(tail_pairs, minlength=num_relations).double()
    tph = count / heads.clamp(min=1)
    hpt = count / tails.clamp(min=1)
    prob = tph / (tph + hpt).clamp(min=1e-12)
    return torch.where(count > 0, prob, torch.full_like(prob, 0.5)).float()
