import io
from functools import partial

import pytest
import torch

from gnnns.data import KnowledgeGraph, synthetic_kg
from gnnns.models import build_model
from gnnns.sampling.nscaching import NSCachingSampler, repeated
from tests.graphs import random_kg

small_kg = partial(random_kg, num_entities=200, num_relations=3, n=400)


class TableScorer:
    """score = value[entity]; records the shape of every call."""

    def __init__(self, value: torch.Tensor):
        self.value, self.shapes = value, []

    def __call__(self, positives, entities, corrupt_head):
        self.shapes.append(tuple(entities.shape))
        return self.value[entities]


def test_shapes_dtype_and_memory():
    kg = small_kg()
    sampler = NSCachingSampler(kg, cache_size=8, num_fresh=4)
    pairs = {(0, h, r) for h, r, _ in kg.train.tolist()} | {(1, t, r) for _, r, t in kg.train.tolist()}
    assert sampler.cache.shape == (len(pairs), 8) and sampler.cache.dtype == torch.int32
    assert sampler.cache_bytes == len(pairs) * (8 * 4 + 8)
    neg = sampler(kg.train[:50], 6, scorer=TableScorer(torch.randn(kg.num_entities)))
    assert neg.entities.shape == (50, 6) and neg.entities.dtype == torch.long
    assert int(neg.entities.min()) >= 0 and int(neg.entities.max()) < kg.num_entities
    assert neg.weight is None
    stats = sampler.epoch_stats()
    assert stats["cache_bytes"] == sampler.cache_bytes and stats["fallback_rate"] == 0.0


def test_each_query_has_its_own_cache_and_negatives_come_from_it():
    kg = small_kg()
    sampler = NSCachingSampler(kg, cache_size=4).eval()
    # write each row's number in base E into it, so that rows can be told apart
    number = torch.arange(sampler.cache.size(0)).unsqueeze(1)
    sampler.cache.copy_(number // kg.num_entities ** torch.arange(4) % kg.num_entities)
    rows_of = {}
    for side in (False, True):
        corrupt = torch.full((len(kg.train),), side)
        caches = sampler.cached(kg.train, corrupt)
        for (h, r, t), cache in zip(kg.train.tolist(), caches.tolist(), strict=True):
            query = (r, t, "head") if side else (h, r, "tail")
            assert rows_of.setdefault(query, cache) == cache  # one cache per query
    assert len({tuple(c) for c in rows_of.values()}) == len(rows_of) == sampler.cache.size(0)
    side = torch.rand(len(kg.train)) < 0.5
    neg = sampler.sample(kg.train, 5, side, TableScorer(torch.zeros(kg.num_entities)))
    caches = sampler.cached(kg.train, side)
    assert bool((neg.entities.unsqueeze(2) == caches.unsqueeze(1)).any(2).all())


def test_caches_converge_to_the_best_entities():
    kg = small_kg()
    best = torch.arange(10, 22)
    value = torch.zeros(kg.num_entities)
    value[best] = 20.0
    pos = kg.train[:30]
    side = torch.arange(30) % 2 == 0
    for update in ("sample", "top"):
        torch.manual_seed(0)
        sampler = NSCachingSampler(kg, cache_size=6, num_fresh=20, update=update)
        untouched = torch.ones(sampler.cache.size(0), dtype=torch.bool)
        row, _ = sampler.lookup(pos, side)
        untouched[row] = False
        before = sampler.cache[untouched].clone()
        for _ in range(60):
            sampler.sample(pos, 4, side, TableScorer(value))
        caches = sampler.cached(pos, side)
        assert bool(torch.isin(caches, best).all()), update
        assert not bool(repeated(caches).any())  # no entity kept twice
        assert torch.equal(sampler.cache[untouched], before)  # other queries' caches untouched


def test_harder_than_uniform_after_refreshes():
    kg = synthetic_kg()
    torch.manual_seed(1)
    model = build_model("distmult", kg, 16)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    pos = kg.train[torch.randint(len(kg.train), (512,))]
    side = torch.rand(512) < 0.5
    sampler = NSCachingSampler(kg)
    with torch.no_grad():
        first = model.score_candidates(pos, sampler.sample(pos, 8, side, model.score_candidates).entities, side)
        for _ in range(5):
            sampler.sample(pos, 8, side, model.score_candidates)
        hard = model.score_candidates(pos, sampler.sample(pos, 8, side, model.score_candidates).entities, side)
        uniform = model.score_candidates(pos, torch.randint(kg.num_entities, (512, 8)), side)
    assert abs(float(first.mean() - uniform.mean())) < 0.2 * float(uniform.std())  # caches start uniform
    assert float(hard.mean() - uniform.mean()) > float(uniform.std())


def test_refresh_skips_true_entity_and_dedupes_queries_in_a_batch():
    kg = small_kg()
    pos = kg.train[:1].repeat(6, 1)  # one query six times
    side = torch.zeros(6, dtype=torch.bool)
    value = torch.zeros(kg.num_entities)
    value[int(pos[0, 2])] = 100.0  # the true tail scores highest
    scorer = TableScorer(value)
    sampler = NSCachingSampler(kg, cache_size=5, num_fresh=7, update="top")
    row, _ = sampler.lookup(pos[:1], side[:1])
    sampler.cache[row, 0] = int(pos[0, 2])  # the best-scoring entity starts in the cache
    for _ in range(20):
        sampler.sample(pos, 3, side, scorer)
    assert scorer.shapes == [(1, 12)] * 20  # refreshed once per call, cache + fresh scored together
    assert not bool((sampler.cached(pos[:1], side[:1]) == pos[0, 2]).any())


def test_too_few_valid_candidates_are_filled_with_other_entities():
    # num_fresh=0: a refresh sees only the cache [1, 1, 5, 6] of a query whose true tail is 1,
    # so two slots have no valid candidate; they must not keep 1 (the positive itself).
    kg = KnowledgeGraph(torch.tensor([[0, 0, 1]]), num_entities=50, num_relations=1)
    pos, side = kg.train, torch.tensor([False])
    value = torch.zeros(50)
    value[1] = 100.0  # the true tail scores best
    sampler = NSCachingSampler(kg, cache_size=4, num_fresh=0, update="top")
    row, found = sampler.lookup(pos, side)
    assert bool(found.all())
    sampler.cache[row] = torch.tensor([1, 1, 5, 6], dtype=sampler.cache.dtype)
    torch.manual_seed(0)
    sampler.sample(pos, 2, side, TableScorer(value))
    cache = sampler.cached(pos, side)[0].tolist()
    assert 1 not in cache and {5, 6} <= set(cache) and all(0 <= e < 50 for e in cache)
    assert sampler.epoch_stats()["cache_change_rate"] == 0.5  # the two refilled slots


def test_a_graph_without_training_triples_falls_back_to_uniform():
    kg = KnowledgeGraph(torch.zeros(0, 3, dtype=torch.long), num_entities=8, num_relations=2)
    sampler = NSCachingSampler(kg)
    pos = torch.tensor([[0, 0, 1], [2, 1, 3]])
    torch.manual_seed(0)
    negatives = sampler(pos, 5, scorer=TableScorer(torch.zeros(8)))
    assert negatives.entities.shape == (2, 5) and int(negatives.entities.max()) < 8
    assert sampler.cached(pos, torch.tensor([False, True])).tolist() == [[-1] * 16] * 2
    assert sampler.epoch_stats()["fallback_rate"] == 1.0


def test_filtered_keeps_known_triples_out():
    kg = small_kg(num_entities=12, n=120)
    index = kg.train_index()

    def favour_known(positives, entities, corrupt_head):
        return index.contains_corrupted(positives, entities, corrupt_head).float() * 100

    torch.manual_seed(2)
    side = torch.rand(len(kg.train)) < 0.5
    plain = NSCachingSampler(kg, cache_size=3, num_fresh=6, update="top")
    filtered = NSCachingSampler(kg, cache_size=3, num_fresh=6, update="top", filtered=True, max_rounds=50)
    for _ in range(10):
        plain.sample(kg.train, 4, side, favour_known)
        neg = filtered.sample(kg.train, 4, side, favour_known)
        assert not bool(index.contains_corrupted(kg.train, neg.entities, side).any())
    cached = filtered.cached(kg.train, side)
    assert not bool(index.contains_corrupted(kg.train, cached, side).any())
    assert bool(index.contains_corrupted(kg.train, plain.cached(kg.train, side), side).any())


def test_unseen_queries_fall_back_and_reciprocals_share_caches():
    kg = small_kg()
    sampler = NSCachingSampler(kg, cache_size=4)
    seen = kg.train[:1]
    unseen = torch.tensor([[int(seen[0, 0]), 0, 0]])
    while bool(kg.train_index().known(unseen[:, 0], unseen[:, 1], predict_head=False)[0].numel()):
        unseen[0, 0] += 1
    assert int(sampler.cached(unseen, torch.tensor([False]))[0, 0]) == -1
    scorer = TableScorer(torch.zeros(kg.num_entities))
    sampler.sample(torch.cat([seen, unseen]), 3, torch.tensor([False, False]), scorer)
    assert sampler.epoch_stats()["fallback_rate"] == 0.5
    assert scorer.shapes == [(1, 4 + 16)]  # only the seen query is refreshed
    h, r, t = kg.train[0].tolist()
    reciprocal = torch.tensor([[t, r + kg.num_relations, h]])
    assert torch.equal(
        sampler.cached(reciprocal, torch.tensor([False])), sampler.cached(kg.train[:1], torch.tensor([True]))
    )
    with pytest.raises(ValueError, match="relation ids"):
        sampler.cached(torch.tensor([[h, 2 * kg.num_relations, t]]), torch.tensor([False]))


def test_eval_mode_leaves_caches_alone():
    kg = small_kg()
    sampler = NSCachingSampler(kg).eval()
    before = sampler.cache.clone()
    scorer = TableScorer(torch.randn(kg.num_entities))
    sampler(kg.train, 5, scorer=scorer)
    assert torch.equal(sampler.cache, before) and scorer.shapes == []
    sampler.train()(kg.train, 5, scorer=scorer)
    assert not torch.equal(sampler.cache, before)


def test_checkpoint_round_trip():
    kg = small_kg()
    scorer = TableScorer(torch.randn(kg.num_entities))
    torch.manual_seed(3)
    a = NSCachingSampler(kg, cache_size=6, num_fresh=5)
    for _ in range(5):
        a(kg.train, 4, scorer=scorer)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(4)
    b = NSCachingSampler(kg, cache_size=6, num_fresh=5)
    assert not torch.equal(a.cache, b.cache)
    b.load_state_dict(torch.load(buffer))
    assert torch.equal(a.cache, b.cache) and torch.equal(a.pair_keys, b.pair_keys)
    torch.manual_seed(5)
    out_a = a(kg.train, 4, scorer=scorer)
    torch.manual_seed(5)
    out_b = b(kg.train, 4, scorer=scorer)
    assert torch.equal(out_a.entities, out_b.entities) and torch.equal(out_a.corrupt_head, out_b.corrupt_head)
    assert torch.equal(a.cache, b.cache)


def test_repeated_marks_later_copies():
    x = torch.tensor([[3, 1, 3, 2, 1, 3]])
    assert repeated(x).tolist() == [[False, False, True, False, True, True]]


def test_errors():
    kg = small_kg()
    with pytest.raises(ValueError, match=r"scorer=model\.score_candidates"):
        NSCachingSampler(kg)(kg.train[:3], 2)
    with pytest.raises(ValueError, match="update"):
        NSCachingSampler(kg, update="best")
    with pytest.raises(ValueError, match="cache_size"):
        NSCachingSampler(kg, cache_size=0)


def test_negatives_use_every_cache_slot_before_repeating_one():
    kg = small_kg()
    sampler = NSCachingSampler(kg, cache_size=8, num_fresh=4).eval()  # eval: no refresh between draws
    positives = kg.train[:32]
    corrupt_head = torch.zeros(32, dtype=torch.bool)
    cached = sampler.cached(positives, corrupt_head)  # [32, 8] entity in each slot
    rows = [i for i in range(32) if len(set(cached[i].tolist())) == 8]  # slots told apart by entity
    assert len(rows) > 20

    def slots(k):
        entities = sampler.sample(positives, k, corrupt_head, scorer=lambda p, e, c: e.float()).entities
        return [torch.tensor([cached[i].tolist().index(e) for e in entities[i].tolist()]) for i in rows]

    assert all(len(set(s.tolist())) == 5 for s in slots(5))  # k <= N1: distinct slots
    assert all(sorted(s.tolist()) == list(range(8)) for s in slots(8))
    for s in slots(20):  # k > N1: every slot twice or three times
        counts = torch.bincount(s, minlength=8)
        assert int(counts.min()) == 2 and int(counts.max()) == 3
