import io
from functools import partial

import pytest
import torch

from gnnns.sampling.adversarial import AdversarialSampler
from tests.graphs import random_kg

small_kg = partial(random_kg, num_entities=60, num_relations=3, n=300)


def rewards(entities_set: torch.Tensor, num_entities: int):
    """A main model that scores 1 for the given entities and 0 for the rest."""
    value = torch.zeros(num_entities)
    value[entities_set] = 1.0
    return lambda positives, entities, corrupt_head: value[entities]


def test_shapes_ranges_and_stats():
    kg = small_kg()
    sampler = AdversarialSampler(kg, dim=8, num_candidates=10)
    value = torch.randn(kg.num_entities)
    side = torch.arange(40) % 2 == 0
    neg = sampler.sample(kg.train[:40], 4, side, lambda p, e, c: value[e])
    assert neg.entities.shape == (40, 4) and neg.entities.dtype == torch.long
    assert torch.equal(neg.corrupt_head, side) and neg.weight is None
    assert int(neg.entities.min()) >= 0 and int(neg.entities.max()) < kg.num_entities
    stats = sampler.epoch_stats()
    assert stats["mean_reward"] == pytest.approx(float(value[neg.entities].mean()), abs=1e-6)
    assert set(stats) >= {"generator_loss", "fallback_rate"}
    # k > m: picks with replacement
    assert sampler(kg.train[:5], 25, scorer=lambda p, e, c: value[e]).entities.shape == (5, 25)


def test_generator_learns_to_propose_rewarded_entities():
    kg = small_kg()
    good = torch.arange(0, 60, 6)  # 10 of 60 entities
    scorer = rewards(good, kg.num_entities)
    torch.manual_seed(0)
    sampler = AdversarialSampler(kg, dim=16, num_candidates=20, lr=0.05)
    pos = kg.train[:64]
    side = torch.arange(64) % 2 == 1
    candidates = torch.randint(kg.num_entities, (64, 20))
    is_good = torch.isin(candidates, good).float()
    before = float((sampler.probabilities(pos, candidates, side) * is_good).sum(1).mean())
    for _ in range(60):
        sampler(kg.train[torch.randint(len(kg.train), (128,))], 4, scorer=scorer)
    after = float((sampler.probabilities(pos, candidates, side) * is_good).sum(1).mean())
    share = float(is_good.mean())
    assert abs(before - share) < 0.05  # an untrained generator is close to uniform
    assert after > before + 0.3
    # and the picks follow: far more rewarded negatives than the 1/6 of uniform draws
    assert float(torch.isin(sampler(pos, 4, scorer=scorer).entities, good).float().mean()) > 0.5


def test_eval_mode_and_no_grad():
    kg = small_kg()
    scorer = rewards(torch.arange(10), kg.num_entities)
    sampler = AdversarialSampler(kg, dim=8).eval()
    before = [p.detach().clone() for p in sampler.parameters()]
    sampler(kg.train[:32], 4, scorer=scorer)
    assert all(torch.equal(a, b) for a, b in zip(before, sampler.parameters(), strict=True))
    assert sampler.optimizer.state_dict()["state"] == {} and int(sampler.num_updates) == 0
    sampler.train()
    with torch.no_grad():  # the generator still learns when the caller disabled gradients
        sampler(kg.train[:2], 4, scorer=scorer)
    assert int(sampler.num_updates) == 1 and sampler.entity.grad is None
    # only rows the batch touched moved (sparse Adam): 2 kept entities and 2 x 64 candidates
    # of 60 entities would be most rows, so use a smaller pool
    sampler.num_candidates = 3
    before = sampler.entity.detach().clone()
    with torch.no_grad():
        sampler(kg.train[:2], 2, scorer=scorer)
    moved = int((before != sampler.entity.detach()).any(1).sum())
    assert 0 < moved <= 2 * (1 + 3)


def test_baseline_is_a_moving_average_of_rewards():
    kg = small_kg()
    sampler = AdversarialSampler(kg, dim=8, baseline_decay=0.5)
    level = [2.0]
    scorer = lambda p, e, c: torch.full(e.shape, level[0])  # noqa: E731
    sampler(kg.train[:16], 3, scorer=scorer)
    assert float(sampler.baseline) == pytest.approx(2.0)  # started at the first mean
    level[0] = 4.0
    sampler(kg.train[:16], 3, scorer=scorer)
    assert float(sampler.baseline) == pytest.approx(3.0)
    # constant rewards equal to the baseline: zero advantage, zero loss
    level[0] = 3.0
    sampler.epoch_stats()
    sampler(kg.train[:16], 3, scorer=scorer)
    assert sampler.epoch_stats()["generator_loss"] == pytest.approx(0.0, abs=1e-9)


def test_true_entity_never_picked():
    kg = small_kg(num_entities=5, n=30)
    torch.manual_seed(1)
    pos = kg.train[torch.randint(len(kg.train), (2000,))]
    side = torch.rand(2000) < 0.5
    true = torch.where(side, pos[:, 0], pos[:, 2])

    def favour_true(positives, entities, corrupt_head):
        own = torch.where(corrupt_head, positives[:, 0], positives[:, 2])
        return (entities == own.unsqueeze(1)).float()

    sampler = AdversarialSampler(kg, dim=4, num_candidates=3, lr=0.1)
    for _ in range(3):
        neg = sampler.sample(pos, 2, side, favour_true)
        assert not bool((neg.entities == true.unsqueeze(1)).any())
    assert sampler.epoch_stats()["fallback_rate"] > 0  # rows with one valid candidate of three
    assert all(bool(torch.isfinite(p).all()) for p in sampler.parameters())


def test_filtered_never_picks_known_triples():
    kg = small_kg(num_entities=10, n=100)
    index = kg.train_index()
    side = torch.rand(len(kg.train)) < 0.5
    sampler = AdversarialSampler(kg, dim=4, num_candidates=6, filtered=True, max_rounds=50)
    neg = sampler.sample(kg.train, 3, side, lambda p, e, c: index.contains_corrupted(p, e, c).float())
    assert not bool(index.contains_corrupted(kg.train, neg.entities, side).any())


def test_checkpoint_round_trip():
    kg = small_kg()
    scorer = rewards(torch.arange(0, 60, 5), kg.num_entities)
    torch.manual_seed(2)
    a = AdversarialSampler(kg, dim=8, num_candidates=12, lr=0.01)
    for _ in range(4):
        a(kg.train[:50], 3, scorer=scorer)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = AdversarialSampler(kg, dim=8, num_candidates=12, lr=0.01)
    b.load_state_dict(torch.load(buffer))
    assert torch.equal(a.entity, b.entity) and torch.equal(a.relation, b.relation)
    assert float(a.baseline) == float(b.baseline) and int(a.num_updates) == int(b.num_updates) == 4
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() == {0, 1}
    for key in sa:
        assert sa[key]["step"] == sb[key]["step"]
        assert torch.equal(sa[key]["exp_avg"], sb[key]["exp_avg"])
        assert torch.equal(sa[key]["exp_avg_sq"], sb[key]["exp_avg_sq"])
        assert sa[key]["exp_avg"].data_ptr() != sb[key]["exp_avg"].data_ptr()
    # same draws and same updates afterwards
    for seed in (3, 4):
        torch.manual_seed(seed)
        out_a = a(kg.train[:50], 3, scorer=scorer)
        torch.manual_seed(seed)
        out_b = b(kg.train[:50], 3, scorer=scorer)
        assert torch.equal(out_a.entities, out_b.entities)
        assert torch.equal(a.entity, b.entity) and torch.equal(a.relation, b.relation)


def test_loaded_optimizer_state_is_not_shared():
    kg = small_kg()
    scorer = rewards(torch.arange(0, 60, 5), kg.num_entities)
    a = AdversarialSampler(kg, dim=8, num_candidates=12, lr=0.01)
    a(kg.train[:50], 3, scorer=scorer)
    b = AdversarialSampler(kg, dim=8, num_candidates=12, lr=0.01)
    b.load_state_dict(a.state_dict())
    saved = b.optimizer.state_dict()["state"][0]["exp_avg"].clone()
    a(kg.train[:50], 3, scorer=scorer)
    assert torch.equal(b.optimizer.state_dict()["state"][0]["exp_avg"], saved)
    assert not torch.equal(a.optimizer.state_dict()["state"][0]["exp_avg"], saved)


def test_fresh_optimizer_state_differs_from_a_trained_one():
    # the round trip above is only meaningful if a fresh sampler's next update differs
    kg = small_kg()
    scorer = rewards(torch.arange(0, 60, 5), kg.num_entities)
    torch.manual_seed(2)
    a = AdversarialSampler(kg, dim=8, num_candidates=12, lr=0.01)
    for _ in range(4):
        a(kg.train[:50], 3, scorer=scorer)
    state = {k: v for k, v in a.state_dict().items() if k != "_extra_state"}
    b = AdversarialSampler(kg, dim=8, num_candidates=12, lr=0.01)
    b.load_state_dict(state, strict=False)
    torch.manual_seed(3)
    a(kg.train[:50], 3, scorer=scorer)
    torch.manual_seed(3)
    b(kg.train[:50], 3, scorer=scorer)
    assert not torch.equal(a.entity, b.entity)


def test_reciprocal_relations_and_errors():
    kg = small_kg()
    sampler = AdversarialSampler(kg, dim=8)
    h, r, t = kg.train[0].tolist()
    candidates = torch.arange(10).view(1, 10)
    direct = sampler.probabilities(torch.tensor([[h, r, t]]), candidates, torch.tensor([True]))
    inverse = sampler.probabilities(torch.tensor([[t, r + kg.num_relations, h]]), candidates, torch.tensor([False]))
    assert torch.allclose(direct, inverse)
    with pytest.raises(ValueError, match="relation ids"):
        sampler.probabilities(torch.tensor([[h, 2 * kg.num_relations, t]]), candidates, torch.tensor([False]))
    with pytest.raises(ValueError, match=r"scorer=model\.score_candidates"):
        sampler(kg.train[:3], 2)
    with pytest.raises(ValueError, match="baseline_decay"):
        AdversarialSampler(kg, baseline_decay=1.0)
