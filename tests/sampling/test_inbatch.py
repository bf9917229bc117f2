from functools import partial

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.models import build_model
from gnnns.sampling.inbatch import InBatchSampler, batch_entities, masked_uniform_weights
from tests.graphs import random_kg

small_kg = partial(random_kg, num_entities=40, num_relations=3, n=200)


def true_entities(pos: torch.Tensor, corrupt_head: torch.Tensor) -> torch.Tensor:
    return torch.where(corrupt_head, pos[:, 0], pos[:, 2])


def test_shared_shapes_rows_identical_and_candidates_from_batch():
    kg = small_kg()
    torch.manual_seed(0)
    pos = kg.train[:16]
    neg = InBatchSampler(kg)(pos, 6)
    assert neg.shared
    assert neg.entities.shape == (16, 6) and neg.corrupt_head.shape == (16,)
    assert torch.equal(neg.entities, neg.entities[:1].expand(16, -1))
    in_batch = set(pos[:, 0].tolist()) | set(pos[:, 2].tolist())
    assert set(neg.entities[0].tolist()) <= in_batch
    # at least k distinct entities in the batch: drawn without replacement
    assert len(in_batch) >= 6 and len(set(neg.entities[0].tolist())) == 6


def test_shared_with_few_entities_draws_with_replacement():
    pos = torch.tensor([[0, 0, 1], [1, 0, 0], [1, 0, 2]])
    kg = KnowledgeGraph(pos, num_entities=5, num_relations=1)
    neg = InBatchSampler(kg)(pos, 10)
    assert neg.entities.shape == (3, 10)
    assert set(neg.entities[0].tolist()) <= {0, 1, 2}


def test_shared_masks_own_true_entity_and_renormalises():
    kg = small_kg(seed=1)
    torch.manual_seed(1)
    pos = kg.train[:12]
    # k equal to the number of distinct batch entities: every row's true entity is a candidate
    k = batch_entities(pos).numel()
    neg = InBatchSampler(kg)(pos, k)
    true = true_entities(pos, neg.corrupt_head)
    assert neg.weight is not None
    own = neg.entities == true.unsqueeze(1)
    assert own.sum(1).eq(1).all()
    assert torch.all(neg.weight[own] == 0)
    torch.testing.assert_close(neg.weight.sum(1), torch.ones(12))
    torch.testing.assert_close(neg.weight[~own], torch.full(((~own).sum().item(),), 1.0 / (k - 1)))


def test_shared_filtered_masks_known_triples():
    # dense graph: many candidates form training triples with a row's kept entity and relation
    kg = small_kg(seed=2, num_entities=10, num_relations=1, n=60)
    torch.manual_seed(2)
    pos = kg.train[:20]
    sampler = InBatchSampler(kg, filtered=True)
    neg = sampler(pos, 8)
    known = kg.train_index().contains(neg.triples(pos))
    assert bool(known.any())
    valid_rows = ~known.all(1)
    assert torch.all(neg.weight[known & valid_rows.unsqueeze(1)] == 0)
    torch.testing.assert_close(neg.weight.sum(1), torch.ones(20))
    # the expected share of masked negatives, from brute-force membership
    stats = sampler.epoch_stats()
    assert stats["known_positive_rate"] + stats["own_true_rate"] == pytest.approx(known.float().mean().item())


def test_row_without_valid_negative_keeps_uniform_weights_and_is_counted():
    masked = torch.tensor([[True, True], [True, False]])
    weight, empty = masked_uniform_weights(masked)
    assert torch.equal(weight, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    assert torch.equal(empty, torch.tensor([True, False]))
    # one positive (0, 0, 1): the batch holds entities {0, 1}; k = 1 with replacement always
    # eventually hits the row's true entity, leaving it without a valid negative
    pos = torch.tensor([[0, 0, 1]])
    kg = KnowledgeGraph(pos, num_entities=3, num_relations=1)
    sampler = InBatchSampler(kg)
    torch.manual_seed(0)
    empties = 0
    for _ in range(20):
        neg = sampler(pos, 1)
        if neg.weight is not None:
            assert torch.equal(neg.weight, torch.ones(1, 1))
            empties += 1
    stats = sampler.epoch_stats()
    assert empties > 0 and stats["empty_row_rate"] == pytest.approx(empties / 20)


def test_weight_none_when_nothing_masked():
    pos = torch.tensor([[0, 0, 1], [2, 0, 3]])
    kg = KnowledgeGraph(pos, num_entities=4, num_relations=1)
    sampler = InBatchSampler(kg)
    torch.manual_seed(0)
    for _ in range(10):
        corrupt_head = torch.tensor([False, False])  # true entities 1 and 3
        neg = sampler.sample(pos, 2, corrupt_head)
        hits = (neg.entities == torch.tensor([[1], [3]])).any()
        assert (neg.weight is None) == (not bool(hits))


def test_per_row_mode_excludes_own_true_entity_and_stays_in_batch():
    kg = small_kg(seed=3)
    torch.manual_seed(3)
    pos = kg.train[:10]
    neg = InBatchSampler(kg, shared=False)(pos, 50)
    assert not neg.shared and neg.weight is None
    assert neg.entities.shape == (10, 50)
    true = true_entities(pos, neg.corrupt_head)
    assert not bool((neg.entities == true.unsqueeze(1)).any())
    in_batch = set(pos[:, 0].tolist()) | set(pos[:, 2].tolist())
    assert set(neg.entities.flatten().tolist()) <= in_batch


def test_per_row_mode_is_uniform_over_the_other_entities():
    pos = torch.tensor([[0, 0, 1], [2, 0, 3]])
    kg = KnowledgeGraph(pos, num_entities=5, num_relations=1)
    torch.manual_seed(4)
    neg = InBatchSampler(kg, shared=False).sample(pos, 30000, torch.tensor([False, True]))
    # row 0 (true tail 1) picks from {0, 2, 3}; row 1 (true head 2) from {0, 1, 3}
    for row, allowed in ((0, [0, 2, 3]), (1, [0, 1, 3])):
        freq = torch.bincount(neg.entities[row], minlength=5).float() / 30000
        assert torch.allclose(freq[allowed], torch.full((3,), 1 / 3), atol=0.015)
        assert freq.sum() == pytest.approx(freq[allowed].sum())


def test_per_row_fallback_when_batch_has_one_entity():
    pos = torch.tensor([[2, 0, 2]])
    kg = KnowledgeGraph(pos, num_entities=3, num_relations=1)
    sampler = InBatchSampler(kg, shared=False)
    neg = sampler(pos, 3)
    assert torch.equal(neg.entities, torch.full((1, 3), 2))
    assert sampler.epoch_stats()["fallback_rate"] == 1.0


@pytest.mark.parametrize("name", ["complex", "rotate", "transe"])
def test_shared_scoring_matches_per_row_scoring(name):
    kg = small_kg(seed=5)
    torch.manual_seed(5)
    model = build_model(name, kg, 8)
    pos = kg.train[:16]
    neg = InBatchSampler(kg)(pos, 7)
    pos_a, neg_a = model.score_batch(pos, neg.entities, neg.corrupt_head, shared=True)
    pos_b, neg_b = model.score_batch(pos, neg.entities.contiguous(), neg.corrupt_head, shared=False)
    torch.testing.assert_close(pos_a, pos_b)
    torch.testing.assert_close(neg_a, neg_b, rtol=1e-5, atol=1e-5)
    # and both against the triples scored one by one
    torch.testing.assert_close(neg_a, model.score(neg.triples(pos).view(-1, 3)).view(16, 7), rtol=1e-5, atol=1e-5)


def test_per_row_filtered_redraws_known_positives():
    # dense graph; the whole training set as one batch, so every entity is a candidate
    kg = small_kg(seed=6, num_entities=8, num_relations=1, n=30)
    tails_per_query = torch.unique(kg.train[:, :2], dim=0, return_counts=True)[1]
    heads_per_query = torch.unique(kg.train[:, 1:], dim=0, return_counts=True)[1]
    # every query keeps an unknown answer besides its own true entity
    assert int(tails_per_query.max()) < 7 and int(heads_per_query.max()) < 7
    torch.manual_seed(6)
    sampler = InBatchSampler(kg, shared=False, filtered=True, max_rounds=50)
    neg = sampler(kg.train, 12)
    assert not bool(kg.train_index().contains(neg.triples(kg.train)).any())
    assert sampler.epoch_stats()["false_negatives_left"] == 0
    unfiltered = InBatchSampler(kg, shared=False)(kg.train, 12)
    assert bool(kg.train_index().contains(unfiltered.triples(kg.train)).any())
