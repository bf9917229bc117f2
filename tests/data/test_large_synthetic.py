import pytest
import torch

from gnnns.data.large_synthetic import WIKIKG2_SHAPE, wikikg2_like


@pytest.fixture(scope="module")
def kg():
    return wikikg2_like(scale=0.002, seed=3)


def test_counts_are_the_scaled_wikikg2_counts(kg):
    assert kg.num_entities == int(WIKIKG2_SHAPE["entities"] * 0.002)
    assert kg.num_relations == 535
    for split in ("train", "valid", "test"):
        assert len(kg.split(split)) == int(WIKIKG2_SHAPE[split] * 0.002)
    everything = torch.cat([kg.train, kg.valid, kg.test])
    assert len(torch.unique(everything, dim=0)) == len(everything)  # no duplicates, even across splits
    assert int(everything[:, [0, 2]].max()) < kg.num_entities and int(everything[:, 1].max()) < 535


def test_each_relation_has_one_domain_and_one_range_type(kg):
    node_type = kg.node_type
    everything = torch.cat([kg.train, kg.valid, kg.test])
    for column in (0, 2):
        pairs = torch.unique(torch.stack([everything[:, 1], node_type[everything[:, column]]], 1), dim=0)
        assert len(pairs) == len(torch.unique(everything[:, 1]))


def test_degrees_and_relation_frequencies_are_heavy_tailed(kg):
    degree = torch.bincount(kg.train[:, [0, 2]].flatten(), minlength=kg.num_entities).double()
    assert degree.max() > 20 * degree.median().clamp(min=1)
    frequency = torch.bincount(kg.train[:, 1], minlength=535).double().sort(descending=True).values
    # Zipf-drawn relations (duplicates redrawn flatten the head at small scale): the 10 most frequent
    # of 535 relations (2%) hold well over a tenth of the triples, the rarest 50% under a fifth (uniform: a half).
    assert frequency[:10].sum() > 0.15 * frequency.sum()
    assert frequency[-267:].sum() < 0.2 * frequency.sum()


def test_seeded():
    a, b, c = wikikg2_like(0.0005, seed=1), wikikg2_like(0.0005, seed=1), wikikg2_like(0.0005, seed=2)
    assert torch.equal(a.train, b.train) and not torch.equal(a.train, c.train)


def test_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        wikikg2_like(0.0)


def test_eval_negatives_are_seeded_uniform_and_per_split():
    kg = wikikg2_like(0.0005, seed=1, eval_negatives=7)
    assert sorted(kg.eval_negatives) == ["test", "valid"]
    for split in ("valid", "test"):
        cands = kg.eval_negatives[split]
        head, tail = cands.batch(0, len(cands))
        assert len(cands) == len(kg.split(split)) and head.shape == tail.shape == (len(cands), 7)
        assert int(torch.cat([head, tail]).min()) >= 0 and int(torch.cat([head, tail]).max()) < kg.num_entities
    valid, test = kg.eval_negatives["valid"].batch(0, 50), kg.eval_negatives["test"].batch(0, 50)
    assert not torch.equal(valid[0], test[0])  # two streams, not one
    again = wikikg2_like(0.0005, seed=1, eval_negatives=7).eval_negatives["test"].batch(0, 50)
    other = wikikg2_like(0.0005, seed=2, eval_negatives=7).eval_negatives["test"].batch(0, 50)
    assert torch.equal(again[1], test[1]) and not torch.equal(other[1], test[1])
    assert wikikg2_like(0.0005, seed=1).eval_negatives == {}
    with pytest.raises(ValueError, match="eval_negatives"):
        wikikg2_like(0.0005, eval_negatives=-1)
