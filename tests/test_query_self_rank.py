"""benchmarks/query_self_rank.py: where a translational model ranks the query's own entity."""

from __future__ import annotations

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.models import build_model
from tests.benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def script():
    with benchmark_script("query_self_rank") as module:
        yield module


def test_own_entity_counts_per_relation_against_hand_placed_embeddings(script):
    # Entities on a line at 0, 1, 2, 3 (second coordinate 0). Relation 0, "near", is the zero vector:
    # every query's own entity scores 0, the best. Relation 1, "step", moves by +1: the answer of a
    # tail query (h, step, h + 1) scores 0 and the own entity -1; a head query asks t - 1, the same.
    train = torch.tensor([[0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 1, 2]])  # "near" symmetric, "step" not
    valid = torch.tensor([[2, 0, 3], [2, 1, 3]])
    kg = KnowledgeGraph(
        train,
        valid=valid,
        test=torch.empty(0, 3, dtype=torch.long),
        num_entities=4,
        num_relations=2,
        relation_names=["near", "step"],
    )
    model = build_model("transe", kg, 2, p=2)
    with torch.no_grad():
        model.encoder.entity.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))
        model.encoder.relation.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    model.eval()
    counts, relations = script.self_rank(model, kg, "valid", chunk=1)
    # Four queries; none has its own entity as a known answer; only "near"'s two rank it above the answer.
    assert counts == {"queries": 4, "self_above_answer": 2, "self_first": 2, "self_known": 0}
    rows = {(x["name"], x["side"]): x for x in relations}
    assert set(rows) == {("near", "tail"), ("near", "head"), ("step", "tail"), ("step", "head")}
    for side in ("tail", "head"):
        near, step = rows["near", side], rows["step", side]
        assert (near["self_above_answer"], near["self_first"]) == (1.0, 1.0)
        assert (step["self_above_answer"], step["self_first"]) == (0.0, 0.0)
        assert near["median_own_score"] == pytest.approx(0.0, abs=1e-3)  # -||r|| with r = 0
        assert near["median_answer_score"] == pytest.approx(-1.0, abs=1e-3)  # -||2 + 0 - 3||
        assert step["median_own_score"] == pytest.approx(-1.0, abs=1e-3)
        assert step["median_answer_score"] == pytest.approx(0.0, abs=1e-3)
        assert (near["train_triples"], near["reverse_in_train"]) == (2, 1.0)
        assert (step["train_triples"], step["reverse_in_train"]) == (2, 0.0)
