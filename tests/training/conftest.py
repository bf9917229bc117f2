import pytest
import torch

from gnnns.data import KnowledgeGraph


@pytest.fixture
def ring_kg() -> KnowledgeGraph:
    """A learnable toy graph: relation 0 is i -> i+1 on a ring, relation 1 its inverse,
    relation 2 the two-step composition i -> i+2. 60 entities, 180 triples."""
    n = 60
    i = torch.arange(n)
    triples = torch.cat(
        [
            torch.stack([i, torch.zeros_like(i), (i + 1) % n], 1),
            torch.stack([(i + 1) % n, torch.ones_like(i), i], 1),
            torch.stack([i, torch.full_like(i, 2), (i + 2) % n], 1),
        ]
    )
    perm = torch.randperm(len(triples), generator=torch.Generator().manual_seed(0))
    triples = triples[perm]
    return KnowledgeGraph(triples[:150], triples[150:165], triples[165:], num_entities=n, num_relations=3, name="ring")
