import pytest
import torch

from gnnns.loaders import OneToNLoader, TripleLoader, reciprocal_queries


def test_triple_loader_covers_every_triple_once():
    triples = torch.arange(30).view(10, 3)
    torch.manual_seed(0)
    loader = TripleLoader(triples, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b) for b in batches] == [4, 4, 2]
    seen = torch.cat(batches)
    assert sorted(seen[:, 0].tolist()) == sorted(triples[:, 0].tolist())


def test_triple_loader_reciprocal():
    loader = TripleLoader(torch.tensor([[0, 1, 2]]), batch_size=8, shuffle=False, reciprocal=True, num_relations=3)
    assert next(iter(loader)).tolist() == [[0, 1, 2], [2, 4, 0]]


def test_reciprocal_queries():
    queries, answers = reciprocal_queries(torch.tensor([[0, 1, 2], [3, 0, 4]]), num_relations=2)
    assert queries.tolist() == [[0, 1], [3, 0], [2, 3], [4, 2]]
    assert answers.tolist() == [2, 4, 0, 3]


def test_kvsall_targets_mark_every_known_answer():
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 1]])
    loader = OneToNLoader(triples, num_entities=4, num_relations=1, batch_size=10, mode="kvsall", shuffle=False)
    queries, targets = next(iter(loader))
    got = {tuple(q): set(torch.nonzero(t).flatten().tolist()) for q, t in zip(queries.tolist(), targets, strict=True)}
    # (0, r0) -> {1, 2}; (3, r0) -> {1}; inverse (1, r1) -> {0, 3}; (2, r1) -> {0}
    assert got == {(0, 0): {1, 2}, (3, 0): {1}, (1, 1): {0, 3}, (2, 1): {0}}


def test_1vsall_yields_each_pair_once():
    triples = torch.tensor([[0, 0, 1], [0, 0, 2]])
    loader = OneToNLoader(triples, num_entities=3, num_relations=1, batch_size=3, mode="1vsall")
    pairs = sorted((tuple(q), a) for qs, ans in loader for q, a in zip(qs.tolist(), ans.tolist(), strict=True))
    assert pairs == [((0, 0), 1), ((0, 0), 2), ((1, 1), 0), ((2, 1), 0)]


def test_kvsall_targets_of_int32_triples_match_int64_ones():
    # (49999 * 22 + 3) * 50000 ~ 5.5e10: int32 keys would wrap around and lose the answers.
    triples = torch.tensor([[49999, 3, 49998], [49999, 3, 12], [5, 3, 49999]])
    targets = {}
    for dtype in (torch.int64, torch.int32):
        loader = OneToNLoader(triples.to(dtype), 50000, 11, batch_size=10, mode="kvsall", shuffle=False)
        queries, multi_hot = next(iter(loader))
        targets[dtype] = {
            tuple(q): torch.nonzero(t).flatten().tolist() for q, t in zip(queries.tolist(), multi_hot, strict=True)
        }
    assert targets[torch.int32] == targets[torch.int64]
    # Tail queries (h, r) and head queries (t, r + R) with R = 11.
    expected = {(49999, 3): [12, 49998], (5, 3): [49999], (49998, 14): [49999], (12, 14): [49999], (49999, 14): [5]}
    assert targets[torch.int64] == expected


def test_relation_ids_past_num_relations_are_refused():
    # With R = 1, relation 1 would become the inverse of relation 0 and its answers merged.
    triples = torch.tensor([[0, 0, 1], [1, 1, 2]])
    with pytest.raises(ValueError, match=r"relation ids must lie in \[0, 1\)"):
        OneToNLoader(triples, num_entities=3, num_relations=1, batch_size=2, mode="kvsall")
    with pytest.raises(ValueError, match=r"relation ids must lie in \[0, 1\)"):
        TripleLoader(triples, batch_size=2, reciprocal=True, num_relations=1)
