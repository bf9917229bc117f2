"""Small random knowledge graphs shared by the tests."""

from pathlib import Path

import torch

from gnnns.config import RunConfig
from gnnns.data import KnowledgeGraph


def random_kg(seed: int = 0, num_entities: int = 40, num_relations: int = 3, n: int = 200) -> KnowledgeGraph:
    """``n`` uniform random triples (duplicates dropped) as a training graph, seeded."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(num_entities, (n,), generator=g)
    r = torch.randint(num_relations, (n,), generator=g)
    t = torch.randint(num_entities, (n,), generator=g)
    triples = torch.unique(torch.stack([h, r, t], 1), dim=0)
    return KnowledgeGraph(triples, num_entities=num_entities, num_relations=num_relations)


def small_run(directory: Path, name: str, **settings) -> RunConfig:
    """A few-second training run of DistMult on a toy graph (batches of 32, 8 negatives, NSSA),
    writing into ``directory / name``; ``settings`` override any field."""
    base = dict(
        model="distmult",
        dim=16,
        num_negatives=8,
        batch_size=32,
        epochs=3,
        lr=0.05,
        loss="nssa",
        margin=2.0,
        progress=False,
        output=str(Path(directory) / name),
    )
    return RunConfig(**{**base, **settings})
