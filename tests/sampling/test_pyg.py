from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.nn.kge import ComplEx, DistMult, RotatE, TransE

from gnnns.sampling import BernoulliSampler, Negatives, UniformSampler
from gnnns.sampling.pyg import kge_score, kge_scorer, knowledge_graph_from_data, link_negatives
from tests.graphs import random_kg

KGE_MODELS = [TransE, DistMult, ComplEx, RotatE]


small_kg = partial(random_kg, num_entities=40, num_relations=3, n=200)


def test_knowledge_graph_from_data_inverts_to_pyg():
    kg = small_kg()
    kg.entity_types = torch.stack([torch.arange(kg.num_entities), torch.arange(kg.num_entities) % 3], 1)
    back = knowledge_graph_from_data(kg.to_pyg(), num_relations=5)
    assert torch.equal(back.train, kg.train)
    assert back.num_entities == kg.num_entities and back.num_relations == 5
    assert torch.equal(back.node_type, torch.arange(kg.num_entities) % 3)
    assert len(back.valid) == 0 and len(back.test) == 0


def test_knowledge_graph_from_data_needs_edge_type():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=3)
    with pytest.raises(ValueError, match="edge_type"):
        knowledge_graph_from_data(data)


@pytest.mark.parametrize("cls", KGE_MODELS)
def test_kge_scorer_matches_pyg_forward_triple_by_triple(cls):
    torch.manual_seed(0)
    model = cls(num_nodes=20, num_relations=4, hidden_channels=8)
    positives = torch.tensor([[1, 0, 2], [3, 1, 4], [5, 3, 6]])
    entities = torch.tensor([[7, 8, 9, 1], [10, 11, 3, 0], [19, 12, 13, 14]])
    corrupt_head = torch.tensor([True, False, True])
    scores = kge_scorer(model)(positives, entities, corrupt_head)
    assert scores.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            h, r, t = positives[i].tolist()
            h, t = (entities[i, j].item(), t) if corrupt_head[i] else (h, entities[i, j].item())
            one = model(torch.tensor([h]), torch.tensor([r]), torch.tensor([t]))
            assert torch.allclose(scores[i, j], one[0], atol=1e-6), (i, j)


def test_kge_score_gradients_reach_exactly_the_scored_entities():
    torch.manual_seed(0)
    model = DistMult(num_nodes=30, num_relations=2, hidden_channels=4)
    positives = torch.tensor([[0, 0, 1], [2, 1, 3]])
    entities = torch.tensor([[10, 11], [20, 21]])
    # row 0 replaces its head (keeps tail 1), row 1 its tail (keeps head 2)
    kge_score(model, positives, entities, torch.tensor([True, False])).sum().backward()
    touched = torch.nonzero(model.node_emb.weight.grad.abs().sum(1)).flatten()
    assert touched.tolist() == [1, 2, 10, 11, 20, 21]
    assert torch.nonzero(model.rel_emb.weight.grad.abs().sum(1)).flatten().tolist() == [0, 1]


def test_training_a_pyg_model_with_a_gnnns_sampler_separates_positives_from_negatives():
    torch.manual_seed(0)
    kg = small_kg(seed=1, num_entities=30, num_relations=2, n=120)
    model = DistMult(kg.num_entities, kg.num_relations, hidden_channels=16)
    sampler = BernoulliSampler(kg)
    scorer = kge_scorer(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    pos = kg.train

    def margin_gap() -> float:
        with torch.no_grad():
            neg = sampler(pos, 16)
            return float(
                model(pos[:, 0], pos[:, 1], pos[:, 2]).mean() - scorer(pos, neg.entities, neg.corrupt_head).mean()
            )

    before = margin_gap()
    for _ in range(40):
        neg = sampler(pos, 8, scorer=scorer)
        pos_score = model(pos[:, 0], pos[:, 1], pos[:, 2])
        neg_score = scorer(pos, neg.entities, neg.corrupt_head)
        loss = F.softplus(-pos_score).mean() + F.softplus(neg_score).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert abs(before) < 0.5
    assert margin_gap() > 2.0


def test_link_negatives_maps_local_ids_and_indexes_the_seeds():
    kg = small_kg(num_entities=50)
    sampler = UniformSampler(kg)
    n_id = torch.tensor([40, 7, 23, 11, 5])
    local = torch.tensor([[0, 2, 4], [1, 3, 1]])
    rel = torch.tensor([2, 0, 1])
    link = link_negatives(sampler, local, rel, 6, n_id=n_id)
    assert torch.equal(link.positives, torch.tensor([[40, 2, 7], [23, 0, 11], [5, 1, 7]]))
    neg = link.negatives
    assert neg.entities.shape == (3, 6)
    seeds = link.seed_nodes
    assert seeds.unique().numel() == seeds.numel()
    expected = set(link.positives[:, [0, 2]].flatten().tolist()) | set(neg.entities.flatten().tolist())
    assert set(seeds.tolist()) == expected
    assert torch.equal(seeds[link.head_index], link.positives[:, 0])
    assert torch.equal(seeds[link.tail_index], link.positives[:, 2])
    assert torch.equal(seeds[link.negative_index], neg.entities)
    head, tail = link.negative_pairs()
    triples = neg.triples(link.positives)
    assert torch.equal(seeds[head], triples[..., 0]) and torch.equal(seeds[tail], triples[..., 2])


def test_link_negatives_passes_the_scorer_and_global_ids_to_the_sampler():
    seen = {}

    def sampler(positives, num_negatives, scorer):
        seen.update(positives=positives, scorer=scorer)
        return Negatives(
            torch.full((positives.size(0), num_negatives), 9), torch.zeros(positives.size(0), dtype=torch.bool)
        )

    def scorer(p, e, c):
        return torch.zeros(e.shape)

    link = link_negatives(sampler, torch.tensor([[3], [4]]), torch.tensor([1]), 2, scorer=scorer)
    assert seen["scorer"] is scorer and torch.equal(seen["positives"], torch.tensor([[3, 1, 4]]))
    assert link.seed_nodes.tolist() == [3, 4, 9]
    assert link.negative_index.tolist() == [[2, 2]]


def test_link_negatives_rejects_float_relations():
    with pytest.raises(ValueError, match="edge_type"):
        link_negatives(UniformSampler(small_kg()), torch.tensor([[0], [1]]), torch.tensor([1.0]), 2)


def test_neighbor_loader_on_the_seeds_puts_them_first():
    pytest.importorskip("torch_sparse")
    from torch_geometric.loader import NeighborLoader

    kg = small_kg(num_entities=40, n=300)
    data = kg.to_pyg()
    data.x = torch.arange(kg.num_entities).unsqueeze(1)
    sampler = BernoulliSampler(kg)
    edge_ids = torch.arange(0, 60, 3)
    link = link_negatives(sampler, data.edge_index[:, edge_ids], data.edge_type[edge_ids], 4)
    sub = NeighborLoader(data, num_neighbors=[3, 2])(link.seed_nodes)
    size = link.seed_nodes.numel()
    assert sub.batch_size == size
    assert torch.equal(sub.n_id[:size], link.seed_nodes)
    # the node features of the subgraph, gathered by the link indices, are the global entities
    assert torch.equal(sub.x[link.head_index, 0], link.positives[:, 0])
    assert torch.equal(sub.x[link.negative_index, 0], link.negatives.entities)


def test_link_negatives_from_a_link_neighbor_loader_batch():
    pytest.importorskip("torch_sparse")
    from torch_geometric.loader import LinkNeighborLoader

    kg = small_kg(num_entities=40, n=300)
    data = kg.to_pyg()
    loader = LinkNeighborLoader(
        data, num_neighbors=[2], edge_label_index=data.edge_index, edge_label=data.edge_type, batch_size=16
    )
    batch = next(iter(loader))
    link = link_negatives(BernoulliSampler(kg), batch.edge_label_index, batch.edge_label, 3, n_id=batch.n_id)
    assert torch.equal(link.positives, kg.train[batch.input_id])
