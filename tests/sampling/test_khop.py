from collections import Counter, deque

import pytest
import torch

from gnnns.data import KnowledgeGraph, synthetic_kg
from gnnns.sampling.khop import KHopSampler


def bfs_distances(triples: list[tuple[int, int, int]], source: int) -> dict[int, int]:
    """Hop distances from ``source`` in the undirected graph of ``triples`` (relations ignored)."""
    neighbours: dict[int, set[int]] = {}
    for h, _, t in triples:
        if h != t:
            neighbours.setdefault(h, set()).add(t)
            neighbours.setdefault(t, set()).add(h)
    dist, queue = {source: 0}, deque([source])
    while queue:
        node = queue.popleft()
        for nxt in neighbours.get(node, ()):
            if nxt not in dist:
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
    return dist


def tree_kg() -> KnowledgeGraph:
    """30 entities: a path 0..19 with three relations in both orientations, a star on 20 (leaves
    21..26), chords, a self-loop and a duplicate; 27 is linked to 26 only; 28 and 29 appear only
    in valid/test."""
    triples = []
    for i in range(19):
        rel = i % 3
        triples.append((i, rel, i + 1) if i % 2 else (i + 1, rel, i))
    triples += [(20, 1, leaf) for leaf in range(21, 27)]
    triples += [(5, 2, 12), (20, 0, 10), (26, 2, 27), (3, 0, 3), (7, 1, 8), (7, 2, 8)]
    return KnowledgeGraph(
        torch.tensor(triples),
        valid=torch.tensor([[28, 0, 4]]),
        test=torch.tensor([[29, 1, 20]]),
        num_entities=30,
        num_relations=3,
    )


def star_kg(inward: bool = False) -> KnowledgeGraph:
    """Centre 0 linked by relation 0 to leaves 1..8 (outward, or inward), plus (0, 1, 1); 9..19 isolated."""
    edges = [(leaf, 0, 0) if inward else (0, 0, leaf) for leaf in range(1, 9)] + [(0, 1, 1)]
    return KnowledgeGraph(torch.tensor(edges), num_entities=20, num_relations=2)


def test_shapes_ranges_and_given_sides():
    kg = tree_kg()
    sampler = KHopSampler(kg, k=2)
    pos = kg.train[:10]
    neg = sampler(pos, 7)
    assert neg.entities.shape == (10, 7) and neg.entities.dtype == torch.long
    assert neg.corrupt_head.shape == (10,) and neg.weight is None
    assert int(neg.entities.min()) >= 0 and int(neg.entities.max()) < kg.num_entities
    sides = torch.tensor([True, False] * 5)
    assert torch.equal(sampler.sample(pos, 3, sides).corrupt_head, sides)
    with pytest.raises(ValueError, match="at least 1"):
        KHopSampler(kg, k=0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_walk_candidates_are_within_k_hops_and_never_known(k):
    torch.manual_seed(k)
    kg = tree_kg()
    train = [tuple(t) for t in kg.train.tolist()]
    known = set(train)
    sampler = KHopSampler(kg, k=k)
    pos = torch.cat([kg.train, kg.valid, kg.test]).repeat(4, 1)
    sides = torch.rand(len(pos)) < 0.5
    entities, from_walk = sampler.candidates(pos, 16, sides)
    assert bool(from_walk.any())
    farthest = 0
    for (h, r, t), head, row, walked in zip(
        pos.tolist(), sides.tolist(), entities.tolist(), from_walk.tolist(), strict=True
    ):
        kept, true = (t, h) if head else (h, t)
        dist = bfs_distances(train, kept)
        for cand, ok in zip(row, walked, strict=True):
            assert cand not in (kept, true)
            assert ((cand, r, kept) if head else (kept, r, cand)) not in known
            if ok:
                assert 1 <= dist.get(cand, 99) <= k
                farthest = max(farthest, dist[cand])
    assert farthest == k


def test_k1_draws_exactly_the_unknown_neighbours_of_a_random_graph():
    g = torch.Generator().manual_seed(5)
    triples = torch.unique(torch.randint(0, 25, (160, 3), generator=g) % torch.tensor([25, 3, 25]), dim=0)
    kg = KnowledgeGraph(triples, num_entities=25, num_relations=3)
    known = {tuple(t) for t in triples.tolist()}
    torch.manual_seed(0)
    sampler = KHopSampler(kg, k=1)
    pos = triples[:30]
    sides = torch.arange(30) % 2 == 0
    entities, from_walk = sampler.candidates(pos, 600, sides)
    for (h, r, t), head, row, walked in zip(
        pos.tolist(), sides.tolist(), entities.tolist(), from_walk.tolist(), strict=True
    ):
        kept, true = (t, h) if head else (h, t)
        allowed = {
            v
            for v in range(25)
            if v not in (kept, true)
            and ((v, r, kept) if head else (kept, r, v)) not in known
            and any((a, b) in ((kept, v), (v, kept)) for a, _, b in known)
        }
        drawn = {cand for cand, ok in zip(row, walked, strict=True) if ok}
        assert drawn == allowed  # every allowed neighbour is hit (each has probability >= 1/25 a draw)


def test_k1_reaches_every_allowed_neighbour_in_proportion():
    torch.manual_seed(0)
    sampler = KHopSampler(star_kg(), k=1)
    # Query (0, 1, ?) with true tail 1: the known answer is 1 itself, so leaves 2..8 remain.
    pos = torch.tensor([[0, 1, 1]]).repeat(50, 1)
    entities, from_walk = sampler.candidates(pos, 140, torch.zeros(50, dtype=torch.bool))
    assert bool(from_walk.all())
    counts = Counter(entities.flatten().tolist())
    assert set(counts) == set(range(2, 9))
    share = torch.tensor([counts[leaf] for leaf in range(2, 9)], dtype=torch.float) / entities.numel()
    assert float((share - 1 / 7).abs().max()) < 0.02  # 7,000 draws: one standard deviation is 0.004


def test_in_links_are_walked_too():
    torch.manual_seed(0)
    sampler = KHopSampler(star_kg(inward=True), k=1)
    # (?, 1, 0) has no known heads; 0's links are all incoming (relation 0) but one, to leaf 1.
    pos = torch.tensor([[2, 1, 0]]).repeat(20, 1)
    entities, from_walk = sampler.candidates(pos, 50, torch.ones(20, dtype=torch.bool))
    assert bool(from_walk.all()) and set(entities.flatten().tolist()) == {1, 3, 4, 5, 6, 7, 8}


@pytest.mark.parametrize("num_negatives", [1, 50])
def test_exactly_the_unknown_neighbours_are_drawn(num_negatives):
    # 0 -> 1..8 by relation 0 and 0 -> 9..12 by relation 1; (0, 0, ?) with true tail 1 knows 1..8.
    # One negative per row puts the 8 known answers above the per-batch table's limit (4 n), so
    # both the hashed and the searched check are exercised.
    triples = torch.tensor([[0, 0, leaf] for leaf in range(1, 9)] + [[0, 1, leaf] for leaf in range(9, 13)])
    torch.manual_seed(0)
    sampler = KHopSampler(KnowledgeGraph(triples, num_entities=13, num_relations=2), k=1)
    rows = 2000 // num_negatives
    pos = torch.tensor([[0, 0, 1]]).repeat(rows, 1)
    entities, from_walk = sampler.candidates(pos, num_negatives, torch.zeros(rows, dtype=torch.bool))
    # A walk is accepted with probability 1/3, so 11 walks all fail for (2/3)**11 = 1.2 % of them.
    assert set(entities[from_walk].tolist()) == {9, 10, 11, 12}
    assert float(from_walk.float().mean()) > 0.95
    assert set(entities[~from_walk].tolist()).isdisjoint(range(9))


def test_reciprocal_positives_are_filtered_like_the_triples_they_reverse():
    # (1, 0 + R, 0) is (0, 0, 1) read backwards: replacing its head asks (0, 0, ?), whose known
    # answers are 1..8, so the walks from 0 may only end on 9..12, as for (0, 0, 1) itself.
    triples = torch.tensor([[0, 0, leaf] for leaf in range(1, 9)] + [[0, 1, leaf] for leaf in range(9, 13)])
    sampler = KHopSampler(KnowledgeGraph(triples, num_entities=13, num_relations=2), k=1)
    torch.manual_seed(0)
    reciprocal = torch.tensor([[1, 2, 0]]).repeat(500, 1)
    entities, from_walk = sampler.candidates(reciprocal, 4, torch.ones(500, dtype=torch.bool))
    assert set(entities[from_walk].tolist()) == {9, 10, 11, 12}
    assert set(entities[~from_walk].tolist()).isdisjoint(range(9))
    with pytest.raises(ValueError, match=r"relation ids must lie in \[0, 4\)"):
        sampler(torch.tensor([[1, 4, 0]]), 2)


def test_head_side_excludes_incoming_known_answers_and_falls_back():
    torch.manual_seed(0)
    sampler = KHopSampler(star_kg(inward=True), k=2)
    # (?, 0, 0) with true head 1: every neighbour of 0 is a known head, so nothing is left to walk to.
    pos = torch.tensor([[1, 0, 0]]).repeat(8, 1)
    entities, from_walk = sampler.candidates(pos, 32, torch.ones(8, dtype=torch.bool))
    assert not bool(from_walk.any())
    assert set(entities.flatten().tolist()) <= set(range(9, 20))
    assert sampler.epoch_stats()["fallback_rate"] == 1.0


def test_unfiltered_keeps_known_answers_but_not_the_positive():
    torch.manual_seed(0)
    pos = torch.tensor([[0, 0, 1]]).repeat(20, 1)
    tail = torch.zeros(20, dtype=torch.bool)
    loose, walked = KHopSampler(star_kg(), k=1, filtered=False).candidates(pos, 50, tail)
    assert bool(walked.all()) and set(loose.flatten().tolist()) == set(range(2, 9))
    _, walked = KHopSampler(star_kg(), k=1).candidates(pos, 50, tail)
    assert not bool(walked.any())


def test_fallback_rate_counts_the_isolated_kept_entity():
    torch.manual_seed(0)
    kg = tree_kg()
    sampler = KHopSampler(kg, k=1)
    # Row 0 keeps 28 (valid/test only: no training link); row 1 keeps the star centre 20, whose
    # relation 2 has no known tails: a walk is rejected only if it picks 21 (the true tail, 1 of 7
    # links), so 11 walks all failing has probability 7**-11.
    pos = torch.tensor([[28, 0, 4], [20, 2, 21]])
    entities, from_walk = sampler.candidates(pos, 64, torch.tensor([False, False]))
    assert not bool(from_walk[0].any()) and bool(from_walk[1].all())
    assert set(entities[1].tolist()) <= {10, 22, 23, 24, 25, 26}
    stats = sampler.epoch_stats()
    assert stats == {"fallback_rate": 0.5, "false_negatives_left": 0.0}
    assert sampler.epoch_stats()["fallback_rate"] == 0.0  # reset


def test_walk_lengths_are_split_evenly_within_each_row():
    # 0 - 1, and 1 links to 2..11: one step from 0 always ends at 1, two steps at one of 2..11
    # (back at 0 is rejected and walked again). With k = 2 and n = 64, each row gets 32 walks of
    # each length.
    triples = torch.tensor([[0, 0, 1]] + [[1, 0, leaf] for leaf in range(2, 12)])
    kg = KnowledgeGraph(triples, num_entities=14, num_relations=2)
    torch.manual_seed(0)
    sampler = KHopSampler(kg, k=2)
    pos = torch.tensor([[0, 1, 13]]).repeat(30, 1)
    for n in (64, 65):
        entities, from_walk = sampler.candidates(pos, n, torch.zeros(30, dtype=torch.bool))
        assert bool(from_walk.all())
        ones = (entities == 1).sum(1)
        assert set(ones.tolist()) <= ({32} if n == 64 else {32, 33})
        assert bool(((entities >= 2) & (entities <= 11) | (entities == 1)).all())


def test_synthetic_batch_is_vectorised_and_filtered():
    kg = synthetic_kg()
    torch.manual_seed(0)
    sampler = KHopSampler(kg)
    pos = kg.train[torch.randint(len(kg.train), (1024,))]
    neg = sampler(pos, 128)
    assert neg.entities.shape == (1024, 128)
    assert not bool(kg.train_index().contains_corrupted(pos, neg.entities, neg.corrupt_head).any())
    stats = sampler.epoch_stats()
    assert 0.0 <= stats["fallback_rate"] < 0.2
