import pytest
import torch

from gnnns.data import KnowledgeGraph, synthetic_kg
from gnnns.models import build_model
from gnnns.sampling.dynamic import DynamicSampler, above_first, uniform_other_than


def small_kg(seed: int = 0, num_entities: int = 40, num_relations: int = 3, n: int = 300) -> KnowledgeGraph:
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(num_entities, (n,), generator=g)
    r = torch.randint(num_relations, (n,), generator=g)
    t = torch.randint(num_entities, (n,), generator=g)
    return KnowledgeGraph(torch.unique(torch.stack([h, r, t], 1), dim=0), num_entities=num_entities)


class TableScorer:
    """score = value[entity], whatever the positive; records every call."""

    def __init__(self, value: torch.Tensor):
        self.value, self.calls = value, []

    def __call__(self, positives, entities, corrupt_head):
        self.calls.append(entities.clone())
        return self.value[entities]


class Recorded:
    """A scorer that records the entities of every call."""

    def __init__(self, score):
        self.score, self.calls = score, []

    def __call__(self, positives, entities, corrupt_head):
        self.calls.append(entities.clone())
        return self.score(positives, entities, corrupt_head)


def true_entities(positives, corrupt_head):
    return torch.where(corrupt_head, positives[:, 0], positives[:, 2])


@pytest.mark.parametrize("mode", ["top", "softmax", "nmiss"])
def test_shapes_ranges_and_sides(mode):
    kg = small_kg()
    sampler = DynamicSampler(kg, mode=mode)
    scorer = TableScorer(torch.randn(kg.num_entities))
    side = torch.arange(50) % 3 == 0
    neg = sampler.sample(kg.train[:50], 5, side, scorer)
    assert neg.entities.shape == (50, 5) and neg.entities.dtype == torch.long
    assert torch.equal(neg.corrupt_head, side)
    assert int(neg.entities.min()) >= 0 and int(neg.entities.max()) < kg.num_entities
    assert neg.weight is None
    # default pool: 2k candidates, scored in one call (plus the positive's own score for nmiss)
    assert scorer.calls[0].shape == (50, 10)
    assert len(scorer.calls) == (2 if mode == "nmiss" else 1)
    out = sampler(kg.train[:7], 3, scorer=scorer)
    assert out.entities.shape == (7, 3)


def test_top_equals_brute_force_top_k():
    kg = small_kg(num_entities=60)
    torch.manual_seed(0)
    value = torch.randperm(kg.num_entities).float()  # distinct scores: the top-k is unique
    scorer = TableScorer(value)
    pos = kg.train[:80]
    side = torch.rand(80) < 0.5
    neg = DynamicSampler(kg, num_candidates=12).sample(pos, 4, side, scorer)
    candidates = scorer.calls[0]
    true = true_entities(pos, side)
    for b in range(80):
        pool = [e for e in candidates[b].tolist() if e != true[b]]
        expected = sorted(pool, key=lambda e: -value[e])[:4]
        assert sorted(neg.entities[b].tolist()) == sorted(expected)


def test_nmiss_puts_candidates_above_the_positive_first():
    kg = small_kg(num_entities=50)
    torch.manual_seed(1)
    value = torch.randperm(kg.num_entities).float()
    scorer = TableScorer(value)
    pos = kg.train[:200]
    side = torch.rand(200) < 0.5
    sampler = DynamicSampler(kg, num_candidates=10, mode="nmiss")
    neg = sampler.sample(pos, 3, side, scorer)
    candidates, own = scorer.calls
    true = true_entities(pos, side)
    assert torch.equal(own, true.unsqueeze(1))
    hard = differs_from_top = 0
    for b in range(200):
        pool = [e for e in candidates[b].tolist() if e != true[b]]
        above = [e for e in pool if value[e] > value[true[b]]]
        picked = neg.entities[b].tolist()
        if len(above) >= 3:
            assert all(e in above for e in picked)  # a multiset check below covers repeats
            assert all(picked.count(e) <= above.count(e) for e in picked)
            differs_from_top += sorted(picked) != sorted(sorted(pool, key=lambda e: -value[e])[:3])
        else:
            rest = sorted([e for e in pool if e not in above], key=lambda e: -value[e])
            assert sorted(picked) == sorted(above + rest[: 3 - len(above)])
        hard += sum(value[e] > value[true[b]] for e in picked)
    # within the group above the positive the order is random, not by score
    assert differs_from_top > 10
    assert sampler.epoch_stats()["hard_share"] == pytest.approx(hard / 600)
    assert sampler.stats == {}


def test_above_first_orders_groups_then_scores():
    scores = torch.tensor([[0.5, 3.0, -1.0, 2.0, 1.0]])
    above = torch.tensor([[False, True, False, True, False]])
    order = above_first(scores, above)[0].tolist()
    assert sorted(order[:2]) == [1, 3]
    assert order[2:] == [4, 0, 2]


def test_softmax_follows_the_softmax_of_scores():
    # k = 1: the pick is the best entity with probability softmax(s / tau) of its columns
    kg = small_kg(num_entities=30)
    torch.manual_seed(2)
    value = torch.randn(kg.num_entities)
    scorer = TableScorer(value)
    pos = kg.train[torch.randint(len(kg.train), (20000,))]
    side = torch.zeros(20000, dtype=torch.bool)
    neg = DynamicSampler(kg, num_candidates=4, mode="softmax", temperature=0.5).sample(pos, 1, side, scorer)
    candidates = scorer.calls[0]
    scores = value[candidates].masked_fill(candidates == pos[:, 2:3], float("-inf")) / 0.5
    best = candidates.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)
    # a candidate drawn twice counts twice
    expected = (scores.softmax(1) * (candidates == best.unsqueeze(1))).sum(1).mean()
    observed = (neg.entities[:, 0] == best).float().mean()
    assert abs(float(observed) - float(expected)) < 0.015
    assert float(expected) < 0.9  # the test distinguishes softmax from top


def test_true_entity_and_known_triples_never_picked():
    kg = small_kg(num_entities=6, n=40)
    index = kg.train_index()
    torch.manual_seed(3)
    pos = kg.train[torch.randint(len(kg.train), (3000,))]
    side = torch.rand(3000) < 0.5
    true = true_entities(pos, side)

    def favour_true(positives, entities, corrupt_head):
        return torch.where(entities == true_entities(positives, corrupt_head).unsqueeze(1), 100.0, 0.0)

    def favour_known(positives, entities, corrupt_head):
        return index.contains_corrupted(positives, entities, corrupt_head).float() * 100

    for mode in ("top", "softmax", "nmiss"):
        recorded = Recorded(favour_true)
        sampler = DynamicSampler(kg, num_candidates=3, mode=mode)
        neg = sampler.sample(pos, 2, side, recorded)
        assert not bool((neg.entities == true.unsqueeze(1)).any())
        # masked before selection: only rows with fewer than 2 other candidates need fallbacks
        valid = (recorded.calls[0] != true.unsqueeze(1)).sum(1)
        assert sampler.epoch_stats()["fallback_rate"] == pytest.approx(float((2 - valid).clamp(min=0).sum()) / 6000)
        sampler = DynamicSampler(kg, num_candidates=4, mode=mode, filtered=True, max_rounds=50)
        neg = sampler.sample(pos, 2, side, favour_known)
        assert not bool(index.contains_corrupted(pos, neg.entities, side).any())
        assert sampler.epoch_stats()["fallback_rate"] > 0  # this tiny graph needs fallback draws
    # without filtering, the known triples the scorer favours are picked
    neg = DynamicSampler(kg, num_candidates=4).sample(pos, 2, side, favour_known)
    assert bool(index.contains_corrupted(pos, neg.entities, side).any())


def test_uniform_other_than_excludes_the_true_entity_uniformly():
    torch.manual_seed(4)
    true = torch.full((20000,), 2)
    draws = uniform_other_than(true, 3, 5)
    counts = torch.bincount(draws.flatten(), minlength=5).float() / draws.numel()
    assert counts[2] == 0
    assert torch.allclose(counts[[0, 1, 3, 4]], torch.full((4,), 0.25), atol=0.01)


@pytest.mark.parametrize("mode", ["top", "softmax", "nmiss"])
def test_harder_than_uniform_with_a_real_model(mode):
    kg = synthetic_kg()
    torch.manual_seed(5)
    model = build_model("distmult", kg, 16)
    with torch.no_grad():  # unit-variance embeddings: scores spread well beyond the temperature
        for p in model.parameters():
            p.normal_()
    pos = kg.train[torch.randint(len(kg.train), (2000,))]
    side = torch.rand(2000) < 0.5
    with torch.no_grad():
        neg = DynamicSampler(kg, mode=mode).sample(pos, 8, side, model.score_candidates)
        hard = model.score_candidates(pos, neg.entities, side).mean()
        uniform = model.score_candidates(pos, torch.randint(kg.num_entities, (2000, 8)), side)
    assert float(hard - uniform.mean()) > 0.3 * float(uniform.std())


def test_errors():
    kg = small_kg()
    sampler = DynamicSampler(kg)
    with pytest.raises(ValueError, match=r"scorer=model\.score_candidates"):
        sampler(kg.train[:4], 2)
    with pytest.raises(ValueError, match="fewer than"):
        DynamicSampler(kg, num_candidates=3)(kg.train[:4], 5, scorer=TableScorer(torch.zeros(40)))
    with pytest.raises(ValueError, match="unknown mode"):
        DynamicSampler(kg, mode="hardest")
    with pytest.raises(ValueError, match="temperature"):
        DynamicSampler(kg, mode="softmax", temperature=0.0)
