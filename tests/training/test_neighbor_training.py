"""Neighbour-sampled training against full-graph training, and GNN runs end to end."""

import json

import pytest
import torch

from gnnns.config import RunConfig
from gnnns.loaders.neighbor import NeighborSubgraphs
from gnnns.losses import SoftmaxCrossEntropyLoss
from gnnns.models import build_model
from gnnns.training.graph_scoring import FullGraphScoring, SubgraphScoring
from gnnns.training.run import train
from tests.graphs import random_kg

ENCODERS = {
    "rgcn": {"num_layers": 2, "num_bases": 2, "edge_dropout": 0.0, "self_loop_dropout": 0.0},
    "compgcn": {"num_layers": 2, "init_dim": 8, "composition": "corr"},
}


def one_step(model, scoring, positives, entities, corrupt_head):
    model.zero_grad()
    with scoring.step(positives):
        pos, neg = scoring.score_batch(positives, entities, corrupt_head)
        loss = SoftmaxCrossEntropyLoss()(pos, neg)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_neighbor_sampled_step_equals_full_graph_step_when_the_fanout_covers_the_graph(encoder):
    kg = random_kg(seed=3, num_entities=60, num_relations=3, n=150)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("distmult", kg, 8, encoder=encoder, encoder_options=ENCODERS[encoder])
        # Evaluation mode with gradients: no dropout, and BatchNorm uses its running statistics,
        # which do not depend on which nodes a graph holds.
        models.append(model.eval())
    positives = kg.train[:6]
    g = torch.Generator().manual_seed(1)
    entities = torch.randint(kg.num_entities, (6, 4), generator=g)
    corrupt_head = torch.rand(6, generator=g) < 0.5

    full = FullGraphScoring(models[0], exclude_positives=True)
    sampled = SubgraphScoring(models[1], NeighborSubgraphs(kg.train, kg.num_entities, kg.num_relations, [-1, -1]))
    loss_full, grads_full = one_step(models[0], full, positives, entities, corrupt_head)
    loss_sub, grads_sub = one_step(models[1], sampled, positives, entities, corrupt_head)

    assert loss_sub.item() == pytest.approx(loss_full.item(), rel=1e-5)
    assert grads_sub.keys() == grads_full.keys()
    for name, grad in grads_full.items():
        torch.testing.assert_close(grads_sub[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # The step's own positives were not in the subgraph the sampled model saw last...
    assert models[1].graph is sampled.graph  # ...and the full graph is back afterwards.


def test_neighbor_sampled_step_differs_when_the_fanout_is_small():
    kg = random_kg(seed=3, num_entities=60, num_relations=3, n=400)
    torch.manual_seed(0)
    model = build_model("distmult", kg, 8, encoder="rgcn", encoder_options=ENCODERS["rgcn"]).eval()
    positives = kg.train[:6]
    entities = torch.randint(kg.num_entities, (6, 4), generator=torch.Generator().manual_seed(1))
    corrupt_head = torch.zeros(6, dtype=torch.bool)
    full, _ = one_step(model, FullGraphScoring(model, exclude_positives=True), positives, entities, corrupt_head)
    small = NeighborSubgraphs(kg.train, kg.num_entities, kg.num_relations, [1, 1])
    sampled, _ = one_step(model, SubgraphScoring(model, small), positives, entities, corrupt_head)
    assert abs(sampled.item() - full.item()) > 1e-4


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_a_sparse_input_table_gets_the_subgraph_rows_of_the_dense_gradient(encoder):
    kg = random_kg(seed=3, num_entities=60, num_relations=3, n=150)
    models = []
    for sparse in (False, True):
        torch.manual_seed(0)
        model = build_model("distmult", kg, 8, encoder=encoder, encoder_options=ENCODERS[encoder], sparse=sparse)
        models.append(model.eval())
    positives = kg.train[:4]
    g = torch.Generator().manual_seed(1)
    entities = torch.randint(kg.num_entities, (4, 3), generator=g)
    corrupt_head = torch.rand(4, generator=g) < 0.5
    grads = []
    for model in models:
        torch.manual_seed(2)  # the same sampled subgraph for both
        subgraphs = NeighborSubgraphs(kg.train, kg.num_entities, kg.num_relations, [2, 2])
        grads.append(one_step(model, SubgraphScoring(model, subgraphs), positives, entities, corrupt_head)[1])
    dense, sparse = grads[0]["encoder.entity.weight"], grads[1]["encoder.entity.weight"]
    assert not dense.is_sparse and sparse.is_sparse
    touched = sparse.coalesce().indices()[0]
    # Only the subgraph's rows, a few of the 60, and exactly the dense gradient's nonzero rows.
    assert 0 < len(touched) < kg.num_entities
    assert set(touched.tolist()) >= set(torch.nonzero(dense.abs().sum(1)).flatten().tolist())
    torch.testing.assert_close(sparse.to_dense(), dense, rtol=1e-5, atol=1e-7)
    for name, grad in grads[0].items():  # every other parameter as before
        if name != "encoder.entity.weight":
            torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_sparse_neighbor_training_updates_only_the_rows_it_sampled(tmp_path):
    kg = random_kg(seed=5, num_entities=200, num_relations=3, n=400)
    kg.valid, kg.test = kg.train[:10], kg.train[10:20]
    config = RunConfig(
        dataset="random",
        model="distmult",
        dim=8,
        encoder="rgcn",
        encoder_options={"num_layers": 1},
        graph_mode="neighbor",
        num_neighbors=[2],
        sparse=True,
        batch_size=8,
        epochs=1,
        num_negatives=2,
        eval_every=-1,
        progress=False,
    )
    from gnnns.training.run import build_trainer

    trainer = build_trainer(config, kg, None)
    before = trainer.model.encoder.entity.weight.detach().clone()
    trainer.step(next(iter(trainer.loader)))
    changed = (trainer.model.encoder.entity.weight.detach() != before).any(1)
    assert 0 < int(changed.sum()) < kg.num_entities // 2
    assert trainer.model.encoder.entity.weight.grad.is_sparse


@pytest.mark.parametrize(
    ("encoder", "model", "mode", "training", "loss"),
    [
        ("rgcn", "distmult", "full", "negative", "sce"),
        ("rgcn", "distmult", "neighbor", "negative", "nssa"),
        ("compgcn", "conve", "full", "kvsall", "bce"),
        ("compgcn", "transe", "neighbor", "negative", "margin"),
        ("rgcn", "distmult", "neighbor", "negative", "sparse"),
        ("compgcn", "distmult", "neighbor", "negative", "sparse"),
    ],
)
def test_gnn_runs_train_and_evaluate(tmp_path, encoder, model, mode, training, loss):
    sparse = loss == "sparse"  # the sparse input table, with the sce loss
    loss = "sce" if sparse else loss
    kg = random_kg(seed=5, num_entities=40, num_relations=3, n=160)
    kg.valid, kg.test = kg.train[:10], kg.train[10:20]
    config = RunConfig(
        dataset="random",
        model=model,
        dim=8,
        encoder=encoder,
        encoder_options={"num_layers": 1},
        decoder_options={"num_filters": 4, "kernel_size": 3} if model == "conve" else {},
        graph_mode=mode,
        num_neighbors=[5],
        training=training,
        loss=loss,
        label_smoothing=0.1 if loss == "bce" else 0.0,
        batch_size=64,
        epochs=2,
        num_negatives=4,
        eval_every=1,
        progress=False,
        sparse=sparse,
        output=str(tmp_path / "run"),
    )
    result = train(config, kg=kg)
    assert 0.0 < result["test"]["mrr"] <= 1.0
    assert (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("mode", ["full", "neighbor"])
def test_negative_diagnostics_measure_hardness_without_changing_training(tmp_path, mode):
    kg = random_kg(seed=5, num_entities=40, num_relations=3, n=160)
    kg.valid, kg.test = kg.train[:10], kg.train[10:20]
    lines = {}
    for every in (0, 1):
        config = RunConfig(
            dataset="random",
            model="distmult",
            dim=8,
            encoder="rgcn",
            encoder_options={"num_layers": 1},
            graph_mode=mode,
            num_neighbors=[3],
            batch_size=32,
            epochs=2,
            num_negatives=4,
            eval_every=-1,
            diagnostics_every=every,
            progress=False,
            output=str(tmp_path / f"run{every}"),
        )
        train(config, kg=kg)
        lines[every] = [json.loads(x) for x in (tmp_path / f"run{every}" / "metrics.jsonl").read_text().splitlines()]
    # R-GCN's edge dropout and the neighbour sampler draw from the global stream; measuring does not.
    assert [r["loss"] for r in lines[1]] == [r["loss"] for r in lines[0]]
    negatives = lines[1][-1]["negatives"]
    assert 0.3 < negatives["hardness"] < 0.9
    assert ("hardness_sample" in negatives) == (mode == "neighbor")


def test_mode_and_fanout_errors_say_what_is_expected():
    kg = random_kg(seed=5, num_entities=20, num_relations=2, n=60)
    with pytest.raises(ValueError, match="needs a GNN encoder"):
        train(RunConfig(graph_mode="neighbor", progress=False, eval_every=-1, epochs=1), kg=kg)
    with pytest.raises(ValueError, match="trains by negative sampling"):
        cfg = RunConfig(encoder="rgcn", graph_mode="neighbor", training="kvsall", loss="bce", epochs=1, progress=False)
        train(cfg, kg=kg)
    with pytest.raises(ValueError, match="expected 'full' or 'neighbor'"):
        train(RunConfig(encoder="rgcn", graph_mode="sampled", progress=False, epochs=1), kg=kg)
    with pytest.raises(ValueError, match="num_neighbors must be positive integers or -1"):
        RunConfig(num_neighbors=[10, 0])
    assert RunConfig(num_neighbors="10, 5").num_neighbors == [10, 5]
    with pytest.raises(ValueError, match="N3 regulariser needs full-graph"):
        cfg = RunConfig(encoder="rgcn", graph_mode="neighbor", regularizer_weight=0.1, epochs=1, progress=False)
        train(cfg, kg=kg)
