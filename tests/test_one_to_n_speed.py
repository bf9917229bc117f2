"""The 1-N speed comparison (benchmarks/one_to_n_speed.py) counts the queries both sides train on."""

from __future__ import annotations

import pytest
import torch

from gnnns.loaders import OneToNLoader
from tests.benchmark_scripts import benchmark_script

ENTITIES, RELATIONS = 30, 4


def random_triples() -> torch.Tensor:
    """500 triples over few entities, so that many share a (head, relation) or (tail, relation) pair."""
    g = torch.Generator().manual_seed(3)
    heads, tails = torch.randint(ENTITIES, (2, 500), generator=g)
    return torch.stack([heads, torch.randint(RELATIONS, (500,), generator=g), tails], 1)


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("one_to_n_speed") as module:
        yield module


def test_queries_are_the_distinct_pairs_of_both_directions(bench):
    # Tail queries (0, 0, ?) and (1, 0, ?); head queries (?, 0, 1), (?, 0, 2) and (?, 1, 2).
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 0, 2], [1, 1, 2], [0, 0, 1]])
    assert bench.count_queries(triples) == 2 + 1 + 3


def test_query_count_is_what_gnnns_kvsall_trains_on(bench):
    triples = random_triples()
    loader = OneToNLoader(triples, ENTITIES, RELATIONS, batch_size=32, mode="kvsall")
    assert bench.count_queries(triples) == len(loader.queries) < 2 * len(triples)


def test_query_count_is_what_pykeen_lcwa_trains_on(bench):
    pytest.importorskip("pykeen")
    from pykeen.triples import TriplesFactory
    from pykeen.triples.instances import LCWAInstances

    triples = random_triples()
    tf = TriplesFactory(
        mapped_triples=triples,
        entity_to_id={f"e{i}": i for i in range(ENTITIES)},
        relation_to_id={f"r{i}": i for i in range(RELATIONS)},
        create_inverse_triples=True,
    )
    assert bench.count_queries(triples) == len(LCWAInstances.from_triples_factory(tf, target="tail"))
