import itertools
import math

import numpy as np
import pytest
import torch

from gnnns.losses import LOSSES, DebiasedInfoNCELoss, InfoNCELoss, build_loss, self_adversarial_weights


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def np_debiased(pos, neg, weight, temperature, prior, hardness):
    """Reference with explicit exponentials, one row at a time (fine for small scores)."""
    losses = []
    for p, s, w in zip(pos, neg, weight, strict=True):
        k = len(s)
        q = w * np.exp(hardness * s)
        q = q / q.sum()
        raw = (k * (q * np.exp(s / temperature)).sum() - k * prior * np.exp(p / temperature)) / (1 - prior)
        floor = k * np.exp(s[w > 0].min() / temperature)
        n = max(raw, floor)
        losses.append(-np.log(np.exp(p / temperature) / (np.exp(p / temperature) + n)))
    return float(np.mean(losses))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    pos = rng.normal(size=5)
    neg = rng.normal(size=(5, 6))
    weight = rng.uniform(0.1, 1.0, size=(5, 6))
    weight[1, 2] = 0.0  # an absent negative
    weight /= weight.sum(axis=1, keepdims=True)
    return pos, neg, weight


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_equals_infonce_without_prior_and_hardness(batch, temperature):
    pos, neg, weight = batch
    loss = DebiasedInfoNCELoss(temperature=temperature, prior=0.0, hardness=0.0)
    reference = InfoNCELoss(temperature=temperature)
    assert torch.equal(loss(t(pos), t(neg)), reference(t(pos), t(neg)))
    assert torch.equal(loss(t(pos), t(neg), t(weight)), reference(t(pos), t(neg), t(weight)))


def test_hardness_alone_is_infonce_with_hardness_weights(batch):
    pos, neg, weight = batch
    q = self_adversarial_weights(t(neg), t(weight), 2.0)
    expected = InfoNCELoss(0.7)(t(pos), t(neg), q)
    torch.testing.assert_close(DebiasedInfoNCELoss(0.7, prior=0.0, hardness=2.0)(t(pos), t(neg), t(weight)), expected)


def test_one_row_by_hand():
    # s+ = 1, s = (0, 1, 2), tau = 1, prior 0.2, uniform weights:
    # N = (e^0 + e^1 + e^2 - 3 * 0.2 * e^1) / 0.8 = 11.8455..., above the floor 3 e^0 = 3
    n = (1 + math.e + math.e**2 - 0.6 * math.e) / 0.8
    expected = math.log(1 + n / math.e)
    assert expected == pytest.approx(1.67853, abs=1e-5)
    loss = DebiasedInfoNCELoss(temperature=1.0, prior=0.2)(t([1.0]), t([[0.0, 1.0, 2.0]]))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_one_row_by_hand_with_weights_and_temperature():
    # tau = 0.5, prior 0.1, weights (0.5, 0.25, 0.25): k sum_j w_j e^{s_j / tau} = 3 (0.5 e^0 +
    # 0.25 e^2 + 0.25 e^4) = 3 * 15.99... ; minus k prior e^{2 s+} = 0.3 e^2
    w, s, sp = [0.5, 0.25, 0.25], [0.0, 1.0, 2.0], 1.0
    n = (3 * sum(wj * math.exp(sj / 0.5) for wj, sj in zip(w, s, strict=True)) - 0.3 * math.exp(2.0)) / 0.9
    expected = math.log(1 + n / math.exp(2.0))
    loss = DebiasedInfoNCELoss(temperature=0.5, prior=0.1)(t([sp]), t([s]), t([w]))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_against_reference(batch):
    pos, neg, weight = batch
    for temperature, prior, hardness in [(1.0, 0.1, 0.0), (0.5, 0.3, 1.0), (2.0, 0.6, 0.5)]:
        loss = DebiasedInfoNCELoss(temperature, prior, hardness)(t(pos), t(neg), t(weight))
        assert loss.item() == pytest.approx(np_debiased(pos, neg, weight, temperature, prior, hardness), rel=1e-10)
    uniform = np.full_like(neg, 1 / neg.shape[1])
    loss = DebiasedInfoNCELoss(1.0, 0.2)(t(pos), t(neg))
    assert loss.item() == pytest.approx(np_debiased(pos, neg, uniform, 1.0, 0.2, 0.0), rel=1e-10)


def test_larger_prior_discounts_a_negative_that_scores_like_the_positive():
    pos, neg = t([1.0]), t([[1.0, -1.0, -2.0]])
    losses = [DebiasedInfoNCELoss(prior=p)(pos, neg).item() for p in (0.0, 0.1, 0.2, 0.3)]
    assert all(a > b for a, b in itertools.pairwise(losses))


def test_floor_binds_when_the_correction_removes_everything():
    # s+ = 5 far above s = (0, 0.5): 1 + e^0.5 - 2 * 0.5 * e^5 < 0, so N = 2 e^0 (the floor)
    pos, neg = t([5.0]), t([[0.0, 0.5]])
    loss = DebiasedInfoNCELoss(prior=0.5)(pos, neg)
    assert loss.item() == pytest.approx(math.log(1 + 2 / math.exp(5.0)), rel=1e-12)
    # the floor ignores absent negatives: with weight 0 on score 0 it is 2 e^0.5
    loss = DebiasedInfoNCELoss(prior=0.5)(pos, neg, t([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(0.5) / math.exp(5.0)), rel=1e-12)


def test_shift_invariance_and_extreme_scores_are_stable():
    rng = np.random.default_rng(1)
    pos, neg = t(rng.normal(size=4) * 3), t(rng.normal(size=(4, 5)) * 3)
    loss = DebiasedInfoNCELoss(temperature=0.1, prior=0.4, hardness=0.5)
    base = loss(pos, neg)
    # TransE/RotatE-like scores: large negative distances, the same up to a constant
    torch.testing.assert_close(loss(pos - 1000.0, neg - 1000.0), base)
    torch.testing.assert_close(loss(pos + 1000.0, neg + 1000.0), base)
    assert torch.isfinite(loss(pos * 1e3, neg * 1e3))


def test_gradients_are_finite_in_every_regime():
    pos = torch.tensor([5.0, 1.0, 0.0, -4.0], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor(
        [[0.0, 0.5, -1.0], [1.0, 1.0, 1.0], [3.0, -2.0, 0.1], [-3.0, -3.0, -3.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    weight = t([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5]])
    loss = DebiasedInfoNCELoss(temperature=0.5, prior=0.4, hardness=1.0)
    value = loss(pos, neg, weight)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(pos.grad).all() and torch.isfinite(neg.grad).all()
    # row 0: the floor binds, so only its positive gets a gradient; absent negative: none
    assert pos.grad[0] < 0 and torch.all(neg.grad[0] == 0)
    assert neg.grad[2].gt(0).all()
    # row 3: equal scores, so each negative's gradient follows its weight (0.25, 0.25, 0.5)
    torch.testing.assert_close(neg.grad[3], neg.grad[3, 0] * t([1.0, 1.0, 2.0]))


def test_arguments_checked_and_registered():
    with pytest.raises(ValueError, match="temperature"):
        DebiasedInfoNCELoss(temperature=0.0)
    with pytest.raises(ValueError, match="prior"):
        DebiasedInfoNCELoss(prior=1.0)
    with pytest.raises(ValueError, match="prior"):
        DebiasedInfoNCELoss(prior=-0.1)
    with pytest.raises(ValueError, match="hardness"):
        DebiasedInfoNCELoss(hardness=-1.0)
    assert LOSSES["debiased"] is DebiasedInfoNCELoss
    loss = build_loss("debiased", temperature=0.5, prior=0.2, hardness=1.0)
    assert (loss.temperature, loss.prior, loss.hardness) == (0.5, 0.2, 1.0)
