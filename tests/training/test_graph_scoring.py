"""Full-graph scoring: one encoder pass per step, and the batch's own edges left out on request."""

import torch
from torch import nn

from gnnns.data import KnowledgeGraph
from gnnns.loaders import TripleLoader
from gnnns.losses import SoftmaxCrossEntropyLoss
from gnnns.models import KGCModel
from gnnns.models.decoders import DistMult
from gnnns.sampling import DynamicSampler
from gnnns.training import Trainer
from gnnns.training.graph_scoring import FullGraphScoring, triple_keys


class NeighbourSum(nn.Module):
    """A one-layer toy GNN: x_i + sum of x_j over edges j -> i; counts its forward passes and
    remembers the edges it last saw."""

    def __init__(self, num_entities: int, num_relations: int, dim: int):
        super().__init__()
        self.entity = nn.Embedding(num_entities, dim)
        self.relation = nn.Embedding(num_relations, dim)
        self.calls = 0
        self.seen_edges = None

    def reset_parameters(self) -> None:
        self.entity.reset_parameters()
        self.relation.reset_parameters()

    def forward(self, graph):
        self.calls += 1
        self.seen_edges = graph.edge_index
        x = self.entity.weight
        out = x.index_add(0, graph.edge_index[1], x[graph.edge_index[0]])
        return out, self.relation.weight


def small_graph() -> KnowledgeGraph:
    train = torch.tensor([[0, 0, 1], [1, 1, 2], [2, 0, 3], [3, 1, 4], [4, 0, 0], [0, 1, 2], [1, 0, 3], [2, 1, 4]])
    return KnowledgeGraph(train, train[:2], train[2:4], num_entities=5, num_relations=2)


def gnn_model(kg: KnowledgeGraph) -> KGCModel:
    torch.manual_seed(0)
    model = KGCModel(NeighbourSum(kg.num_entities, kg.num_relations, 8), DistMult(8), kg.num_relations)
    model.graph = kg.to_pyg()
    return model


def test_encoder_runs_once_per_step_even_with_a_scoring_sampler():
    kg = small_graph()
    model = gnn_model(kg)
    sampler = DynamicSampler(kg, num_candidates=4)  # scores candidates with the model every step
    trainer = Trainer(
        model,
        kg,
        SoftmaxCrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=0.01),
        TripleLoader(kg.train, batch_size=4),
        sampler=sampler,
        num_negatives=2,
        progress=False,
        regularizer_weight=0.01,  # the N3 term reads the embeddings too
    )
    trainer.fit(1)
    assert model.encoder.calls == len(trainer.loader) == 2


def test_exclude_positives_removes_exactly_the_batch_edges_and_restores_the_graph():
    kg = small_graph()
    model = gnn_model(kg)
    scoring = FullGraphScoring(model, exclude_positives=True)
    batch = torch.tensor([[1, 1, 2], [3, 0 + 2, 2]])  # the second is the reciprocal form of (2, 0, 3)
    with scoring.step(batch):
        seen = {tuple(e) for e in model.encoder.seen_edges.t().tolist()}
        assert model.graph.edge_index.size(1) == 6
    every = {tuple(e) for e in kg.train[:, [0, 2]].tolist()}
    assert seen == every - {(1, 2), (2, 3)}
    assert model.graph.edge_index.size(1) == 8  # the full graph is back after the step


def test_without_exclusion_the_step_sees_the_whole_graph():
    kg = small_graph()
    model = gnn_model(kg)
    with FullGraphScoring(model).step(kg.train[:3]):
        assert model.encoder.seen_edges.size(1) == 8


def test_triple_keys_map_reciprocal_rows_to_their_edge():
    triples = torch.tensor([[0, 1, 4], [4, 3, 0], [4, 1, 0]])
    keys = triple_keys(triples, num_entities=5, num_relations=2)
    assert keys[0] == keys[1] == (0 * 2 + 1) * 5 + 4
    assert keys[2] == (4 * 2 + 1) * 5 + 0
