"""Neighbour-sampled subgraphs for GNN encoders on graphs too large for full-graph message passing."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from torch_geometric.data import Data

# PyG warns on every sampler built without pyg-lib that torch-sparse sampling is deprecated; the
# warning is silenced for that one message, and only while the sampler is being built.
_NO_PYG_LIB_WARNING = r"Using 'NeighborSampler' without a 'pyg-lib' installation is deprecated"


class NeighborSubgraphs:
    r"""The subgraph a GNN encoder needs around a batch's entities, sampled hop by hop across all relations.

    Node-wise neighbour sampling as introduced by GraphSAGE (`Inductive Representation Learning on
    Large Graphs <https://arxiv.org/abs/1706.02216>`_, Hamilton et al., NeurIPS 2017), run by
    :class:`torch_geometric.sampler.NeighborSampler`. The seeds are the entities of the positives
    *and* of their negatives, so every embedding a decoder scores comes out of the subgraph.

    The encoders pass messages along every edge and along its inverse, so the receptive field of a
    node holds its in- *and* out-neighbours. The sampler therefore runs on a symmetric graph of
    :math:`2M` edges: edge :math:`j < M` is head :math:`\to` tail of triple :math:`j`, edge
    :math:`M + j` is its reverse. With fan-outs :math:`(f_1, \dots, f_L)`, hop :math:`\ell` draws
    up to :math:`f_\ell` edges incident to each node reached at hop :math:`\ell - 1` (the seeds at
    hop 1), in either direction; :math:`f_\ell = -1` takes them all. An edge drawn from both of its
    ends is returned once, in its original direction.

    The batch's own positives are kept out of message passing (``exclude``): an encoder that sees
    the edge it is asked to predict learns to copy it. They are removed *after* sampling, so a node
    may keep fewer than :math:`f_\ell` edges.

    The sampler is built once and runs on the CPU: its CSC index over the :math:`2M` edges and the
    triples take about 56 bytes per triple (int64 ids), the degrees 16 bytes per entity. The
    subgraph is returned on the device of ``seeds``. Per batch, time and memory are proportional to
    the sampled subgraph, not to :math:`M`.

    Args:
        triples (Tensor): shape ``[M, 3]``, the training triples (the graph), ``(head, relation, tail)``.
        num_entities (int): :math:`N`.
        num_relations (int): :math:`R`; relations in ``triples`` are ``0..R-1``.
        num_neighbors (list[int]): fan-out per hop, ``-1`` for every edge. (default: ``[10, 10]``)
        replace (bool): draw neighbours with replacement. (default: False)
    """

    def __init__(
        self,
        triples: Tensor,
        num_entities: int,
        num_relations: int,
        num_neighbors: list[int] | None = None,
        replace: bool = False,
    ):
        from torch_geometric.data import Data
        from torch_geometric.sampler import NeighborSampler

        num_neighbors = [10, 10] if num_neighbors is None else [int(f) for f in num_neighbors]
        _check_triples(triples, num_entities, num_relations)
        if num_entities**2 * num_relations >= 2**63:
            raise ValueError(f"{num_entities} entities x {num_relations} relations overflow the int64 triple keys")
        if not num_neighbors or any(f < -1 for f in num_neighbors):
            raise ValueError(f"num_neighbors must list one fan-out >= 0 (or -1 for all) per hop, got {num_neighbors}")
        self.triples = triples.detach().to("cpu", torch.long).contiguous()
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        self.num_neighbors = num_neighbors
        self.replace = replace

        heads, tails = self.triples[:, 0], self.triples[:, 2]
        # Column j is triple j head -> tail, column M + j its reverse: PyG samples the sources of the
        # edges *into* a node, so both directions are needed for a node to reach in- and out-neighbours.
        symmetric = torch.stack([torch.cat([heads, tails]), torch.cat([tails, heads])])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_PYG_LIB_WARNING, category=UserWarning)
            self._sampler = NeighborSampler(
                Data(edge_index=symmetric, num_nodes=self.num_entities), num_neighbors, replace=replace
            )
        self.degree = torch.zeros(self.num_entities, 2, dtype=torch.long)
        self.degree[:, 0] = torch.bincount(heads, minlength=self.num_entities)
        self.degree[:, 1] = torch.bincount(tails, minlength=self.num_entities)

    def __call__(self, seeds: Tensor, exclude: Tensor | None = None) -> Data:
        r"""Sample the subgraph around ``seeds``.

        Args:
            seeds (Tensor): shape ``[S]``, distinct global entity ids, e.g. ``torch.unique`` of the
                entities of the positives and their negatives. Their order is kept.
            exclude (Tensor, optional): shape ``[P, 3]``, triples whose edges (every training edge
                with the same :math:`(h, r, t)`) must not be in the subgraph, e.g. the batch's
                positives. A reciprocal triple :math:`(t, r + R, h)` stands for :math:`(h, r, t)`.
                (default: None)

        Returns:
            ``Data`` with ``edge_index [2, M']`` (local ids, head -> tail), ``edge_type [M']``
            (``0..R-1``), ``num_nodes`` :math:`N'`, ``n_id [N']`` (global ids, ``n_id[:S] == seeds``),
            ``node_degree [N', 2]`` (out- and in-degree in the full training graph) and
            ``e_id [M']`` (the row of ``triples`` of each edge, ascending).
        """
        from torch_geometric.data import Data
        from torch_geometric.sampler import NodeSamplerInput

        device = seeds.device
        seeds = self._check_seeds(seeds)
        out = self._sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=seeds))
        num_triples = self.triples.size(0)
        sampled = self._sampler.edge_permutation[out.edge]  # CSC positions -> symmetric edge ids
        forward = sampled < num_triples
        # PyG's row is the drawn neighbour (source), col the node it was drawn for (target).
        head_local = torch.where(forward, out.row, out.col)
        tail_local = torch.where(forward, out.col, out.row)
        e_id, inverse = torch.unique(sampled % num_triples, return_inverse=True)
        # Both copies of an edge drawn from both ends carry the same endpoints, so any write wins.
        edge_index = torch.empty(2, e_id.numel(), dtype=torch.long)
        edge_index[:, inverse] = torch.stack([head_local, tail_local])
        picked = self.triples[e_id]
        if exclude is not None:
            keep = ~torch.isin(
                triple_keys(picked, self.num_entities, self.num_relations), self._exclusion_keys(exclude)
            )
            e_id, edge_index, picked = e_id[keep], edge_index[:, keep], picked[keep]
        n_id = out.node
        graph = Data(
            edge_index=edge_index,
            edge_type=picked[:, 1],
            num_nodes=n_id.numel(),
            n_id=n_id,
            node_degree=self.degree[n_id],
            e_id=e_id,
        )
        return graph.to(device)

    def _check_seeds(self, seeds: Tensor) -> Tensor:
        if seeds.dim() != 1:
            raise ValueError(f"seeds must be a 1-d tensor of entity ids [S], got shape {list(seeds.shape)}")
        seeds = seeds.to("cpu", torch.long)
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_entities):
            raise ValueError(f"seeds must be entity ids in 0..{self.num_entities - 1}")
        if torch.unique(seeds).numel() != seeds.numel():
            raise ValueError("seeds must be distinct (pass torch.unique of the batch's entities)")
        return seeds

    def _exclusion_keys(self, triples: Tensor) -> Tensor:
        """Keys of ``[P, 3]`` triples to exclude, reciprocal :math:`(t, r + R, h)` rows as :math:`(h, r, t)`."""
        if triples.dim() != 2 or triples.size(1) != 3:
            raise ValueError(f"exclude must be triples [P, 3], got shape {list(triples.shape)}")
        triples = triples.to("cpu", torch.long)
        r = triples[:, 1]
        if triples.numel() and (int(r.min()) < 0 or int(r.max()) >= 2 * self.num_relations):
            raise ValueError(f"exclude relations must be in 0..{2 * self.num_relations - 1} (reciprocals included)")
        return triple_keys(triples, self.num_entities, self.num_relations)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_triples={self.triples.size(0)}, num_entities={self.num_entities}, "
            f"num_relations={self.num_relations}, num_neighbors={self.num_neighbors}, replace={self.replace})"
        )


def triple_keys(triples: Tensor, num_entities: int, num_relations: int) -> Tensor:
    """One int64 key :math:`(hR + r)N + t` per ``(h, r, t)`` row of ``[P, 3]`` (distinct while
    :math:`N^2 R < 2^{63}`); a reciprocal row ``(t, r + R, h)`` gets the key of ``(h, r, t)``, the
    edge it stands for."""
    h, r, t = triples.unbind(1)
    inverse = r >= num_relations
    h, t = torch.where(inverse, t, h), torch.where(inverse, h, t)
    r = torch.where(inverse, r - num_relations, r)
    return (h * num_relations + r) * num_entities + t


def local_index(n_id: Tensor, ids: Tensor) -> Tensor:
    """The row of each global id of ``ids`` in ``n_id``, e.g. a batch's entities in a sampled subgraph.

    ``n_id`` may be in any order (a subgraph's ``n_id``, or the seeds alone); its entries must be
    distinct. Vectorised: one sort of ``n_id`` and a binary search per id.

    Args:
        n_id (Tensor): shape ``[N']``, distinct global ids.
        ids (Tensor): any shape, global ids that all occur in ``n_id``.

    Returns:
        Tensor of the shape of ``ids``: ``n_id[local_index(n_id, ids)] == ids``.
    """
    flat = ids.to(n_id.device).reshape(-1)
    if flat.numel() == 0:
        return torch.empty(ids.shape, dtype=torch.long, device=n_id.device)
    if n_id.numel() == 0:
        raise ValueError("n_id is empty but ids are not: every id must occur in n_id")
    sorted_ids, order = torch.sort(n_id)
    local = order[torch.searchsorted(sorted_ids, flat).clamp_(max=n_id.numel() - 1)]
    if not torch.equal(n_id[local], flat):
        raise ValueError("every id must occur in n_id (are these entities among the subgraph's seeds?)")
    return local.view(ids.shape)


def _check_triples(triples: Tensor, num_entities: int, num_relations: int) -> None:
    if triples.dim() != 2 or triples.size(1) != 3 or triples.size(0) == 0:
        raise ValueError(f"triples must be a non-empty [M, 3] tensor, got shape {list(triples.shape)}")
    low, high = triples.aminmax(dim=0)
    if min(int(low[0]), int(low[2])) < 0 or max(int(high[0]), int(high[2])) >= num_entities:
        raise ValueError(f"triples hold entity ids outside 0..{num_entities - 1}")
    if int(low[1]) < 0 or int(high[1]) >= num_relations:
        raise ValueError(f"triples hold relation ids outside 0..{num_relations - 1}")
