"""The graph a GNN encoder reads: a homogeneous ``Data`` with relation-typed edges."""

from __future__ import annotations

import torch
from torch import Tensor


def as_graph(graph):
    r"""A PyG ``HeteroData`` or ``Data`` as the homogeneous ``Data`` every gnnns encoder reads.

    A ``Data`` must carry ``edge_index [2, M]`` (head -> tail) and ``edge_type [M]``; it is
    returned as it is. A ``HeteroData`` is flattened the way
    :meth:`gnnns.data.KnowledgeGraph.from_hetero` numbers a knowledge graph: node type :math:`i`
    (in ``data.node_types`` order) takes the next contiguous range of node ids, and edge type
    :math:`j` (in ``data.edge_types`` order) becomes relation :math:`j`. Node features ``x`` are
    kept when every node type has them, with the same width.

    Returns:
        ``Data(edge_index [2, M], edge_type [M], num_nodes=N)``, plus ``node_type [N]`` and
        ``x [N, F]`` for a ``HeteroData`` (``x`` only when every node type has features).
    """
    from torch_geometric.data import Data, HeteroData

    if isinstance(graph, HeteroData):
        return _flatten_hetero(graph)
    if not isinstance(graph, Data):
        raise TypeError(f"expected a torch_geometric Data or HeteroData, got {type(graph).__name__}")
    if graph.edge_index is None or getattr(graph, "edge_type", None) is None:
        raise ValueError("a Data graph needs edge_index [2, M] and edge_type [M] (one relation id per edge)")
    if graph.edge_type.numel() != graph.edge_index.size(1):
        raise ValueError(
            f"edge_type has {graph.edge_type.numel()} entries but edge_index has {graph.edge_index.size(1)} edges"
        )
    return graph


def _flatten_hetero(data):
    from torch_geometric.data import Data

    offsets, start = {}, 0
    for node_type in data.node_types:
        offsets[node_type] = start
        start += int(data[node_type].num_nodes)
    if any(getattr(data[nt], "n_id", None) is not None for nt in data.node_types):
        raise ValueError(
            "a HeteroData subgraph with per-type n_id cannot be numbered globally here; pass the full "
            "HeteroData, or a homogeneous Data with n_id (global entity ids)"
        )
    device = data.edge_index_dict[data.edge_types[0]].device if data.edge_types else torch.device("cpu")
    index, types = [], []
    for rel_id, (src, rel, dst) in enumerate(data.edge_types):
        ei = data[src, rel, dst].edge_index
        index.append(torch.stack([ei[0] + offsets[src], ei[1] + offsets[dst]]))
        types.append(torch.full((ei.size(1),), rel_id, dtype=torch.long, device=device))
    out = Data(
        edge_index=torch.cat(index, 1) if index else torch.empty(2, 0, dtype=torch.long),
        edge_type=torch.cat(types) if types else torch.empty(0, dtype=torch.long),
        num_nodes=start,
    )
    out.node_type = torch.cat(
        [
            torch.full((int(data[nt].num_nodes),), i, dtype=torch.long, device=device)
            for i, nt in enumerate(data.node_types)
        ]
    )
    features = [getattr(data[nt], "x", None) for nt in data.node_types]
    if all(f is not None for f in features) and len({f.size(-1) for f in features}) == 1:
        out.x = torch.cat(features)
    return out


def add_inverse_edges(edge_index: Tensor, edge_type: Tensor, num_relations: int) -> tuple[Tensor, Tensor]:
    r"""Every edge :math:`(h, r, t)` once more as its inverse :math:`(t, r + R, h)`.

    Args:
        edge_index (Tensor): shape ``[2, M]``, head -> tail.
        edge_type (Tensor): shape ``[M]``, relations ``0..R-1``.
        num_relations (int): :math:`R`.

    Returns:
        ``(edge_index [2, 2M], edge_type [2M])``: the original edges first, then their inverses.
    """
    return (
        torch.cat([edge_index, edge_index.flip(0)], 1),
        torch.cat([edge_type, edge_type + num_relations]),
    )


def node_degree(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Out- and in-degree of each node, shape ``[N, 2]``, counted over ``edge_index [2, M]`` (head -> tail)."""
    degree = torch.zeros(num_nodes, 2, dtype=torch.long, device=edge_index.device)
    ones = torch.ones(edge_index.size(1), dtype=torch.long, device=edge_index.device)
    degree[:, 0].index_add_(0, edge_index[0], ones)
    degree[:, 1].index_add_(0, edge_index[1], ones)
    return degree


def global_ids(graph) -> Tensor:
    """The global entity id of each node of ``graph``: its ``n_id``, or ``0..N-1`` without one."""
    n_id = getattr(graph, "n_id", None)
    if n_id is not None:
        return n_id
    device = graph.edge_index.device
    return torch.arange(graph.num_nodes, device=device)
