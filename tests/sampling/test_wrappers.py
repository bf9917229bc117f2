import math

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.sampling import BernoulliSampler, Negatives, NegativeSampler, UniformSampler
from gnnns.sampling.inbatch import InBatchSampler
from gnnns.sampling.wrappers import Curriculum, Filtered, Mixture, split_counts


class Constant(NegativeSampler):
    """Stub: every negative is ``value``; optional fixed sides and per-negative weights."""

    def __init__(self, kg, value, head=None, weight=None):
        super().__init__(kg)
        self.value, self.head, self.weight = value, head, weight
        self.seen_sides = []

    def corrupt_head(self, positives):
        if self.head is None:
            return super().corrupt_head(positives)
        return torch.full((positives.size(0),), self.head, dtype=torch.bool)

    def sample(self, positives, num_negatives, corrupt_head, scorer=None):
        self.seen_sides.append(corrupt_head.clone())
        self.count(calls=1)
        entities = torch.full((positives.size(0), num_negatives), self.value)
        weight = None if self.weight is None else torch.tensor(self.weight).expand(positives.size(0), -1)
        return Negatives(entities, corrupt_head, weight)


def complete_kg(n: int = 5, self_loops: bool = False) -> KnowledgeGraph:
    h, t = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = torch.ones_like(h, dtype=torch.bool) if self_loops else h != t
    triples = torch.stack([h[keep], torch.zeros_like(h[keep]), t[keep]], 1)
    return KnowledgeGraph(triples, num_entities=n, num_relations=1)


def small_kg(seed: int = 0, num_entities: int = 10, num_relations: int = 1, n: int = 40) -> KnowledgeGraph:
    g = torch.Generator().manual_seed(seed)
    triples = torch.stack(
        [
            torch.randint(num_entities, (n,), generator=g),
            torch.randint(num_relations, (n,), generator=g),
            torch.randint(num_entities, (n,), generator=g),
        ],
        1,
    )
    return KnowledgeGraph(torch.unique(triples, dim=0), num_entities=num_entities, num_relations=num_relations)


def known_mask(kg, pos, neg):
    return kg.train_index().contains(neg.triples(pos))


# ---- Filtered ---------------------------------------------------------------------------------


def test_filtered_dense_graph_leaves_no_weighted_known_positive():
    # complete graph without self-loops: a corruption is unknown only when it makes a self-loop,
    # so 4 of 5 uniform draws are known positives
    kg = complete_kg(5)
    torch.manual_seed(0)
    sampler = Filtered(UniformSampler(kg), kg, max_rounds=30)
    neg = sampler(kg.train, 8)
    known = known_mask(kg, kg.train, neg)
    if neg.weight is None:
        assert not bool(known.any())
    else:
        assert torch.all(neg.weight[known] == 0)
        torch.testing.assert_close(neg.weight.sum(1), torch.ones(len(kg.train)))
    stats = sampler.epoch_stats()
    assert stats["false_negatives_left"] == known.sum().item()
    # about 4/5 of the first draw were known
    assert stats["false_negative_rate"] == pytest.approx(0.8, abs=0.1)
    assert stats["empty_row_rate"] == 0


def test_filtered_redraws_update_no_inner_state():
    # complete graph: 4 of 5 draws are known, so several redraw rounds run. NSCaching refreshes
    # each query's cache, and the adversarial generator takes a step, once per call (from the
    # first draw); both are back in training mode afterwards.
    from gnnns.models import build_model
    from gnnns.sampling import AdversarialSampler, NSCachingSampler

    kg = complete_kg(5)
    model = build_model("distmult", kg, 8)
    tails = torch.zeros(len(kg.train), dtype=torch.bool)
    torch.manual_seed(0)
    cache = NSCachingSampler(kg, cache_size=3, num_fresh=2)
    sampler = Filtered(cache, kg, max_rounds=5)
    sampler.sample(kg.train, 4, tails, scorer=model.score_candidates)
    # 20 positives, 5 distinct tail queries (h, 0, ?): 5 cache rows of 3 slots refreshed once.
    assert cache.stats["refreshed"] == 5 * 3 and cache.training
    assert sampler.epoch_stats()["false_negatives_found"] > 0
    generator = AdversarialSampler(kg, dim=8)
    sampler = Filtered(generator, kg, max_rounds=5)
    sampler.sample(kg.train, 4, tails, scorer=model.score_candidates)
    assert int(generator.num_updates) == 1 and generator.training
    assert sampler.epoch_stats()["false_negatives_found"] > 0


def test_filtered_lowers_the_known_positive_rate():
    kg = small_kg(seed=1, num_entities=6, n=30)
    torch.manual_seed(1)
    pos = kg.train[torch.randint(len(kg.train), (400,))]
    inner_rate = known_mask(kg, pos, UniformSampler(kg)(pos, 16)).float().mean().item()
    sampler = Filtered(UniformSampler(kg), kg, max_rounds=1)
    neg = sampler(pos, 16)
    known = known_mask(kg, pos, neg)
    after = known.float().mean().item()
    # one resampling round leaves about inner_rate ** 2 of the negatives known
    assert inner_rate > 0.2
    assert after < 0.75 * inner_rate
    assert after == pytest.approx(inner_rate**2, abs=0.05)
    assert torch.all(neg.weight[known & ~known.all(1, keepdim=True)] == 0)


def test_filtered_keeps_inner_weights_and_counts():
    kg = KnowledgeGraph(torch.tensor([[5, 0, 1], [7, 0, 9]]), num_entities=10, num_relations=1)
    inner = Constant(kg, 1, weight=[0.1, 0.2, 0.3, 0.4])
    sampler = Filtered(inner, kg, max_rounds=3)
    pos = torch.tensor([[5, 0, 9], [4, 0, 8]])
    neg = sampler.sample(pos, 4, torch.tensor([False, False]))
    # row 0: (5, 0, 1) is known everywhere and stays known -> the row has no valid negative and
    # keeps its inner weights; row 1: (4, 0, 1) is unknown -> inner weights unchanged
    torch.testing.assert_close(neg.weight, torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]]))
    assert not neg.shared
    # only row 0 was drawn again, 3 times
    assert [len(s) for s in inner.seen_sides] == [2, 1, 1, 1]
    stats = sampler.epoch_stats()
    assert stats["false_negatives_found"] == 4 and stats["false_negatives_left"] == 4
    assert stats["false_negative_rate"] == 0.5 and stats["empty_row_rate"] == 0.5
    assert stats["inner.calls"] == 4


class Fixed(NegativeSampler):
    """Stub: the i-th call returns the i-th of fixed draws and weights (the last one repeats)."""

    def __init__(self, kg, draws, weights):
        super().__init__(kg)
        self.draws, self.weights, self.calls = draws, weights, 0

    def sample(self, positives, num_negatives, corrupt_head, scorer=None):
        i = min(self.calls, len(self.draws) - 1)
        self.calls += 1
        return Negatives(torch.tensor(self.draws[i]), corrupt_head, torch.tensor(self.weights[i]))


def test_filtered_masks_what_stays_known_and_renormalises():
    # (5, 0, 1) and (5, 0, 3) are known; the first draw holds them at positions 1 and 3, the
    # resampling round replaces position 1 by 4 (unknown) but position 3 by 3 again
    kg = KnowledgeGraph(torch.tensor([[5, 0, 1], [5, 0, 3]]), num_entities=10, num_relations=1)
    inner = Fixed(kg, [[[0, 1, 2, 3]], [[4, 4, 4, 3]]], [[[0.1, 0.2, 0.3, 0.4]], [[0.25, 0.25, 0.25, 0.25]]])
    sampler = Filtered(inner, kg, max_rounds=1)
    neg = sampler.sample(torch.tensor([[5, 0, 9]]), 4, torch.tensor([False]))
    # position 1 (entity 1, known) became 4 with the second draw's weight 0.25; position 3 stays 3
    # (known) and gets weight 0; the rest keep the first draw's weights: [0.1, 0.25, 0.3, 0] / 0.65
    assert torch.equal(neg.entities, torch.tensor([[0, 4, 2, 3]]))
    torch.testing.assert_close(neg.weight, torch.tensor([[0.1, 0.25, 0.3, 0.0]]) / 0.65)
    stats = sampler.epoch_stats()
    assert stats["false_negatives_found"] == 2 and stats["false_negatives_left"] == 1


def test_filtered_row_without_valid_negative_is_kept_and_counted():
    kg = complete_kg(4, self_loops=True)  # every corruption is a known positive
    sampler = Filtered(UniformSampler(kg), kg, max_rounds=2)
    neg = sampler(kg.train, 5)
    torch.testing.assert_close(neg.weight, torch.full((16, 5), 0.2))
    stats = sampler.epoch_stats()
    assert stats["empty_row_rate"] == 1.0 and stats["false_negatives_left"] == 80


def test_filtered_shared_inner_stays_shared_only_without_resampling():
    kg = complete_kg(6)
    torch.manual_seed(2)
    neg = Filtered(InBatchSampler(kg), kg)(kg.train[:12], 4)
    assert not neg.shared
    known = known_mask(kg, kg.train[:12], neg)
    assert torch.all(neg.weight[known & ~known.all(1, keepdim=True)] == 0)
    # a graph with no triple: nothing is known, the shared draw and its weights pass through
    empty = KnowledgeGraph(torch.zeros(0, 3, dtype=torch.long), num_entities=6, num_relations=1)
    pos = torch.tensor([[0, 0, 1], [2, 0, 3]])
    neg = Filtered(InBatchSampler(empty), empty).sample(pos, 4, torch.tensor([False, False]))
    assert neg.shared
    expected = torch.tensor([[1.0, 0, 1, 1], [1, 1, 1, 0]]) / 3  # own true entities 1 and 3 masked
    torch.testing.assert_close(neg.weight, expected[:, neg.entities[0]])


# ---- Mixture ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "total", "expected"),
    [
        ([0.25, 0.75], 8, [2, 6]),
        ([0.1, 0.9], 4, [0, 4]),  # quotas 0.4 / 3.6: the remainder goes to 0.6
        ([1, 1, 1], 4, [2, 1, 1]),  # equal remainders: the earlier component
        ([0.2, 0.3, 0.5], 7, [1, 2, 4]),  # quotas 1.4 / 2.1 / 3.5
        ([0.0, 1.0], 3, [0, 3]),
        ([0.5, 0.5], 1, [1, 0]),
    ],
)
def test_split_counts_by_hand(weights, total, expected):
    assert split_counts(weights, total) == expected


def test_mixture_blocks_come_from_their_components():
    kg = complete_kg(3)
    zero, one = Constant(kg, 0, head=True), Constant(kg, 1, head=False)
    mix = Mixture([zero, one], weights=[0.25, 0.75])
    neg = mix(kg.train, 8)
    assert torch.equal(neg.entities, torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1]]).expand(6, -1))
    assert neg.weight is None and not neg.shared
    # the sides are the first component's, and both components drew for them
    assert neg.corrupt_head.all() and one.seen_sides[0].all()
    stats = mix.epoch_stats()
    assert stats["0_fraction"] == 0.25 and stats["1_fraction"] == 0.75
    assert stats["0.calls"] == 1 and stats["1.calls"] == 1


def test_mixture_weights_keep_each_blocks_share():
    kg = complete_kg(3)
    mix = Mixture({"a": Constant(kg, 0), "b": Constant(kg, 1, weight=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1])}, [1, 3])
    neg = mix.sample(kg.train, 8, torch.zeros(6, dtype=torch.bool))
    # block a: 2 negatives, uniform inside -> 2/8 * 1/2; block b: 6/8 * its own weights
    expected = torch.tensor([0.125, 0.125, 0.375, 0.075, 0.075, 0.075, 0.075, 0.075])
    torch.testing.assert_close(neg.weight, expected.expand(6, -1))
    torch.testing.assert_close(neg.weight.sum(1), torch.ones(6))


def test_mixture_skips_empty_components_and_passes_a_lone_block_through():
    kg = complete_kg(4)
    small, big = Constant(kg, 0), InBatchSampler(kg)
    mix = Mixture({"small": small, "big": big}, {"small": 0.1, "big": 0.9})
    torch.manual_seed(3)
    neg = mix(kg.train[:5], 4)  # quotas 0.4 / 3.6 -> 0 / 4
    assert small.seen_sides == []
    assert neg.shared and torch.equal(neg.entities, neg.entities[:1].expand(5, -1))


def test_mixture_forwards_progress_and_keeps_components_in_state_dict():
    kg = small_kg()
    bern = BernoulliSampler(kg)
    mix = Mixture([UniformSampler(kg), bern])
    mix.set_progress(0.4)
    assert all(s.progress == 0.4 for s in mix.samplers.values())
    state = mix.state_dict()
    assert torch.equal(state["samplers.1.head_prob"], bern.head_prob)
    other = Mixture([UniformSampler(kg), BernoulliSampler(small_kg(seed=7))])
    other.load_state_dict(state)
    assert torch.equal(other.samplers["1"].head_prob, bern.head_prob)


def test_mixture_rejects_bad_weights():
    kg = small_kg()
    with pytest.raises(ValueError, match="not all zero"):
        Mixture([UniformSampler(kg)], [0.0])
    with pytest.raises(ValueError, match="2 weights for 1 samplers"):
        Mixture([UniformSampler(kg)], [0.5, 0.5])
    with pytest.raises(TypeError, match="expected a NegativeSampler"):
        Mixture([torch.nn.Linear(1, 1)])


# ---- Curriculum ------------------------------------------------------------------------------

COSINE_QUARTER = (1 - math.cos(math.pi / 4)) / 2


@pytest.mark.parametrize(
    ("schedule", "shares"),
    [
        ("linear", [0.0, 0.25, 0.5, 1.0]),
        ("cosine", [0.0, COSINE_QUARTER, 0.5, 1.0]),
        ("step", [0.0, 0.0, 1.0, 1.0]),
        (lambda p: p * p, [0.0, 0.0625, 0.25, 1.0]),
    ],
)
def test_curriculum_share_by_hand(schedule, shares):
    kg = small_kg()
    cur = Curriculum(UniformSampler(kg), UniformSampler(kg), schedule=schedule)
    for progress, share in zip([0.0, 0.25, 0.5, 1.0], shares, strict=True):
        cur.set_progress(progress)
        assert cur.hard_share() == pytest.approx(share)


def test_curriculum_window_and_range():
    kg = small_kg()
    cur = Curriculum(UniformSampler(kg), UniformSampler(kg), start=0.1, end=0.9, begin=0.2, finish=0.6)
    for progress, share in [(0.0, 0.1), (0.2, 0.1), (0.4, 0.5), (0.6, 0.9), (1.0, 0.9)]:
        cur.set_progress(progress)
        assert cur.hard_share() == pytest.approx(share)
    jump = Curriculum(UniformSampler(kg), UniformSampler(kg), begin=0.5, finish=0.5)
    jump.set_progress(0.49)
    assert jump.hard_share() == 0.0
    jump.set_progress(0.5)
    assert jump.hard_share() == 1.0


def test_curriculum_negatives_follow_the_share():
    kg = complete_kg(3)
    easy, hard = Constant(kg, 0, head=True), Constant(kg, 1)
    cur = Curriculum(easy, hard)
    counts = []
    for progress in (0.0, 0.5, 1.0):
        cur.set_progress(progress)
        neg = cur(kg.train, 10)
        counts.append(int((neg.entities == 1).sum(1).unique()))
        assert neg.corrupt_head.all()  # the easy sampler's sides throughout
    assert counts == [0, 5, 10]
    stats = cur.epoch_stats()
    assert stats["hard_share"] == pytest.approx(0.5) and stats["hard_fraction"] == pytest.approx(0.5)
    cur.set_progress(0.3)
    cur(kg.train, 10)
    cur(kg.train, 10)
    stats = cur.epoch_stats()
    assert stats["hard_share"] == pytest.approx(0.3)
    assert stats["hard_fraction"] == pytest.approx(0.3) and stats["easy_fraction"] == pytest.approx(0.7)
    assert stats["easy.calls"] == 2 and stats["hard.calls"] == 2
    assert easy.progress == 0.3 and hard.progress == 0.3


def test_curriculum_rejects_bad_settings():
    kg = small_kg()
    u = UniformSampler(kg)
    with pytest.raises(ValueError, match="unknown schedule"):
        Curriculum(u, u, schedule="exp")
    with pytest.raises(ValueError, match="end must lie in"):
        Curriculum(u, u, end=1.5)
    with pytest.raises(ValueError, match="must not come after"):
        Curriculum(u, u, begin=0.8, finish=0.2)
    bad = Curriculum(u, UniformSampler(kg), schedule=lambda p: 2.0)
    with pytest.raises(ValueError, match=r"schedule returned 2\.0"):
        bad.hard_share()
