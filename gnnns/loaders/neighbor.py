"""Neighbour-sampled subgraphs for GNN encoders on graphs too large for full-graph message passing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gnnns.data.triple_index import isin_sorted, sorted_distinct

if TYPE_CHECKING:
    from torch_geometric.data import Data

_CHUNK = 1 << 22  # elements per chunk of the one-off passes over all edge ends


class NeighborSubgraphs:
    r"""The subgraph a GNN encoder needs around a batch's entities, sampled hop by hop across all relations.

    Node-wise neighbour sampling as introduced by GraphSAGE (`Inductive Representation Learning on
    Large Graphs <https://arxiv.org/abs/1706.02216>`_, Hamilton et al., NeurIPS 2017), with the
    semantics of :class:`torch_geometric.sampler.NeighborSampler` (directed, not disjoint),
    computed here with vectorised tensor operations: without pyg-lib PyG runs torch-sparse's
    single-threaded loop, about five times slower at ogbl-wikikg2's size (2.5M entities, 16M
    triples; see ``benchmarks/scale_wikikg2.py``). The seeds are the entities of the positives
    *and* of their negatives, so every embedding a decoder scores comes out of the subgraph.

    The encoders pass messages along every edge and along its inverse, so the receptive field of a
    node holds its in- *and* out-neighbours. The sampler therefore reads the :math:`2M` edge ends
    of the :math:`M` training triples as one symmetric adjacency: an entity's list holds each
    triple it is the tail of (its neighbour there is the head) and each triple it is the head of
    (the neighbour is the tail). With fan-outs :math:`(f_1, \dots, f_L)`, hop :math:`\ell` draws,
    for each node first reached at hop :math:`\ell - 1` (the seeds at hop 1), up to :math:`f_\ell`
    entries of its list uniformly without replacement (Floyd's algorithm, vectorised over the
    nodes; with ``replace``, :math:`f_\ell` independent draws); :math:`f_\ell = -1`, or a list no
    longer than :math:`f_\ell`, takes them all. Nodes are numbered as they are first reached: the
    seeds in their given order, then each hop's new nodes in ascending global id. An edge drawn
    from both of its ends is returned once, in its original direction.

    The batch's own positives are kept out of message passing (``exclude``): an encoder that sees
    the edge it is asked to predict learns to copy it. They are removed *after* sampling, so a node
    may keep fewer than :math:`f_\ell` edges.

    Built once, on the CPU, from one in-place sort of :math:`2M` keys: the adjacency takes 8 bytes
    per edge end (int32 edge and neighbour ids; 16 bytes per triple), a row pointer and the degrees
    24 bytes per entity, and a relabelling map 8 bytes per entity that a call fills for the nodes it
    reaches and clears again; the triples themselves are shared, not copied, when they are already a
    contiguous CPU ``int64`` tensor. Per call, time and memory are proportional to the sampled
    subgraph, not to :math:`M` or :math:`N`. The subgraph is returned on the device of ``seeds``.
    A call is not thread-safe (the relabelling map is shared); separate worker processes are.

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
        num_neighbors = [10, 10] if num_neighbors is None else [int(f) for f in num_neighbors]
        _check_triples(triples, num_entities, num_relations)
        if num_entities**2 * num_relations >= 2**63:
            raise ValueError(f"{num_entities} entities x {num_relations} relations overflow the int64 triple keys")
        if not num_neighbors or any(f < -1 for f in num_neighbors):
            raise ValueError(f"num_neighbors must list one fan-out >= 0 (or -1 for all) per hop, got {num_neighbors}")
        if 2 * triples.size(0) >= 2**31:
            raise ValueError(f"{triples.size(0)} triples: the adjacency holds int32 edge ids, at most 2**30 triples")
        self.triples = triples.detach().to("cpu", torch.long).contiguous()
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        self.num_neighbors = num_neighbors
        self.replace = bool(replace)
        self.rowptr, self.edge, self.neighbor = symmetric_adjacency(self.triples, self.num_entities)
        # float32 draws resolve 2**24 choices; a larger neighbour list needs float64 to reach every entry.
        longest = int((self.rowptr[1:] - self.rowptr[:-1]).max())
        self.draw_dtype = torch.float64 if longest >= 2**24 else torch.float32
        heads, tails = self.triples[:, 0], self.triples[:, 2]
        self.degree = torch.stack(
            [torch.bincount(heads, minlength=self.num_entities), torch.bincount(tails, minlength=self.num_entities)], 1
        )
        self._local = torch.full((self.num_entities,), -1, dtype=torch.long)

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

        device = seeds.device
        seeds = self._check_seeds(seeds)
        exclusion = self._exclusion_keys(exclude) if exclude is not None else None
        n_id, e_id, picked, edge_index = self._sample(seeds)
        if exclusion is not None and exclusion.numel():
            keep = ~isin_sorted(exclusion, triple_keys(picked, self.num_entities, self.num_relations))
            e_id, picked, edge_index = e_id[keep], picked[keep], edge_index[:, keep]
        graph = Data(
            edge_index=edge_index,
            edge_type=picked[:, 1],
            num_nodes=n_id.numel(),
            n_id=n_id,
            node_degree=self.degree.index_select(0, n_id),
            e_id=e_id,
        )
        return graph.to(device)

    def _sample(self, seeds: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Hop by hop: the nodes ``n_id [N']``, the rows ``e_id [M']`` (ascending) of the distinct
        drawn triples, those triples ``[M', 3]`` and their ``edge_index [2, M']`` in local ids."""
        local = self._local
        nodes, drawn = [seeds], []
        try:
            order = torch.arange(seeds.numel())
            local.index_copy_(0, seeds, order)
            if not torch.equal(local.index_select(0, seeds), order):
                raise ValueError("seeds must be distinct (pass torch.unique of the batch's entities)")
            frontier, count = seeds, seeds.numel()
            for fanout in self.num_neighbors:
                if frontier.numel() == 0:
                    break
                position = self._draw(frontier, fanout)
                neighbor = self.neighbor.index_select(0, position).long()
                # The nodes first reached at this hop get the next local ids, in ascending global id.
                frontier = sorted_distinct(neighbor[local.index_select(0, neighbor) < 0])
                local.index_copy_(0, frontier, torch.arange(count, count + frontier.numel()))
                count += frontier.numel()
                nodes.append(frontier)
                drawn.append(self.edge.index_select(0, position).long())
            # An edge drawn from both of its ends counts once; its endpoints come from the triple.
            e_id = sorted_distinct(torch.cat(drawn)) if drawn else torch.empty(0, dtype=torch.long)
            picked = self.triples.index_select(0, e_id)
            edge_index = local.index_select(0, picked[:, [0, 2]].t().reshape(-1)).view(2, -1)
        finally:
            # Only the entries this call set are cleared, so a call costs O(subgraph), not O(N).
            for part in nodes:
                local.index_fill_(0, part, -1)
        return torch.cat(nodes), e_id, picked, edge_index

    def _draw(self, frontier: Tensor, fanout: int) -> Tensor:
        """Positions in the adjacency drawn for the nodes ``frontier [F]``, shape ``[D]``."""
        begin = self.rowptr.index_select(0, frontier)
        degree = self.rowptr.index_select(0, frontier + 1) - begin
        if fanout < 0:
            return _whole_runs(begin, degree)
        if self.replace:
            rows = torch.nonzero(degree > 0).squeeze(1)
            offset = torch.rand(rows.numel(), fanout, dtype=self.draw_dtype).mul_(degree[rows].unsqueeze(1)).long()
            return (offset + begin[rows].unsqueeze(1)).view(-1)
        small = degree <= fanout
        whole = _whole_runs(begin[small], degree[small])
        rows = torch.nonzero(~small).squeeze(1)
        if rows.numel() == 0:
            return whole
        offset = floyd_sample(degree[rows], fanout, self.draw_dtype)
        return torch.cat([whole, (offset + begin[rows].unsqueeze(1)).view(-1)])

    def _check_seeds(self, seeds: Tensor) -> Tensor:
        if seeds.dim() != 1:
            raise ValueError(f"seeds must be a 1-d tensor of entity ids [S], got shape {list(seeds.shape)}")
        seeds = seeds.to("cpu", torch.long)
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_entities):
            raise ValueError(f"seeds must be entity ids in 0..{self.num_entities - 1}")
        return seeds

    def _exclusion_keys(self, triples: Tensor) -> Tensor:
        """Sorted keys of ``[P, 3]`` triples to exclude, reciprocal :math:`(t, r + R, h)` rows as :math:`(h, r, t)`."""
        if triples.dim() != 2 or triples.size(1) != 3:
            raise ValueError(f"exclude must be triples [P, 3], got shape {list(triples.shape)}")
        triples = triples.to("cpu", torch.long)
        r = triples[:, 1]
        if triples.numel() and (int(r.min()) < 0 or int(r.max()) >= 2 * self.num_relations):
            raise ValueError(f"exclude relations must be in 0..{2 * self.num_relations - 1} (reciprocals included)")
        return torch.sort(triple_keys(triples, self.num_entities, self.num_relations)).values

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_triples={self.triples.size(0)}, num_entities={self.num_entities}, "
            f"num_relations={self.num_relations}, num_neighbors={self.num_neighbors}, replace={self.replace})"
        )


def symmetric_adjacency(triples: Tensor, num_entities: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""Every entity's edges in both directions, as a CSR over entities.

    Triple :math:`j = (h, r, t)` is listed under :math:`t` (neighbour :math:`h`) and under
    :math:`h` (neighbour :math:`t`); a self-loop twice under its entity. The keys
    :math:`u \cdot 2M + j'` (:math:`j' = j` under the tail, :math:`M + j` under the head) are sorted in
    place in one ``[2M]`` int64 buffer, and the results are int32, so the peak is about 16 bytes per
    edge end.

    Args:
        triples (Tensor): shape ``[M, 3]``, int64 on the CPU.
        num_entities (int): :math:`N`.

    Returns:
        ``(rowptr [N + 1], edge [2M], neighbor [2M])``: the entries of entity :math:`u` are
        ``rowptr[u]:rowptr[u + 1]``, first those where :math:`u` is the tail, each group in triple
        order; ``edge`` holds their triple ids and ``neighbor`` the entity at the other end (both int32).
    """
    num_triples = triples.size(0)
    num_ends = 2 * num_triples
    heads, tails = triples[:, 0], triples[:, 2]
    keys = torch.empty(num_ends, dtype=torch.long)
    under_tail, under_head = keys.view(2, -1)
    torch.mul(tails, num_ends, out=under_tail).add_(torch.arange(num_triples))
    torch.mul(heads, num_ends, out=under_head).add_(torch.arange(num_triples, num_ends))
    keys.numpy().sort()  # in place: no index tensor, unlike torch.sort
    rowptr = torch.zeros(num_entities + 1, dtype=torch.long)
    end = torch.empty(num_ends, dtype=torch.int32)
    for chunk, out in zip(keys.split(_CHUNK), end.split(_CHUNK), strict=True):  # chunks bound the temporaries
        rowptr[1:] += torch.bincount(torch.div(chunk, num_ends, rounding_mode="floor"), minlength=num_entities)
        torch.remainder(chunk, num_ends, out=out)
    del keys
    torch.cumsum(rowptr, 0, out=rowptr)
    # End j' leads to heads[j'] below M and to tails[j' - M] above: one lookup in [heads, tails].
    other = torch.cat([heads, tails])
    neighbor = torch.empty(num_ends, dtype=torch.int32)
    for chunk, out in zip(end.split(_CHUNK), neighbor.split(_CHUNK), strict=True):
        out.copy_(other.index_select(0, chunk.long()))
        chunk.remainder_(num_triples)  # end id -> triple id
    return rowptr, end, neighbor


def floyd_sample(size: Tensor, k: int, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""``k`` distinct offsets drawn uniformly from ``0..size[i] - 1`` for every row, vectorised.

    Robert Floyd's algorithm (Bentley and Floyd, "Programming Pearls: A Sample of Brilliance",
    CACM 30(9), 1987): for :math:`j = n - k, \dots, n - 1` draw :math:`t \sim \mathcal{U}\{0, \dots, j\}`
    and take :math:`t`, or :math:`j` when :math:`t` is taken already; every :math:`k`-subset of
    :math:`\{0, \dots, n - 1\}` is then equally likely. Runs as :math:`k` steps over all rows at
    once, :math:`O(k^2)` comparisons per row.

    Args:
        size (Tensor): :math:`n_i \ge k`, shape ``[F]``.
        k (int): offsets per row.
        dtype (torch.dtype): of the uniform draws; float32 is exact while every :math:`n_i < 2^{24}`,
            float64 below :math:`2^{53}`. (default: ``torch.float64``)

    Returns:
        LongTensor of shape ``[F, k]``, distinct within each row.
    """
    chosen = torch.empty(size.numel(), k, dtype=torch.long, device=size.device)
    for i in range(k):
        top = size - k + i  # this step draws from 0..top
        pick = torch.rand(size.numel(), dtype=dtype, device=size.device).mul_(top + 1).long()
        taken = (chosen[:, :i] == pick.unsqueeze(1)).any(1)
        chosen[:, i] = torch.where(taken, top, pick)
    return chosen


def _whole_runs(begin: Tensor, length: Tensor) -> Tensor:
    """Every position of the runs ``[begin, begin + length)``, concatenated, shape ``[sum(length)]``."""
    owner = torch.repeat_interleave(torch.arange(length.numel()), length)
    shift = begin - (torch.cumsum(length, 0) - length)
    return torch.arange(owner.numel()) + shift.index_select(0, owner)


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
