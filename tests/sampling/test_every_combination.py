"""Every sampler x every decoder x every loss runs a training step; every registry name trains."""

import pytest
import torch

from gnnns.config import RunConfig
from gnnns.data import KnowledgeGraph
from gnnns.losses import LOSSES, build_loss
from gnnns.models import DECODERS, build_model
from gnnns.sampling import SAMPLERS, build_sampler
from gnnns.training.run import train

SPECS = {
    **{name: {} for name in SAMPLERS},
    "mixture": {"components": {"uniform": 0.5, "khop": 0.5}},
    "curriculum": {"easy": "uniform", "hard": "dynamic"},
}
LOSS_KWARGS = {"margin": {"margin": 1.0}, "nssa": {"margin": 2.0, "adversarial_temperature": 1.0}}


def typed_ring() -> KnowledgeGraph:
    """60 entities of two types on a ring (relation 0: i -> i+1, 1: i -> i+2), 120 triples."""
    n = 60
    i = torch.arange(n)
    triples = torch.cat(
        [torch.stack([i, torch.zeros_like(i), (i + 1) % n], 1), torch.stack([i, i * 0 + 1, (i + 2) % n], 1)]
    )
    types = torch.stack([i, i % 2], 1)
    return KnowledgeGraph(
        triples[:100], triples[100:110], triples[110:], num_entities=n, num_relations=2, entity_types=types
    )


@pytest.mark.parametrize("sampler_name", list(SPECS))
@pytest.mark.parametrize("filtered", [False, True])
def test_one_step_with_every_decoder_and_loss(sampler_name, filtered):
    kg = typed_ring()
    torch.manual_seed(0)
    positives = kg.train[:16]
    for decoder in DECODERS:
        for loss_name in LOSSES:
            where = f"{sampler_name} (filtered={filtered}) x {decoder} x {loss_name}"
            sampler = build_sampler(sampler_name, kg, filter_negatives=filtered, **SPECS[sampler_name])
            model = build_model(decoder, kg, 8, reciprocal=decoder == "conve")  # ConvE: tail queries only
            loss_fn = build_loss(loss_name, **LOSS_KWARGS.get(loss_name, {}))
            negatives = sampler(positives, 4, scorer=model.score_candidates)
            assert negatives.entities.shape == (16, 4), where
            assert int(negatives.entities.min()) >= 0 and int(negatives.entities.max()) < kg.num_entities, where
            if negatives.weight is not None:
                assert torch.allclose(negatives.weight.sum(1), torch.ones(16)), where
            pos, neg = model.score_batch(positives, negatives.entities, negatives.corrupt_head, negatives.shared)
            loss = loss_fn(pos, neg, negatives.weight)
            assert torch.isfinite(loss), where
            loss.backward()
            grad = model.encoder.entity.weight.grad
            # The step reaches the negatives' own embeddings, not only the positives'.
            negative_rows = negatives.entities.flatten().unique()
            assert grad is not None and bool(grad[negative_rows].abs().sum() > 0), where


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("sampler_name", list(SPECS))
def test_every_registry_name_trains_from_a_config(tmp_path, sampler_name, precision):
    config = RunConfig(
        dataset="ring", model="complex", dim=8, num_negatives=4, batch_size=32, epochs=2, lr=0.05,
        sampler=sampler_name, sampler_options=SPECS[sampler_name], diagnostics_every=1, eval_every=-1,
        progress=False, output=str(tmp_path / "run"), precision=precision,
    )  # fmt: skip
    train(config, kg=typed_ring())
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"hardness"' in lines[-1]


def test_unknown_sampler_and_option_are_named():
    kg = typed_ring()
    with pytest.raises(ValueError, match="unknown sampler 'hop'"):
        build_sampler("hop", kg)
    with pytest.raises(ValueError, match=r"KHopSampler\) does not take \['hops'\]"):
        build_sampler("khop", kg, hops=2)
    with pytest.raises(ValueError, match="needs components"):
        build_sampler("mixture", kg)


@pytest.mark.parametrize("sampler_name", list(SPECS))
def test_state_survives_a_checkpoint_round_trip(sampler_name):
    import io

    kg = typed_ring()
    torch.manual_seed(0)
    model = build_model("distmult", kg, 8)
    trained = build_sampler(sampler_name, kg, **SPECS[sampler_name])
    trained.set_progress(0.5)
    for batch in kg.train.split(20):  # caches refresh, the generator learns
        trained(batch, 4, scorer=model.score_candidates)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    restored = build_sampler(sampler_name, kg, **SPECS[sampler_name])
    restored.load_state_dict(torch.load(buffer))
    restored.set_progress(0.5)
    for batch in kg.train.split(20):
        torch.manual_seed(1)
        a = trained(batch, 4, scorer=model.score_candidates)
        torch.manual_seed(1)
        b = restored(batch, 4, scorer=model.score_candidates)
        assert torch.equal(a.entities, b.entities) and torch.equal(a.corrupt_head, b.corrupt_head)


def test_own_filtering_option_and_the_wrapper_flag_do_not_collide():
    kg = typed_ring()
    sampler = build_sampler("uniform", kg, filter_negatives=True, filtered=True)
    assert type(sampler).__name__ == "Filtered" and sampler.samplers["inner"].filtered


@pytest.mark.parametrize("sampler_name", [name for name in SPECS if name != "bernoulli"])
def test_every_sampler_corrupts_both_sides(sampler_name):
    kg = typed_ring()
    torch.manual_seed(0)
    positives = kg.train[:16]
    sampler = build_sampler(sampler_name, kg, filter_negatives=True, **SPECS[sampler_name])
    model = build_model("distmult", kg, 8)
    head, tail = sampler.both_sides(positives, 4, num_head_negatives=3, scorer=model.score_candidates)
    for negatives, k, replaced, kept in ((head, 3, 0, [1, 2]), (tail, 4, 2, [0, 1])):
        assert negatives.entities.shape == (16, k) and negatives.corrupt_head.tolist() == [replaced == 0] * 16
        triples = negatives.triples(positives)
        assert torch.equal(triples[:, :, kept], positives[:, None, kept].expand(-1, k, -1))
        # filtered: no corruption is a known training triple unless its weight removes it from the loss
        known = kg.train_index().contains(triples)
        dropped = negatives.weight == 0 if negatives.weight is not None else torch.zeros_like(known)
        assert not bool((known & ~dropped).any()), sampler_name


def test_both_sides_trains_from_a_config(tmp_path):
    config = RunConfig(
        dataset="ring", model="complex", dim=8, num_negatives=4, batch_size=32, epochs=2, lr=0.05,
        negative_sides="both", num_head_negatives=2, diagnostics_every=1, eval_every=-1, progress=False,
        output=str(tmp_path / "run"),
    )  # fmt: skip
    train(config, kg=typed_ring())
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"hardness"' in lines[-1]
