"""A seeded random knowledge graph with ogbl-wikikg2's shape, at any fraction of its size."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data.eval_candidates import RandomEvalCandidates
from gnnns.data.graph import KnowledgeGraph

WIKIKG2_SHAPE = {"entities": 2_500_604, "relations": 535, "train": 16_109_182, "valid": 429_456, "test": 598_543}
"""Counts of ogbl-wikikg2 (Hu et al., "Open Graph Benchmark", NeurIPS 2020)."""


def wikikg2_like(
    scale: float = 1.0,
    num_types: int = 64,
    entity_exponent: float = 0.9,
    relation_exponent: float = 1.1,
    seed: int = 0,
    eval_negatives: int = 0,
) -> KnowledgeGraph:
    r"""A typed random graph with the entity, relation and triple counts of ogbl-wikikg2 times
    ``scale`` and heavy-tailed degrees and relation frequencies, for scale benchmarks and tests.

    Entities get one of ``num_types`` types (type sizes Zipf-distributed). Relation :math:`r` has
    a domain type and a range type and a frequency :math:`\propto (\mathrm{rank}_r + 1)^{-a_R}`;
    within a type, entity :math:`e` is picked with probability :math:`\propto (\mathrm{rank}_e +
    1)^{-a_E}` (a power-law degree distribution, as in Wikidata). Duplicate triples are
    redrawn, and the graph has exactly the target counts. Every step is a vectorised draw (inverse
    CDFs and a sort), so the full size takes seconds to a minute and about 2 GB.

    Args:
        scale (float): fraction of ogbl-wikikg2's size. (default: 1.0)
        num_types (int): entity types. (default: 64)
        entity_exponent (float): :math:`a_E`. (default: 0.9)
        relation_exponent (float): :math:`a_R`. (default: 1.1)
        seed (int): random seed. (default: 0)
        eval_negatives (int): with a positive :math:`K`, valid and test get :math:`K` head and
            :math:`K` tail candidates per triple in :attr:`~KnowledgeGraph.eval_negatives`, drawn
            uniformly from all entities and unfiltered as ogbl-wikikg2's are, so that evaluation
            follows OGB's protocol (:class:`~gnnns.data.RandomEvalCandidates`: generated on
            demand, no memory per query). (default: 0, rank against all entities)
    """
    if not 0 < scale <= 1:
        raise ValueError(f"wikikg2_like: scale must be in (0, 1], got {scale}")
    if eval_negatives < 0:
        raise ValueError(f"wikikg2_like: eval_negatives must be >= 0, got {eval_negatives}")
    gen = torch.Generator().manual_seed(seed)
    num_entities = max(int(WIKIKG2_SHAPE["entities"] * scale), num_types * 4)
    num_relations = WIKIKG2_SHAPE["relations"]
    splits = {name: max(int(WIKIKG2_SHAPE[name] * scale), 1) for name in ("train", "valid", "test")}
    total = sum(splits.values())

    type_of = _zipf_draw(num_types, num_entities, 1.0, gen)
    type_of[torch.randperm(num_entities, generator=gen)[:num_types]] = torch.arange(num_types)  # no empty type
    by_type = torch.argsort(type_of, stable=True)  # entities grouped by type
    type_start = torch.searchsorted(type_of[by_type], torch.arange(num_types + 1))
    # Popularity within a type follows the entity's rank inside its type group.
    rank_in_type = torch.arange(num_entities) - type_start[type_of[by_type]]
    weight = (rank_in_type.double() + 1).pow(-entity_exponent)
    cdf = torch.cumsum(weight, 0)
    cdf_start = torch.cat([torch.zeros(1, dtype=torch.float64), cdf])[type_start]

    domain = torch.randint(num_types, (num_relations,), generator=gen)
    range_ = torch.randint(num_types, (num_relations,), generator=gen)
    # Popular pairs repeat, and duplicates are dropped: draw in rounds until there are enough.
    keys = torch.empty(0, dtype=torch.long)
    for _ in range(16):
        missing = total - len(keys)
        if missing <= 0:
            break
        relation = _zipf_draw(num_relations, int(missing * 1.3) + 16, relation_exponent, gen)
        heads = by_type[_draw_in_type(domain[relation], cdf, cdf_start, gen)]
        tails = by_type[_draw_in_type(range_[relation], cdf, cdf_start, gen)]
        keys = torch.unique(torch.cat([keys, (heads * num_relations + relation) * num_entities + tails]))
    keys = keys[torch.randperm(len(keys), generator=gen)[:total]]
    triples = torch.stack(
        [keys // (num_relations * num_entities), keys // num_entities % num_relations, keys % num_entities], 1
    )

    n_train = len(triples) - splits["valid"] - splits["test"]
    train, valid, test = triples[:n_train], triples[n_train : n_train + splits["valid"]], triples[-splits["test"] :]
    entity_types = torch.stack([torch.arange(num_entities), type_of], 1)
    candidates = {}
    if eval_negatives > 0:
        # Odd and even seeds keep the valid and test streams apart for every graph seed.
        candidates = {
            split: RandomEvalCandidates(len(part), num_entities, eval_negatives, seed=2 * seed + offset)
            for offset, (split, part) in enumerate((("valid", valid), ("test", test)), start=1)
        }
    return KnowledgeGraph(
        train,
        valid,
        test,
        num_entities=num_entities,
        num_relations=num_relations,
        entity_types=entity_types,
        name=f"wikikg2-like-{scale:g}",
        eval_negatives=candidates,
    )


def _zipf_draw(n: int, size: int, exponent: float, gen: torch.Generator) -> Tensor:
    """``size`` draws from ``0..n-1`` with probability proportional to ``(i + 1)^-exponent``."""
    cdf = torch.cumsum((torch.arange(n, dtype=torch.float64) + 1).pow(-exponent), 0)
    u = torch.rand(size, generator=gen, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u).clamp_(max=n - 1)


def _draw_in_type(types: Tensor, cdf: Tensor, cdf_start: Tensor, gen: torch.Generator) -> Tensor:
    """One position in the type-grouped entity order per entry of ``types``, by popularity."""
    low, high = cdf_start[types], cdf_start[types + 1]
    u = low + torch.rand(len(types), generator=gen, dtype=torch.float64) * (high - low)
    return torch.searchsorted(cdf, u).clamp_(max=len(cdf) - 1)
