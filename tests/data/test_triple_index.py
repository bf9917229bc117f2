import pytest
import torch

from gnnns.data import TripleIndex
from gnnns.data.triple_index import isin_sorted, sorted_distinct


def random_graph(seed: int, num_entities: int = 12, num_relations: int = 3, n: int = 60) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    triples = torch.stack(
        [
            torch.randint(num_entities, (n,), generator=g),
            torch.randint(num_relations, (n,), generator=g),
            torch.randint(num_entities, (n,), generator=g),
        ],
        1,
    )
    return torch.cat([triples, triples[: n // 4]])  # duplicates on purpose


@pytest.mark.parametrize("seed", range(5))
def test_contains_matches_a_python_set(seed):
    known = random_graph(seed)
    index = TripleIndex(known, 12, 3)
    truth = {tuple(t) for t in known.tolist()}
    queries = torch.cat([known, random_graph(seed + 100)]).view(-1, 2, 3)  # [..., 3] input
    expected = torch.tensor([[tuple(t) in truth for t in row] for row in queries.tolist()])
    assert index.contains(queries).shape == (queries.size(0), 2)
    assert torch.equal(index.contains(queries), expected)
    assert len(index) == len(truth)


def test_an_index_of_several_parts_knows_their_union_on_both_sides():
    parts = [random_graph(1), random_graph(2, n=7), random_graph(3, n=0)[:0], random_graph(4, n=20)]
    index = TripleIndex(parts, 12, 3)
    truth = {tuple(t) for part in parts for t in part.tolist()}
    queries = random_graph(5, n=300)
    expected = torch.tensor([tuple(t) in truth for t in queries.tolist()])
    assert torch.equal(index.contains(queries), expected) and len(index) == len(truth)
    heads = {(t, r): sorted({h for h, r2, t2 in truth if (t2, r2) == (t, r)}) for _, r, t in truth}
    rows, entities = index.known(queries[:, 2], queries[:, 1], predict_head=True)
    for i, (_, r, t) in enumerate(queries.tolist()):
        assert sorted(entities[rows == i].tolist()) == heads.get((t, r), [])
    with pytest.raises(ValueError, match="relation ids must lie in"):
        TripleIndex([parts[0], torch.tensor([[0, 3, 1]])], 12, 3)


@pytest.mark.parametrize("seed", range(5))
def test_contains_corrupted_matches_a_python_set_on_both_sides(seed):
    known = random_graph(seed)
    index = TripleIndex(known, 12, 3)
    truth = {tuple(t) for t in known.tolist()}
    g = torch.Generator().manual_seed(seed)
    positives = known[torch.randint(len(known), (20,), generator=g)]
    entities = torch.randint(12, (20, 7), generator=g)
    corrupt_head = torch.rand(20, generator=g) < 0.5
    expected = torch.tensor(
        [
            [((e, r, t) if head else (h, r, e)) in truth for e in row]
            for (h, r, t), row, head in zip(positives.tolist(), entities.tolist(), corrupt_head.tolist(), strict=True)
        ]
    )
    result = index.contains_corrupted(positives, entities, corrupt_head)
    assert result.shape == (20, 7)
    assert torch.equal(result, expected)


@pytest.mark.parametrize("predict_head", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_known_lists_every_answer_once(seed, predict_head):
    known = random_graph(seed)
    index = TripleIndex(known, 12, 3)
    kept = torch.arange(12).repeat_interleave(3)
    relation = torch.arange(3).repeat(12)
    row, entity = index.known(kept, relation, predict_head=predict_head)
    got = sorted(zip(row.tolist(), entity.tolist(), strict=True))
    expected = sorted(
        {
            (q, (h if predict_head else t))
            for q, (k, r) in enumerate(zip(kept.tolist(), relation.tolist(), strict=True))
            for h, rr, t in known.tolist()
            if rr == r and (t if predict_head else h) == k
        }
    )
    assert got == expected


def test_known_takes_int32_ids_and_refuses_reciprocal_ones():
    # (90000 R + 40) E ~ 4.5e11: int32 arithmetic would wrap around and find no answers.
    entities, relations = 100_000, 50
    triples = torch.stack([torch.full((200,), 90_000), torch.full((200,), 40), torch.arange(200)], 1)
    index = TripleIndex(triples, entities, relations)
    for dtype in (torch.int64, torch.int32):
        row, entity = index.known(torch.tensor([90_000], dtype=dtype), torch.tensor([40], dtype=dtype), False)
        assert row.tolist() == [0] * 200 and sorted(entity.tolist()) == list(range(200)), dtype
    with pytest.raises(ValueError, match=r"relation ids must lie in \[0, 50\)"):
        index.known(torch.tensor([1]), torch.tensor([90]), False)


def test_empty_index_knows_nothing():
    index = TripleIndex(torch.empty(0, 3, dtype=torch.long), 5, 2)
    assert not index.contains(torch.tensor([[0, 0, 1]])).any()
    row, entity = index.known(torch.tensor([0, 1]), torch.tensor([0, 1]), predict_head=False)
    assert row.numel() == entity.numel() == 0


def test_sorted_distinct_and_isin_sorted_match_python_sets():
    g = torch.Generator().manual_seed(3)
    keys = torch.randint(-50, 2**40, (500,), generator=g)
    keys = torch.cat([keys, keys[:100], torch.tensor([-7, -7])])
    distinct = sorted_distinct(keys.clone())
    assert distinct.tolist() == sorted(set(keys.tolist()))
    queries = torch.cat([keys[:30], torch.randint(-50, 2**40, (40,), generator=g)]).view(7, 10)
    truth = set(keys.tolist())
    assert isin_sorted(distinct, queries).tolist() == [[q in truth for q in row] for row in queries.tolist()]
    assert not isin_sorted(distinct[:0], queries).any()
