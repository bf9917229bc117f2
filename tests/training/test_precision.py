"""Training in bfloat16 autocast (``precision: bf16``): what is rounded, what stays float32."""

import json

import pytest
import torch
import torch.nn.functional as F

from gnnns.config import RunConfig
from gnnns.evaluation import evaluate
from gnnns.loaders import OneToNLoader, TripleLoader
from gnnns.losses import LOSSES, BCELoss, SoftmaxCrossEntropyLoss
from gnnns.models import DECODERS, build_model
from gnnns.models.chunked import chunked_match
from gnnns.sampling import UniformSampler
from gnnns.training import Trainer
from gnnns.training.checkpoint import load
from gnnns.training.run import build_trainer, train
from tests.graphs import small_run


def _bf16(x):
    """``x`` rounded to bfloat16 and back: what autocast hands a matrix product."""
    return x.bfloat16().float()


def one_to_n_trainer(model, kg, precision, label_smoothing=0.1):
    return Trainer(
        model,
        kg,
        SoftmaxCrossEntropyLoss(label_smoothing=label_smoothing),
        torch.optim.SGD(model.parameters(), lr=0.1),
        OneToNLoader(kg.train, kg.num_entities, kg.num_relations, 32),
        eval_every=-1,
        progress=False,
        precision=precision,
    )


def test_bf16_one_to_n_loss_is_the_loss_of_bfloat16_rounded_products(ring_kg):
    torch.manual_seed(0)
    model = build_model("distmult", ring_kg, 16, reciprocal=True)
    queries = torch.stack([ring_kg.train[:32, 0], ring_kg.train[:32, 1]], 1)
    answers = ring_kg.train[:32, 2]
    ent, rel = model.embeddings()
    with torch.no_grad():
        query = ent[queries[:, 0]] * rel[queries[:, 1]]
        # autocast: bfloat16 inputs, float32 accumulation, a bfloat16 product; the loss in float32
        rounded = (_bf16(query) @ _bf16(ent).t()).bfloat16().float()
        expected = F.cross_entropy(rounded, answers, label_smoothing=0.1)
        exact = F.cross_entropy(query @ ent.t(), answers, label_smoothing=0.1)
    half = one_to_n_trainer(model, ring_kg, "bf16")
    with torch.no_grad(), half.autocast():
        got = half._batch_loss((queries, answers))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # the rounding is there: the float32 step's loss differs from it, by about bfloat16's precision
    with torch.no_grad():
        full = one_to_n_trainer(model, ring_kg, "fp32")._batch_loss((queries, answers))
    torch.testing.assert_close(full, exact)
    assert 0 < abs(float(full - got)) < 1e-2 * float(full)


def test_bf16_step_keeps_float32_parameters_and_gradients_close_to_float32(ring_kg):
    torch.manual_seed(0)
    fp32 = build_model("complex", ring_kg, 16, reciprocal=True)
    bf16 = build_model("complex", ring_kg, 16, reciprocal=True)
    bf16.load_state_dict(fp32.state_dict())
    batch = next(iter(OneToNLoader(ring_kg.train, ring_kg.num_entities, ring_kg.num_relations, 64)))
    grads = {}
    for model, precision in ((fp32, "fp32"), (bf16, "bf16")):
        trainer = one_to_n_trainer(model, ring_kg, precision)
        with trainer.autocast():
            loss = trainer._batch_loss(batch)
        loss.backward()
        grads[precision] = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert all(p.dtype == p.grad.dtype == torch.float32 for p in model.parameters())
    cosine = F.cosine_similarity(grads["fp32"], grads["bf16"], dim=0)
    assert 0.999 < cosine < 1.0  # bfloat16 rounding, not another gradient


@pytest.mark.parametrize("name", list(DECODERS))
@pytest.mark.parametrize("training", ["negative", "1vsall"])
def test_every_decoder_takes_a_bf16_step(tmp_path, ring_kg, name, training):
    kw = dict(model=name, training=training, precision="bf16", epochs=1, eval_every=-1, loss="sce")
    if name == "conve":
        kw.update(reciprocal=True, decoder_options={"num_filters": 4})
    trainer = build_trainer(small_run(tmp_path, name, **kw), ring_kg, None)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    batch = next(iter(trainer.loader))
    loss = trainer.step(batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    after = list(trainer.model.parameters())
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


@pytest.mark.parametrize("encoder", ["rgcn", "compgcn"])
def test_gnn_encoders_take_a_bf16_step(tmp_path, ring_kg, encoder):
    config = small_run(tmp_path, encoder, encoder=encoder, precision="bf16", eval_every=-1, loss="sce")
    trainer = build_trainer(config, ring_kg, None)
    weights = [(n, p.detach().clone()) for n, p in trainer.model.encoder.named_parameters()]
    loss = trainer.step(next(iter(trainer.loader)))
    assert torch.isfinite(loss)
    changed = [
        n for (n, w), p in zip(weights, trainer.model.encoder.parameters(), strict=True) if not torch.equal(w, p)
    ]
    assert changed  # the gradient reached the encoder's layers through the autocast products


def test_chunked_backward_recomputes_under_the_forward_autocast():
    torch.manual_seed(0)
    ent = torch.randn(12, 8, requires_grad=True)
    query = torch.randn(10, 8, requires_grad=True)
    candidates = torch.randint(12, (10, 7))
    decoder = build_model("distmult", _toy_graph(), 8).decoder
    weights = torch.randn(10, 7)

    def grads(score):
        ent.grad = query.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            scores = score()
        (scores.float() * weights).sum().backward()
        return scores.detach(), query.grad.clone(), ent.grad.clone()

    one_shot = grads(lambda: decoder.match(query.unsqueeze(1), ent[candidates]))
    chunked = grads(lambda: chunked_match(decoder, query, ent, candidates, elements=3 * 7 * 8))
    assert one_shot[0].dtype == chunked[0].dtype == torch.bfloat16
    for got, expected in zip(chunked, one_shot, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # the same backward in float32 (what a recomputation outside autocast gives) is another gradient
    ent.grad = query.grad = None
    (decoder.match(query.unsqueeze(1), ent[candidates]) * weights).sum().backward()
    assert not torch.allclose(query.grad, one_shot[1], rtol=1e-6, atol=1e-6)


def _toy_graph():
    from gnnns.data import KnowledgeGraph

    triples = torch.tensor([[0, 0, 1], [1, 1, 2], [2, 2, 3]])
    return KnowledgeGraph(triples, num_entities=12, num_relations=3)


def test_bf16_training_learns_the_ring_and_evaluates_in_float32(tmp_path, ring_kg):
    kw = dict(training="1vsall", loss="sce", model="complex", dim=16, epochs=60, lr=0.05, eval_every=0)
    kw.update(label_smoothing=0.1, batch_size=64, dataset="ring", precision="bf16")
    result = train(small_run(tmp_path, "bf16", **kw), kg=ring_kg)
    assert result["test"]["mrr"] > 0.5  # random ranking gives about 0.08 on 60 entities
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["precision"] == "bf16"
    # the evaluation ranks with float32 scores: the same model evaluated by a float32 trainer agrees
    model = build_trainer(small_run(tmp_path, "fp32", **{**kw, "precision": "fp32"}), ring_kg, None).model
    model.load_state_dict(load(tmp_path / "bf16" / "checkpoint.pt")["model"])
    assert evaluate(model, ring_kg, "test", 256, progress=False)["mrr"] == pytest.approx(
        result["test"]["mrr"], abs=1e-12
    )


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16'\], got 'fp16'"):
        RunConfig(precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        Trainer(
            build_model("distmult", _toy_graph(), 4),
            _toy_graph(),
            SoftmaxCrossEntropyLoss(),
            torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1),
            TripleLoader(_toy_graph().train, 2),
            sampler=UniformSampler(_toy_graph()),
            precision="half",
        )


@pytest.mark.parametrize("kind", ["1vsall", "kvsall"])
@pytest.mark.parametrize("loss", [SoftmaxCrossEntropyLoss(label_smoothing=0.2), BCELoss(label_smoothing=0.1)])
def test_one_to_n_losses_read_bfloat16_scores_in_float32(loss, kind):
    g = torch.Generator().manual_seed(0)
    scores = (4 * torch.randn(6, 50, generator=g)).bfloat16()
    targets = torch.randint(50, (6,), generator=g)
    if kind == "kvsall":
        targets = torch.rand(6, 50, generator=g) < 0.1
    low = scores.clone().requires_grad_()
    full = scores.float().requires_grad_()  # the same values, exactly
    got, expected = loss.forward_all(low, targets), loss.forward_all(full, targets)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    got.backward()
    expected.backward()
    assert low.grad.dtype == torch.bfloat16
    torch.testing.assert_close(low.grad, full.grad.bfloat16(), rtol=0, atol=0)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_trains_a_bf16_step(tmp_path, ring_kg, loss):
    config = small_run(tmp_path, loss, model="complex", loss=loss, precision="bf16", eval_every=-1)
    trainer = build_trainer(config, ring_kg, None)
    losses = [float(trainer.step(batch)) for batch in trainer.loader]
    assert all(torch.isfinite(torch.tensor(losses))) and len(losses) == 5  # 150 triples in batches of 32


def test_transe_l2_distances_to_all_entities_stay_float32_under_bf16_autocast():
    # ||q - c|| through ||q||^2 + ||c||^2 - 2 q.c cancels: in bfloat16 the error is ~1.5e-3 on
    # random unit-norm rows at d = 200; in float32 it matches the direct difference to ~1e-6.
    from gnnns.models.decoders.transe import TransE

    decoder = TransE(200, p=2)
    g = torch.Generator().manual_seed(0)
    query = F.normalize(torch.randn(16, 200, generator=g), dim=-1)
    cand = F.normalize(torch.randn(50, 200, generator=g), dim=-1)
    direct = -torch.cdist(query.double(), cand.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expanded = decoder.match_all(query, cand)
    assert expanded.dtype == torch.float32
    torch.testing.assert_close(expanded.double(), direct, atol=1e-5, rtol=0)
