"""Small random knowledge graphs shared by the tests."""

import torch

from gnnns.data import KnowledgeGraph


def random_kg(seed: int = 0, num_entities: int = 40, num_relations: int = 3, n: int = 200) -> KnowledgeGraph:
    """``n`` uniform random triples (duplicates dropped) as a training graph, seeded."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(num_entities, (n,), generator=g)
    r = torch.randint(num_relations, (n,), generator=g)
    t = torch.randint(num_entities, (n,), generator=g)
    triples = torch.unique(torch.stack([h, r, t], 1), dim=0)
    return KnowledgeGraph(triples, num_entities=num_entities, num_relations=num_relations)
