import numpy as np
import pytest
import torch

from gnnns.losses import (
    LOSSES,
    BCELoss,
    InfoNCELoss,
    MarginRankingLoss,
    NSSALoss,
    SoftmaxCrossEntropyLoss,
    build_loss,
    loss_parameters,
    self_adversarial_weights,
)

# Independent references, written with NumPy and explicit loops over rows.


def np_log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def np_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def np_bce(logit, target):
    return -(target * np_log_sigmoid(logit) + (1 - target) * np_log_sigmoid(-logit))


def np_cross_entropy(logits, target_dist):
    log_p = logits - np.log(np.exp(logits).sum())
    return -(target_dist * log_p).sum()


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    pos = rng.normal(size=4)
    neg = rng.normal(size=(4, 5))
    weight = rng.uniform(0.1, 1.0, size=(4, 5))
    weight /= weight.sum(axis=1, keepdims=True)
    return pos, neg, weight


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_margin_hand_values():
    pos, neg = t([2.0, 0.5]), t([[1.5, 3.0], [0.0, -1.0]])
    # Row 0: relu(1 - 2 + 1.5) = 0.5, relu(1 - 2 + 3) = 2;  row 1: 0.5 and 0.
    assert MarginRankingLoss(1.0)(pos, neg).item() == pytest.approx((1.25 + 0.25) / 2)
    weight = t([[0.25, 0.75], [0.5, 0.5]])
    assert MarginRankingLoss(1.0)(pos, neg, weight).item() == pytest.approx((1.625 + 0.25) / 2)


def test_nssa_without_adversarial_weights(batch):
    pos, neg, _ = batch
    gamma = 3.0
    pos_term = np.mean([-np_log_sigmoid(gamma + p) for p in pos])
    neg_term = np.mean([np.mean(-np_log_sigmoid(-(gamma + row))) for row in neg])
    loss = NSSALoss(margin=gamma)(t(pos), t(neg))
    assert loss.item() == pytest.approx((pos_term + neg_term) / 2)


def test_nssa_self_adversarial_value_and_detached_gradient(batch):
    pos, neg, _ = batch
    gamma, alpha = 2.0, 1.5
    p = np.stack([np_softmax(alpha * row) for row in neg])
    pos_term = np.mean(-np_log_sigmoid(gamma + pos))
    neg_term = np.mean((p * -np_log_sigmoid(-(gamma + neg))).sum(axis=1))

    neg_t = t(neg).requires_grad_()
    loss = NSSALoss(gamma, adversarial_temperature=alpha)(t(pos), neg_t)
    assert loss.item() == pytest.approx((pos_term + neg_term) / 2)
    loss.backward()

    # The same loss with p a constant: gradients must agree exactly.
    neg_c = t(neg).requires_grad_()
    manual = (-torch.nn.functional.logsigmoid(-(gamma + neg_c)) * t(p)).sum(1).mean() / 2
    manual.backward()
    torch.testing.assert_close(neg_t.grad, neg_c.grad)

    # ... and differ from letting the gradient flow through p, so the check can fail.
    neg_g = t(neg).requires_grad_()
    flowing = torch.softmax(alpha * neg_g, dim=1)
    (-torch.nn.functional.logsigmoid(-(gamma + neg_g)) * flowing).sum(1).mean().div(2).backward()
    assert not torch.allclose(neg_g.grad, neg_c.grad)


def test_nssa_combines_sampler_and_adversarial_weights(batch):
    pos, neg, weight = batch
    gamma, alpha = 1.0, 0.7
    p = np.stack(
        [w * np.exp(alpha * row) / (w * np.exp(alpha * row)).sum() for row, w in zip(neg, weight, strict=True)]
    )
    expected = (np.mean(-np_log_sigmoid(gamma + pos)) + np.mean((p * -np_log_sigmoid(-(gamma + neg))).sum(axis=1))) / 2
    loss = NSSALoss(gamma, adversarial_temperature=alpha)(t(pos), t(neg), t(weight))
    assert loss.item() == pytest.approx(expected)


def test_self_adversarial_weights_are_detached_distributions(batch):
    _, neg, weight = batch
    neg_t = t(neg).requires_grad_()
    p = self_adversarial_weights(neg_t, t(weight), adversarial_temperature=2.0)
    assert not p.requires_grad
    torch.testing.assert_close(p.sum(1), torch.ones(4, dtype=torch.float64))
    assert self_adversarial_weights(neg_t, None, 0.0) is None


def test_infonce_formula(batch):
    pos, neg, weight = batch
    tau, k = 0.5, neg.shape[1]
    plain = [
        -np.log(np.exp(p / tau) / (np.exp(p / tau) + np.exp(n / tau).sum())) for p, n in zip(pos, neg, strict=True)
    ]
    weighted = [
        -np.log(np.exp(p / tau) / (np.exp(p / tau) + k * (w * np.exp(n / tau)).sum()))
        for p, n, w in zip(pos, neg, weight, strict=True)
    ]
    loss = InfoNCELoss(tau)
    assert loss(t(pos), t(neg)).item() == pytest.approx(np.mean(plain))
    assert loss(t(pos), t(neg), t(weight)).item() == pytest.approx(np.mean(weighted))


def test_infonce_is_stable_for_large_scores():
    loss = InfoNCELoss(0.01)(t([1000.0]), t([[999.0, -1000.0]]))
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(np.log1p(np.exp(-100.0)), abs=1e-12)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_softmax_cross_entropy_negative_sampling(batch, eps):
    pos, neg, weight = batch
    k = neg.shape[1]
    target = np.full(k + 1, eps / (k + 1))
    target[0] += 1 - eps
    plain = [np_cross_entropy(np.concatenate([[p], n]), target) for p, n in zip(pos, neg, strict=True)]
    weighted = [
        np_cross_entropy(np.concatenate([[p], n + np.log(k * w)]), target)
        for p, n, w in zip(pos, neg, weight, strict=True)
    ]
    loss = SoftmaxCrossEntropyLoss(eps)
    assert loss(t(pos), t(neg)).item() == pytest.approx(np.mean(plain))
    assert loss(t(pos), t(neg), t(weight)).item() == pytest.approx(np.mean(weighted))


def test_softmax_cross_entropy_smooths_over_present_negatives_only():
    # Weight 0 marks a negative a filter left known: absent. Row 0 keeps 2 of its 4 negatives, so
    # the smoothing spreads over C = 3 candidates: [pos, n1 + log(4 * 0.5), n2 + log(4 * 0.5)].
    pos, eps = np.array([1.0, 0.5]), 0.1
    neg = np.array([[0.2, -0.3, 0.1, 0.4], [0.0, 0.1, 0.2, 0.3]])
    weight = np.array([[0.5, 0.5, 0.0, 0.0], [0.25] * 4])
    row0 = np.array([1.0, 0.2 + np.log(2.0), -0.3 + np.log(2.0)])
    expected = [
        np_cross_entropy(row0, np.array([1 - eps + eps / 3, eps / 3, eps / 3])),
        np_cross_entropy(np.concatenate([[0.5], neg[1]]), np.array([1 - eps + eps / 5] + [eps / 5] * 4)),
    ]
    negatives = t(neg).requires_grad_()
    loss = SoftmaxCrossEntropyLoss(eps)(t(pos), negatives, t(weight))
    assert loss.item() == pytest.approx(np.mean(expected))
    loss.backward()
    assert torch.isfinite(negatives.grad).all() and negatives.grad[0, 2:].abs().max() == 0


def test_softmax_cross_entropy_without_smoothing_is_infonce_at_unit_temperature(batch):
    pos, neg, weight = batch
    sce, nce = SoftmaxCrossEntropyLoss(), InfoNCELoss(1.0)
    torch.testing.assert_close(sce(t(pos), t(neg), t(weight)), nce(t(pos), t(neg), t(weight)))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_softmax_cross_entropy_one_vs_all(eps):
    rng = np.random.default_rng(1)
    scores, true = rng.normal(size=(3, 6)), np.array([0, 4, 4])
    expected = []
    for row, i in zip(scores, true, strict=True):
        target = np.full(6, eps / 6)
        target[i] += 1 - eps
        expected.append(np_cross_entropy(row, target))
    loss = SoftmaxCrossEntropyLoss(eps).forward_all(t(scores), torch.tensor(true))
    assert loss.item() == pytest.approx(np.mean(expected))


def test_softmax_cross_entropy_k_vs_all():
    rng = np.random.default_rng(2)
    eps = 0.1
    scores = rng.normal(size=(2, 5))
    multi_hot = np.array([[1, 0, 1, 1, 0], [0, 1, 0, 0, 0]], dtype=float)
    expected = [
        np_cross_entropy(row, (1 - eps) * y / y.sum() + eps / 5) for row, y in zip(scores, multi_hot, strict=True)
    ]
    loss = SoftmaxCrossEntropyLoss(eps)
    assert loss.forward_all(t(scores), t(multi_hot)).item() == pytest.approx(np.mean(expected))
    # Bool targets are the same multi-hot.
    assert loss.forward_all(t(scores), torch.tensor(multi_hot > 0)).item() == pytest.approx(np.mean(expected))


def np_sce_gradient(scores, targets, eps):
    """d/ds of the mean over rows of -sum_e y~_e log softmax(s)_e, y~ = (1 - eps) y + eps / C:
    softmax(s) * sum(y~) - y~ per row, divided by the number of rows."""
    rows = []
    for row, y in zip(scores, targets, strict=True):
        smoothed = (1 - eps) * y + eps / len(row)
        rows.append(np_softmax(row) * smoothed.sum() - smoothed)
    return np.array(rows) / len(scores)


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_softmax_cross_entropy_forward_all_gradient(eps):
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(4, 9))
    true = np.array([2, 0, 8, 2])
    one_hot = np.eye(9)[true]
    # KvsAll: normalised rows, and one row with no true entity (only the smoothing term is left).
    multi_hot = np.array([[1, 0, 1, 1, 0, 0, 0, 0, 0], [0] * 9, [0, 1, 0, 0, 0, 0, 0, 0, 1], [1] + [0] * 8], float)
    distribution = multi_hot / np.maximum(multi_hot.sum(1, keepdims=True), 1)
    for targets, expected in (
        (torch.tensor(true), np_sce_gradient(scores, one_hot, eps)),
        (t(multi_hot), np_sce_gradient(scores, distribution, eps)),
    ):
        s = t(scores).requires_grad_()
        (3.0 * SoftmaxCrossEntropyLoss(eps).forward_all(s, targets)).backward()
        np.testing.assert_allclose(s.grad.numpy(), 3.0 * expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("eps", "smoothing"), [(0.0, "mix"), (0.2, "mix"), (0.2, "conve")])
def test_bce_forward_all_value_and_gradient(eps, smoothing):
    rng = np.random.default_rng(6)
    # Scores beyond +-20 too, where a softplus shortcut would show.
    scores = rng.normal(scale=12.0, size=(3, 7))
    true = np.array([6, 0, 6])
    multi_hot = np.array([[1, 0, 0, 1, 0, 0, 1], [0] * 7, [0, 0, 1, 0, 0, 0, 0]], float)
    floor = (1 / 7 if eps > 0 else 0.0) if smoothing == "conve" else eps / 7
    for targets, y in ((torch.tensor(true), np.eye(7)[true]), (t(multi_hot), multi_hot)):
        smoothed = (1 - eps) * y + floor
        expected = np.mean([np_bce(s, v) for s, v in zip(scores.ravel(), smoothed.ravel(), strict=True)])
        # d/ds of the mean of BCE with logits: (sigmoid(s) - y~) / (B * E).
        gradient = (1 / (1 + np.exp(-scores)) - smoothed) / scores.size
        s = t(scores).requires_grad_()
        loss = BCELoss(eps, smoothing=smoothing).forward_all(s, targets)
        loss.backward()
        assert loss.item() == pytest.approx(expected, rel=1e-7)
        np.testing.assert_allclose(s.grad.numpy(), gradient, rtol=1e-9, atol=1e-15)


def test_softmax_cross_entropy_forward_all_refuses_a_second_backward():
    s = torch.randn(3, 5, requires_grad=True)
    loss = SoftmaxCrossEntropyLoss(0.1).forward_all(s, torch.tensor([0, 1, 2]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="already run"):
        loss.backward()


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropyLoss(0.1), BCELoss(0.1)])
def test_k_vs_all_with_one_answer_equals_one_vs_all(loss):
    torch.manual_seed(0)
    scores, true = torch.randn(4, 7), torch.tensor([3, 0, 6, 3])
    one_hot = torch.zeros(4, 7).scatter_(1, true.unsqueeze(1), 1.0)
    torch.testing.assert_close(loss.forward_all(scores, one_hot), loss.forward_all(scores, true))


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_bce_negative_sampling(batch, eps):
    pos, neg, weight = batch
    c = neg.shape[1] + 1
    y_pos, y_neg = 1 - eps + eps / c, eps / c
    plain = [np_bce(p, y_pos) + np.mean([np_bce(x, y_neg) for x in n]) for p, n in zip(pos, neg, strict=True)]
    weighted = [
        np_bce(p, y_pos) + sum(wk * np_bce(x, y_neg) for x, wk in zip(n, w, strict=True))
        for p, n, w in zip(pos, neg, weight, strict=True)
    ]
    loss = BCELoss(eps)
    assert loss(t(pos), t(neg)).item() == pytest.approx(np.mean(plain))
    assert loss(t(pos), t(neg), t(weight)).item() == pytest.approx(np.mean(weighted))


def test_bce_k_vs_all_label_smoothing():
    rng = np.random.default_rng(3)
    eps, num_entities = 0.1, 5
    scores = rng.normal(size=(2, num_entities))
    multi_hot = np.array([[1, 0, 1, 1, 0], [0, 1, 0, 0, 0]], dtype=float)
    smoothed = multi_hot * (1 - eps) + eps / num_entities
    # A positive's target is 0.9 + 0.02, a negative's 0.02.
    assert smoothed[0, 0] == pytest.approx(0.92) and smoothed[0, 1] == pytest.approx(0.02)
    expected = np.mean([np_bce(s, y) for s, y in zip(scores.ravel(), smoothed.ravel(), strict=True)])
    loss = BCELoss(eps)
    assert loss.forward_all(t(scores), t(multi_hot)).item() == pytest.approx(expected)
    assert loss.forward_all(t(scores), torch.tensor(multi_hot > 0)).item() == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_uniform_weights_equal_no_weights(batch, name):
    pos, neg, _ = batch
    uniform = torch.full(neg.shape, 1.0 / neg.shape[1], dtype=torch.float64)
    loss = LOSSES[name]()
    torch.testing.assert_close(loss(t(pos), t(neg), uniform), loss(t(pos), t(neg)))


def test_nssa_uniform_weights_with_adversarial_temperature(batch):
    pos, neg, _ = batch
    uniform = torch.full(neg.shape, 1.0 / neg.shape[1], dtype=torch.float64)
    loss = NSSALoss(adversarial_temperature=1.0)
    torch.testing.assert_close(loss(t(pos), t(neg), uniform), loss(t(pos), t(neg)))


def test_forward_all_rejects_mis_shaped_targets():
    with pytest.raises(ValueError, match="multi-hot"):
        BCELoss().forward_all(torch.randn(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="multi-hot"):
        SoftmaxCrossEntropyLoss().forward_all(torch.randn(2, 5), torch.zeros(2, 4))


def test_build_loss():
    assert set(LOSSES) == {"margin", "nssa", "infonce", "sce", "bce", "debiased"}
    loss = build_loss("nssa", margin=6.0, adversarial_temperature=1.0)
    assert isinstance(loss, NSSALoss) and loss.margin == 6.0 and loss.adversarial_temperature == 1.0
    assert isinstance(build_loss("SCE", label_smoothing=0.1), SoftmaxCrossEntropyLoss)
    assert loss_parameters("infonce") == ["temperature"]
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*'bce'"):
        build_loss("hinge")
    with pytest.raises(
        ValueError, match=r"does not take \['margin'\]; its parameters: \['label_smoothing', 'smoothing'\]"
    ):
        build_loss("bce", margin=1.0)


def test_invalid_hyperparameters_raise():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        BCELoss(1.0)
    with pytest.raises(ValueError, match="adversarial_temperature"):
        NSSALoss(adversarial_temperature=-1.0)


def test_bce_conve_smoothing_adds_one_over_candidates():
    # ConvE/CompGCN targets: (1 - eps) y + 1 / E, written out for E = 4.
    scores = torch.tensor([[0.3, -1.2, 2.0, 0.1]])
    targets = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    smoothed = np.array([0.25, 0.9 + 0.25, 0.25, 0.25])
    expected = np.mean([np_bce(s, y) for s, y in zip(scores.ravel().tolist(), smoothed, strict=True)])
    assert BCELoss(0.1, smoothing="conve").forward_all(scores, targets).item() == pytest.approx(expected, rel=1e-6)
    # Without smoothing both styles are plain BCE.
    plain = np.mean([np_bce(s, y) for s, y in zip(scores.ravel().tolist(), [0, 1, 0, 0], strict=True)])
    assert BCELoss(0.0, smoothing="conve").forward_all(scores, targets).item() == pytest.approx(plain, rel=1e-6)
    with pytest.raises(ValueError, match="smoothing must be"):
        BCELoss(0.1, smoothing="spread")
