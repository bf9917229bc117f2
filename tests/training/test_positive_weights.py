"""Weights of the positives: RotatE's subsampling weights, and every loss's weighted batch mean."""

import math

import pytest
import torch

from gnnns.config import RunConfig
from gnnns.losses import build_loss, row_mean
from gnnns.training import SubsamplingWeights
from gnnns.training.run import build_trainer, train
from tests.graphs import random_kg, small_run


def official_counts(triples):
    """The RotatE authors' counting, written out: a pair's count is 4 at its first triple, then +1."""
    count = {}
    for h, r, t in triples:
        for key in ((h, r), (t, -r - 1)):
            count[key] = count[key] + 1 if key in count else 4
    return count


def test_subsampling_weights_match_the_authors_counts_by_brute_force():
    kg = random_kg(seed=3, num_entities=12, num_relations=3, n=150)  # small: pairs repeat
    triples = [tuple(x) for x in kg.train.tolist()]
    count = official_counts(triples)
    weights = SubsamplingWeights(kg.train, kg.num_relations)
    expected = [1 / math.sqrt(count[(h, r)] + count[(t, -r - 1)]) for h, r, t in triples]
    assert weights(kg.train).tolist() == pytest.approx(expected, rel=1e-6)
    assert len(set(expected)) > 3  # the graph has pairs of several frequencies
    # A pair the training graph lacks counts 3 (what the authors' start of 4 is before the +1):
    # entities 12 and 13 are beyond the graph's 12.
    unseen = torch.tensor([[12, 0, 13]])
    assert weights(unseen).item() == pytest.approx(1 / math.sqrt(6))


def test_subsampling_weights_by_hand():
    # (0, r0) heads two triples, (1, r0) one; tails: (r0, 1) one, (r0, 2) two.
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 0, 2]])
    weights = SubsamplingWeights(triples, num_relations=1)
    # n(h, r) + n(r, t) + 6: 2 + 1 + 6, 2 + 2 + 6, 1 + 2 + 6.
    assert weights(triples).tolist() == pytest.approx([9**-0.5, 10**-0.5, 9**-0.5])
    assert SubsamplingWeights(triples, 1, offset=0)(triples).tolist() == pytest.approx([3**-0.5, 4**-0.5, 3**-0.5])
    with pytest.raises(ValueError, match="offset must be >= 0"):
        SubsamplingWeights(triples, 1, offset=-1)


def test_row_mean_is_the_weighted_mean_and_passes_no_gradient_to_the_weights():
    values = torch.tensor([1.0, 2.0, 6.0], requires_grad=True)
    weights = torch.tensor([1.0, 0.0, 3.0], requires_grad=True)
    out = row_mean(values, weights)
    assert out.item() == pytest.approx((1 + 18) / 4)
    out.backward()
    assert values.grad.tolist() == pytest.approx([0.25, 0.0, 0.75]) and weights.grad is None
    assert row_mean(torch.tensor([1.0, 2.0, 6.0]), None).item() == pytest.approx(3.0)


LOSSES = {
    "nssa": {"margin": 3.0, "adversarial_temperature": 0.5},
    "margin": {"margin": 1.0},
    "bce": {"label_smoothing": 0.1},
    "sce": {"label_smoothing": 0.1},
    "infonce": {"temperature": 0.5},
    "debiased": {"temperature": 0.5, "prior": 0.05, "hardness": 0.5},
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_negative_sampling_loss_weights_its_rows(name):
    loss = build_loss(name, **LOSSES[name])
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(4, generator=g), torch.randn(4, 6, generator=g)
    weight = torch.softmax(torch.randn(4, 6, generator=g), -1)
    rows = torch.stack([loss(pos[i : i + 1], neg[i : i + 1], weight[i : i + 1]) for i in range(4)])
    u = torch.tensor([0.5, 2.0, 0.0, 1.5])
    # Each loss is a mean of per-positive terms; weighted, it is their weighted mean.
    assert loss(pos, neg, weight, row_weight=u).item() == pytest.approx(((u * rows).sum() / u.sum()).item(), rel=1e-5)
    assert loss(pos, neg, weight, row_weight=torch.full((4,), 7.0)).item() == pytest.approx(
        loss(pos, neg, weight).item(), rel=1e-6
    )


def test_nssa_with_subsampling_weights_is_the_authors_loss():
    """RotatE's code: -(sum u log sig(gamma + s+)) / sum u and
    -(sum u sum_k p_k log sig(-(gamma + s-))) / sum u, halved."""
    gamma, alpha = 6.0, 0.5
    loss = build_loss("nssa", margin=gamma, adversarial_temperature=alpha)
    g = torch.Generator().manual_seed(1)
    pos, neg, u = -3 * torch.rand(5, generator=g), -3 * torch.rand(5, 8, generator=g), torch.rand(5, generator=g)
    p = torch.softmax(alpha * (gamma + neg), -1)
    positive = -(u * torch.log(torch.sigmoid(gamma + pos))).sum() / u.sum()
    negative = -(u * (p * torch.log(torch.sigmoid(-(gamma + neg)))).sum(-1)).sum() / u.sum()
    assert loss(pos, neg, row_weight=u).item() == pytest.approx(((positive + negative) / 2).item(), rel=1e-6)


class Spy(torch.nn.Module):
    """A loss that records the row weights it is given."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, pos, neg, weight=None, row_weight=None):
        self.seen.append(row_weight)
        return self.inner(pos, neg, weight, row_weight=row_weight)


@pytest.mark.parametrize("sides", ["random", "both"])
def test_the_trainer_hands_each_batch_its_positives_weights(tmp_path, ring_kg, sides):
    cfg = small_run(tmp_path, "w", dataset="ring", positive_weights="subsampling", negative_sides=sides, eval_every=-1)
    trainer = build_trainer(cfg, ring_kg, None)
    assert isinstance(trainer.positive_weights, SubsamplingWeights)
    trainer.loss = Spy(trainer.loss)
    batch = next(iter(trainer.loader))
    trainer._negative_sampling_loss(batch)
    expected = SubsamplingWeights(ring_kg.train, ring_kg.num_relations)(batch)
    assert len(trainer.loss.seen) == (2 if sides == "both" else 1)
    for seen in trainer.loss.seen:
        assert torch.equal(seen, expected)
    # Unweighted runs give the loss no row weights at all (losses of users' own may not take them).
    plain = build_trainer(small_run(tmp_path, "p", dataset="ring", eval_every=-1), ring_kg, None)
    plain.loss = Spy(plain.loss)
    plain._negative_sampling_loss(batch)
    assert plain.loss.seen == [None] and plain.positive_weights is None


def test_a_weighted_run_trains_and_bad_settings_are_refused(tmp_path, ring_kg):
    result = train(small_run(tmp_path, "w", dataset="ring", positive_weights="subsampling", eval_every=0), kg=ring_kg)
    assert math.isfinite(result["test"]["mrr"])
    with pytest.raises(ValueError, match=r"positive_weights must be one of \['none', 'subsampling'\]"):
        RunConfig(positive_weights="frequency")
    with pytest.raises(ValueError, match="training: 1vsall has none"):
        RunConfig(positive_weights="subsampling", training="1vsall", loss="sce")

    class Plain(torch.nn.Module):
        def forward(self, pos, neg, weight=None):
            return pos.mean()

    trainer = build_trainer(small_run(tmp_path, "p", dataset="ring", eval_every=-1), ring_kg, None)
    from gnnns.training import Trainer

    with pytest.raises(ValueError, match="the loss Plain takes no row_weight"):
        Trainer(
            trainer.model,
            ring_kg,
            Plain(),
            trainer.optimizer,
            trainer.loader,
            sampler=trainer.sampler,
            positive_weights=SubsamplingWeights(ring_kg.train, ring_kg.num_relations),
        )
