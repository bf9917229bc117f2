import math

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.sampling import Negatives
from gnnns.sampling.diagnostics import (
    NegativeDiagnostics,
    entropy_of,
    expected_distinct,
    hardness,
    sampled_hardness,
    sorted_rows,
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sorted_rows_gives_the_values_of_torch_sort(dtype):
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(-3, 4, (5, 200), generator=generator).to(dtype) / 2  # many ties
    x[0, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0], dtype=dtype)
    x[1, ::7] = float("nan")
    x = x.requires_grad_()
    for rows in (x, x[:, ::3], x.t().contiguous().t()):  # contiguous and strided
        got = sorted_rows(rows)
        expected = rows.detach().sort(dim=1).values
        assert got.dtype == dtype and got.shape == rows.shape
        assert torch.equal(got.isnan(), expected.isnan())
        assert torch.equal(got.nan_to_num(posinf=1e9, neginf=-1e9), expected.nan_to_num(posinf=1e9, neginf=-1e9))
    ints = torch.tensor([[3, 1, 2]])
    assert torch.equal(sorted_rows(ints), torch.tensor([[1, 2, 3]]))


def test_hardness_is_the_percentile_among_all_entities():
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    entities = torch.tensor([[0, 4, 2], [0, 4, 1]])
    expected = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.75]])
    assert torch.allclose(hardness(scores, entities), expected)


def test_hardness_counts_ties_half():
    # Entity 0 ties with entity 1 and is below entity 2: (0 below + 1 tie / 2) / (3 - 1).
    assert hardness(torch.tensor([[1.0, 1.0, 2.0]]), torch.tensor([[0]])).item() == pytest.approx(0.25)


@pytest.mark.parametrize("levels", [3, 1000])
def test_hardness_equals_the_definition_by_brute_force(levels):
    # Few score levels give many ties between entities, between negatives, and repeated negatives.
    gen = torch.Generator().manual_seed(1)
    scores = torch.randint(levels, (6, 40), generator=gen).float()
    entities = torch.randint(40, (6, 9), generator=gen)
    expected = torch.empty(6, 9)
    for q in range(6):
        for j in range(9):
            s = scores[q, entities[q, j]]
            below = int((scores[q] < s).sum())
            ties = int((scores[q] == s).sum())
            expected[q, j] = (below + (ties - 1) / 2) / (40 - 1)
    torch.testing.assert_close(hardness(scores, entities), expected)


def test_uniform_negatives_have_hardness_one_half():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 500, generator=gen)
    entities = torch.randint(500, (200, 50), generator=gen)
    assert hardness(scores, entities).mean().item() == pytest.approx(0.5, abs=0.01)


def test_entropy_of_a_known_distribution():
    p = torch.tensor([0.5, 0.25, 0.25])
    assert entropy_of(torch.tensor([0, 0, 1, 2])) == pytest.approx(float(-(p * p.log()).sum()))


@pytest.fixture
def tiny_kg() -> KnowledgeGraph:
    train = torch.tensor([[0, 0, 1], [1, 0, 2]])
    valid = torch.tensor([[0, 0, 3]])
    test = torch.tensor([[2, 0, 0]])
    return KnowledgeGraph(train, valid, test, num_entities=6, num_relations=1)


def test_false_negative_and_known_positive_rates(tiny_kg):
    diagnostics = NegativeDiagnostics(tiny_kg, every=1)
    positives = torch.tensor([[0, 0, 1], [1, 0, 2]])
    # Row 0 replaces the tail of (0, 0, 1): 3 makes a valid triple, 1 the training triple itself,
    # 4 and 5 nothing. Row 1 replaces the head of (1, 0, 2): 1 is the training triple, 0 nothing.
    negatives = Negatives(torch.tensor([[3, 1, 4, 5], [1, 0, 0, 0]]), torch.tensor([False, True]))
    diagnostics.observe(positives, negatives)
    summary = diagnostics.summary()
    assert summary["false_negative_rate"] == pytest.approx(1 / 8)
    assert summary["known_positive_rate"] == pytest.approx(2 / 8)
    assert summary["distinct_share"] == pytest.approx(5 / 8)
    # 8 uniform draws from 6 entities give 6 (1 - (5/6)^8) = 4.6046 distinct ones on average.
    assert summary["distinct_vs_uniform"] == pytest.approx(5 / 4.60465, rel=1e-4)
    counts = torch.tensor([3.0, 2.0, 1.0, 1.0, 1.0])  # entity 0 three times, 1 twice, 3, 4, 5 once
    p = counts / counts.sum()
    assert summary["entropy"] == pytest.approx(float(-(p * p.log()).sum()))
    assert summary["normalized_entropy"] == pytest.approx(summary["entropy"] / math.log(6))


def test_expected_distinct_by_hand_and_by_enumeration():
    assert expected_distinct(0, 10) == 0.0
    assert expected_distinct(1, 10) == pytest.approx(1.0)
    assert expected_distinct(2, 10) == pytest.approx(1.9)  # the second draw repeats the first with p 1/10
    assert expected_distinct(5, 1) == 1.0
    assert expected_distinct(10**9, 1000) == pytest.approx(1000.0)
    # Every one of the 4^3 equally likely sequences of 3 draws from 4 entities, counted.
    sequences = [(a, b, c) for a in range(4) for b in range(4) for c in range(4)]
    assert expected_distinct(3, 4) == pytest.approx(sum(len(set(s)) for s in sequences) / len(sequences))


@pytest.mark.parametrize("draws", [300, 5000])  # fewer and more negatives in a batch than entities
def test_uniform_negatives_are_as_diverse_as_uniform_and_repeated_ones_less(tiny_kg, draws):
    kg = KnowledgeGraph(tiny_kg.train, tiny_kg.valid, tiny_kg.test, num_entities=1000, num_relations=1)
    generator = torch.Generator().manual_seed(0)
    uniform, narrow = NegativeDiagnostics(kg, every=1), NegativeDiagnostics(kg, every=1)
    positives = torch.tensor([[0, 0, 1]])
    for _ in range(50):
        entities = torch.randint(1000, (1, draws), generator=generator)
        uniform.observe(positives, Negatives(entities, torch.tensor([False])))
        narrow.observe(positives, Negatives(entities % 100, torch.tensor([False])))  # 100 entities only
    assert uniform.summary()["distinct_vs_uniform"] == pytest.approx(1.0, abs=0.01)
    assert narrow.summary()["distinct_vs_uniform"] < 0.5


def test_negatives_of_weight_zero_do_not_count(tiny_kg):
    diagnostics = NegativeDiagnostics(tiny_kg, every=1)
    positives = torch.tensor([[0, 0, 1]])
    weight = torch.tensor([[0.0, 0.5, 0.5]])
    diagnostics.observe(positives, Negatives(torch.tensor([[3, 4, 5]]), torch.tensor([False]), weight))
    summary = diagnostics.summary()
    assert summary["false_negative_rate"] == 0.0
    assert summary["distinct_share"] == 1.0


def test_hardness_through_a_scorer_and_cost(tiny_kg):
    diagnostics = NegativeDiagnostics(tiny_kg, every=2, hardness_queries=1)
    table = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])

    def score_all(kept, relation, predict_head):
        return table.expand(len(kept), -1)

    positives = torch.tensor([[0, 0, 1], [1, 0, 2]])
    negatives = Negatives(torch.tensor([[5, 4], [0, 0]]), torch.tensor([False, False]))
    assert diagnostics.due()
    diagnostics.observe(positives, negatives, score_all)
    diagnostics.add_time(0.001, 0.004)
    assert not diagnostics.due()  # every=2: the second batch is not measured
    diagnostics.add_time(0.003, 0.004)
    summary = diagnostics.summary()
    # Only the first positive is scored (hardness_queries=1): entities 5 and 4 of 0..5 -> 1.0 and 0.8.
    assert summary["hardness"] == pytest.approx(0.9)
    assert summary["sample_ms"] == pytest.approx(2.0)
    assert summary["sample_share"] == pytest.approx(0.5)
    assert summary["batches"] == 2
    assert diagnostics.summary() == {"batches": 0}


def test_sampled_hardness_with_every_entity_once_is_the_exact_hardness():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 6, (4, 30), generator=gen).float()  # many ties
    entities = torch.randint(30, (4, 7), generator=gen)
    sample = torch.arange(30)
    estimate = sampled_hardness(scores.gather(1, entities), scores, entities, sample)
    torch.testing.assert_close(estimate, hardness(scores, entities))


def test_sampled_hardness_by_hand():
    # Sample scores 1, 2, 2, 3 for entities 7, 8, 9, 5; negative 5 scores 3 (itself drawn once):
    # of the other 3 draws, 3 are below -> 1.0. Negative 6 scores 2: 1 below, 2 ties -> (1 + 1) / 4.
    sample_scores = torch.tensor([[1.0, 2.0, 2.0, 3.0]])
    estimate = sampled_hardness(
        torch.tensor([[3.0, 2.0]]), sample_scores, torch.tensor([[5, 6]]), torch.tensor([7, 8, 9, 5])
    )
    torch.testing.assert_close(estimate, torch.tensor([[1.0, 0.5]]))


def test_sampled_hardness_drops_the_negatives_own_draws_by_id():
    # Negative 5 scores 1.0; its own draw was scored one rounding step away from that (another
    # column). Either way it is left out: against the other draws (0.5 and 3.0) it is 1 below of 2.
    one = torch.tensor(1.0)
    for own_draw in (torch.nextafter(one, torch.tensor(2.0)), torch.nextafter(one, torch.tensor(0.0)), one):
        sample_scores = torch.stack([torch.tensor(0.5), own_draw, torch.tensor(3.0)]).view(1, 3)
        estimate = sampled_hardness(torch.tensor([[1.0]]), sample_scores, torch.tensor([[5]]), torch.tensor([8, 5, 9]))
        torch.testing.assert_close(estimate, torch.tensor([[0.5]]))
    # Drawn twice, scored once below and once above: both left out.
    sample_scores = torch.tensor([[0.5, 0.99, 1.01, 3.0, 0.2]])
    estimate = sampled_hardness(
        torch.tensor([[1.0]]), sample_scores, torch.tensor([[5]]), torch.tensor([8, 5, 5, 9, 7])
    )
    torch.testing.assert_close(estimate, torch.tensor([[2 / 3]]))


def test_sampled_hardness_is_unbiased():
    gen = torch.Generator().manual_seed(2)
    scores = torch.randn(50, 400, generator=gen)
    entities = torch.randint(400, (50, 20), generator=gen)
    exact = hardness(scores, entities)
    estimates = []
    for _ in range(20):
        sample = torch.randint(400, (64,), generator=gen)
        estimates.append(sampled_hardness(scores.gather(1, entities), scores[:, sample], entities, sample))
    mean = torch.stack(estimates).mean(0)
    # 20 x 64 draws per negative: the error of each is about sqrt(1/4 / 1280) = 0.014.
    assert (mean - exact).abs().max() < 0.07
    assert abs(float(mean.mean() - exact.mean())) < 0.005


def test_hardness_is_estimated_where_no_score_all_is_offered(tiny_kg):
    table = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    calls = []

    def score_candidates(positives, entities, corrupt_head):
        calls.append(entities.shape)
        torch.rand(3)  # as a GNN's edge dropout or a neighbour sampler would
        return table[entities]

    diagnostics = NegativeDiagnostics(tiny_kg, every=1, hardness_queries=1, hardness_sample=4000)
    positives = torch.tensor([[0, 0, 1], [1, 0, 2]])
    negatives = Negatives(torch.tensor([[5, 4], [0, 0]]), torch.tensor([False, False]))
    state = torch.get_rng_state()
    diagnostics.observe(positives, negatives, None, score_candidates)
    assert torch.equal(torch.get_rng_state(), state)  # measuring leaves training's random stream alone
    summary = diagnostics.summary()
    assert calls == [torch.Size([1, 2 + 4000])]  # the first positive's 2 negatives and the sample
    assert summary["hardness"] == pytest.approx(0.9, abs=0.02) and summary["hardness_sample"] == 4000
