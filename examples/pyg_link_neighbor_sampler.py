"""Train an R-GCN + DistMult on neighbour-sampled subgraphs whose seeds include the negatives.

    python examples/pyg_link_neighbor_sampler.py   # PyG's NeighborLoader needs torch-sparse or pyg-lib

Plain PyG (``RGCNConv``, ``NeighborLoader``) with a gnnns sampler. Each batch of training triples
gets relation-aware negatives first; the seeds of the neighbour sampling are then every entity the
decoder will score (heads, tails *and* negatives), so each of them is embedded from its own sampled
neighbourhood. ``gnnns.sampling.pyg.link_negatives`` does the seed bookkeeping below in one call,
and also accepts the local ids of a ``LinkNeighborLoader`` batch. UMLS is read from
``$GNNNS_DATA/umls`` (default ``../shared/datasets/umls``); the held-out metric ranks the true tail
of each test triple among all entities (raw ranks, as PyG's ``KGEModel.test``).

What to expect (2 CPU cores): epoch 1 loss 1.38, test tail MRR 0.134; epoch 10 loss 0.53, MRR
0.218, Hits@10 0.587, in about 13 s on a quiet machine (71 s while other jobs ran).
"""

import argparse
import os
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from torch_geometric.nn import RGCNConv

from gnnns.sampling import BernoulliSampler


def read_triples(folder: str) -> tuple[dict[str, torch.Tensor], int, int]:
    """``head<TAB>relation<TAB>tail`` files -> id triples per split, #entities, #relations."""
    rows = {
        split: [line.split("\t") for line in Path(folder, f"{split}.txt").read_text().splitlines()]
        for split in ("train", "test")
    }
    every = rows["train"] + rows["test"]
    entities = {e: i for i, e in enumerate(sorted({h for h, _, _ in every} | {t for _, _, t in every}))}
    relations = {r: i for i, r in enumerate(sorted({r for _, r, _ in every}))}
    ids = {s: torch.tensor([[entities[h], relations[r], entities[t]] for h, r, t in r]) for s, r in rows.items()}
    return ids, len(entities), len(relations)


class RGCNDistMult(nn.Module):
    """Two R-GCN layers over learned node embeddings; DistMult scores ``<z_h, w_r, z_t>``."""

    def __init__(self, num_nodes: int, num_relations: int, dim: int = 64):
        super().__init__()
        self.node_emb = nn.Embedding(num_nodes, dim)
        # messages run along both directions of each triple: relation r and its inverse r + R
        self.conv1 = RGCNConv(dim, dim, 2 * num_relations, num_bases=8)
        self.conv2 = RGCNConv(dim, dim, 2 * num_relations, num_bases=8)
        self.rel_emb = nn.Parameter(torch.randn(num_relations, dim) / dim**0.5)

    def forward(self, n_id, edge_index, edge_type):
        x = F.relu(self.conv1(self.node_emb(n_id), edge_index, edge_type))
        return self.conv2(x, edge_index, edge_type)

    def score(self, z_head, rel, z_tail):
        return (z_head * self.rel_emb[rel] * z_tail).sum(-1)


def embed_all(model, graph):
    """Every entity's embedding from the whole graph, ``[E, d]``: fine at this size; a large graph
    would embed in ``NeighborLoader`` batches over all nodes instead."""
    model.eval()
    with torch.no_grad():
        return model(torch.arange(graph.num_nodes), graph.edge_index, graph.edge_type)


def score_with(model, z, positives, entities, corrupt_head):
    """gnnns scorer contract ``[B, 3], [B, k], [B] -> [B, k]``, from cached embeddings ``z [E, d]``."""
    side = corrupt_head.unsqueeze(1)
    head = torch.where(side, entities, positives[:, :1])
    tail = torch.where(side, positives[:, 2:], entities)
    return model.score(z[head], positives[:, 1:2], z[tail])


def train_epoch(model, optimizer, train, sampler, scorer, subgraphs, num_negatives):
    model.train()
    total = 0.0
    for batch in train[torch.randperm(len(train))].split(256):
        negatives = sampler(batch, num_negatives, scorer=scorer)
        size = len(batch)
        every = torch.cat([batch[:, 0], batch[:, 2], negatives.entities.flatten()])
        seeds, position = torch.unique(every, return_inverse=True)  # seeds[position] == every
        head, tail = position[:size], position[size : 2 * size]
        replaced = position[2 * size :].view(negatives.entities.shape)

        sub = subgraphs(seeds)
        z = model(sub.n_id, sub.edge_index, sub.edge_type)[: sub.batch_size]  # row i embeds seeds[i]
        rel = batch[:, 1]
        side = negatives.corrupt_head.unsqueeze(1)
        neg_head = torch.where(side, replaced, head.unsqueeze(1))
        neg_tail = torch.where(side, tail.unsqueeze(1), replaced)
        pos = model.score(z[head], rel, z[tail])
        neg = model.score(z[neg_head], rel.unsqueeze(1), z[neg_tail])
        loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * size
    return total / len(train)


def tail_ranks(model, z, test):
    """Raw rank of each test triple's tail among all entities, ``[T]``."""
    h, r, t = test.t()
    scores = (z[h] * model.rel_emb[r]) @ z.t()
    return 1 + (scores > scores.gather(1, t.unsqueeze(1))).sum(1).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-negatives", type=int, default=8)
    parser.add_argument("--data", default=os.path.join(os.environ.get("GNNNS_DATA", "../shared/datasets"), "umls"))
    args = parser.parse_args()

    torch.manual_seed(0)
    triples, num_entities, num_relations = read_triples(args.data)
    train = triples["train"]
    train_graph = Data(edge_index=train[:, [0, 2]].t(), edge_type=train[:, 1], num_nodes=num_entities)
    # or UniformSampler, KHopSampler.from_pyg(train_graph, k=2), DynamicSampler (uses the scorer), ...
    sampler = BernoulliSampler.from_pyg(train_graph)

    message_graph = Data(
        edge_index=torch.cat([train_graph.edge_index, train_graph.edge_index.flip(0)], 1),
        edge_type=torch.cat([train[:, 1], train[:, 1] + num_relations]),
        num_nodes=num_entities,
    )
    # input_nodes=None: calling the loader with node ids samples around exactly those nodes, seeds first
    subgraphs = NeighborLoader(message_graph, num_neighbors=[10, 5])
    model = RGCNDistMult(num_entities, num_relations)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    z = embed_all(model, message_graph)
    for epoch in range(1, args.epochs + 1):
        # score-aware samplers see the model through last epoch's embeddings: one epoch stale, no extra pass
        scorer = partial(score_with, model, z)
        loss = train_epoch(model, optimizer, train, sampler, scorer, subgraphs, args.num_negatives)
        z = embed_all(model, message_graph)
        rank = tail_ranks(model, z, triples["test"])
        print(
            f"epoch {epoch:2d}  loss {loss:.4f}  test (tail, raw) "
            f"MRR {(1 / rank).mean():.3f}  MR {rank.mean():.1f}  Hits@10 {(rank <= 10).float().mean():.3f}"
        )


if __name__ == "__main__":
    main()
