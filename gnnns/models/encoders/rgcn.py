"""R-GCN: relational graph convolutions over a knowledge graph and its inverse edges."""

from __future__ import annotations

import itertools
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv

from gnnns.models.encoders.graph_input import add_inverse_edges, as_graph, global_ids


class RelationGroups(NamedTuple):
    """The edges of one graph grouped by (relation, target node), the groups sorted the same way.

    Attributes:
        mean (Tensor): sparse CSR ``[P, N_src]``; row :math:`p` averages the sources of group
            :math:`p` (entries :math:`1 / c_{i,r}`).
        mean_t (Tensor or None): its transpose, sparse CSR ``[N_src, P]``, for the backward
            pass; :obj:`None` when no gradient is needed.
        target (Tensor): target node of each group, ``[P]``.
        relation_ptr (list[int]): the groups of relation :math:`r` are rows
            ``relation_ptr[r]:relation_ptr[r + 1]``.
    """

    mean: Tensor
    mean_t: Tensor | None
    target: Tensor
    relation_ptr: list[int]


def group_edges(
    edge_index: Tensor,
    edge_type: Tensor,
    num_relations: int,
    size: tuple[int, int],
    dtype: torch.dtype,
    transpose: bool = True,
) -> RelationGroups:
    """Group ``edge_index [2, M]`` (source -> target) with ``edge_type [M]`` by (relation, target).

    Args:
        edge_index (Tensor): ``[2, M]``, row 0 indexes the ``size[0]`` sources, row 1 the
            ``size[1]`` targets.
        edge_type (Tensor): ``[M]``, relations ``0..num_relations-1``.
        num_relations (int): number of relations (with inverses).
        size (tuple[int, int]): ``(N_src, N_dst)``.
        dtype (torch.dtype): dtype of the averaging weights (that of the node states).
        transpose (bool, optional): also build ``mean_t`` for the backward pass.
            (default: :obj:`True`)
    """
    num_src, num_dst = size
    device = edge_index.device
    # Two stable sorts order the edges by (relation, target, source): sorted column indices in
    # every CSR row keep the sparse kernels on their documented input.
    order = torch.sort(edge_index[0], stable=True).indices
    key = edge_type[order] * num_dst + edge_index[1, order]
    key, second = torch.sort(key, stable=True)
    source = edge_index[0, order[second]]
    group_key, group_of_edge, count = torch.unique_consecutive(key, return_inverse=True, return_counts=True)
    weight = count.to(dtype).reciprocal()[group_of_edge]
    num_groups = group_key.numel()
    mean = _csr(_ptr(count), source, weight, (num_groups, num_src))
    mean_t = None
    if transpose:
        by_source = torch.sort(source, stable=True).indices
        source_count = torch.bincount(source, minlength=num_src)
        mean_t = _csr(_ptr(source_count), group_of_edge[by_source], weight[by_source], (num_src, num_groups))
    bounds = torch.arange(num_relations + 1, device=device) * num_dst
    relation_ptr = torch.searchsorted(group_key, bounds).tolist()
    return RelationGroups(mean, mean_t, group_key % num_dst, relation_ptr)


def _ptr(count: Tensor) -> Tensor:
    return torch.cat([count.new_zeros(1), count.cumsum(0)])


def _csr(ptr: Tensor, col: Tensor, value: Tensor, size: tuple[int, int]) -> Tensor:
    # The indices are valid by construction, so the invariant checks are skipped; the once-per-process
    # "beta" notice of sparse CSR tensors would only alarm users of the encoder.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(ptr, col, value, size=size, check_invariants=False)


class _SparseMatmul(torch.autograd.Function):
    """``sparse @ dense`` whose backward uses a precomputed transpose instead of building one."""

    @staticmethod
    def forward(ctx, matrix: Tensor, matrix_t: Tensor, dense: Tensor) -> Tensor:
        ctx.matrix_t = matrix_t
        return matrix @ dense

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.matrix_t @ grad


class GroupedRGCNConv(RGCNConv):
    r"""PyG's :class:`~torch_geometric.nn.conv.RGCNConv` (same parameters, initialisation and
    decompositions) computed by grouping the edges by (relation, target) instead of looping
    over relations on the whole node set:

    .. math::
        \mathbf{x}'_i = m_i \, \mathbf{\Theta}_{\textrm{root}}^\top \mathbf{x}_i
        + \sum_{r} \mathbf{\Theta}_r^\top \Big( \frac{1}{c_{i,r}}
        \sum_{j \in \mathcal{N}^r_i} \mathbf{x}_j \Big) + \mathbf{b},
        \qquad c_{i,r} = |\mathcal{N}^r_i|

    with an optional per-node mask :math:`m_i \in \{0, 1\}` on the self-connection (1 when not
    given). The mean of each non-empty group :math:`(i, r)` is one sparse product, then each
    relation's groups are transformed by :math:`\mathbf{\Theta}_r` in one dense product, so the
    work is proportional to the number of groups, not to :math:`|\mathcal{R}| \cdot N`
    (``RGCNConv``) nor to :math:`M \cdot d^2` of memory (``FastRGCNConv``). The result equals
    ``RGCNConv(aggr="mean", root_weight=True)`` up to float rounding.

    Args:
        in_channels (int): width of the input node states.
        out_channels (int): width of the output node states.
        num_relations (int): number of relations :math:`|\mathcal{R}|` (with inverses).
        num_bases (int, optional): basis decomposition
            :math:`\mathbf{\Theta}_r = \sum_b a_{rb} \mathbf{V}_b`. (default: :obj:`None`)
        num_blocks (int, optional): block-diagonal decomposition, :math:`\mathbf{\Theta}_r`
            made of ``num_blocks`` square-ish blocks. (default: :obj:`None`)
        bias (bool, optional): learn the additive bias :math:`\mathbf{b}`. (default: :obj:`True`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        bias: bool = True,
    ) -> None:
        if num_bases is not None and num_blocks is not None:
            raise ValueError(
                f"GroupedRGCNConv: give num_bases ({num_bases}) or num_blocks ({num_blocks}), not both: "
                "basis and block-diagonal decompositions are alternatives"
            )
        if num_blocks is not None and (in_channels % num_blocks or out_channels % num_blocks):
            raise ValueError(
                f"GroupedRGCNConv: num_blocks={num_blocks} must divide in_channels={in_channels} "
                f"and out_channels={out_channels}"
            )
        super().__init__(
            in_channels, out_channels, num_relations, num_bases=num_bases, num_blocks=num_blocks, bias=bias
        )

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_type: Tensor,
        root_mask: Tensor | None = None,
    ) -> Tensor:
        """One layer on ``x [N, in]`` or bipartite ``(x_src [N_src, in], x_dst [N_dst, in])``.

        Args:
            edge_index (Tensor): ``[2, M]``, source -> target (target indexes ``x_dst``).
            edge_type (Tensor): ``[M]``.
            root_mask (Tensor, optional): ``[N_dst]`` bool, which self-connections to keep.

        Returns:
            ``[N_dst, out]``.
        """
        x_src, x_dst = x if isinstance(x, tuple) else (x, x)
        size = (x_src.size(0), x_dst.size(0))
        groups = group_edges(edge_index, edge_type, self.num_relations, size, x_src.dtype, torch.is_grad_enabled())
        return self.forward_grouped((x_src, x_dst), groups, root_mask)

    def forward_grouped(
        self, x: tuple[Tensor, Tensor], groups: RelationGroups, root_mask: Tensor | None = None
    ) -> Tensor:
        """:meth:`forward` on edges already grouped by :func:`group_edges` (reused across layers)."""
        x_src, x_dst = x
        # Without the transpose, PyTorch's own (slower) backward of the sparse product still applies.
        transpose = groups.mean_t
        mean = groups.mean @ x_src if transpose is None else _SparseMatmul.apply(groups.mean, transpose, x_src)
        messages = self._transform(mean, groups.relation_ptr)
        out = x_dst.new_zeros(x_dst.size(0), self.out_channels).index_add_(0, groups.target, messages)
        root = x_dst @ self.root
        if root_mask is not None:
            root = root * root_mask.unsqueeze(-1).to(root.dtype)
        out = out + root
        if self.bias is not None:
            out = out + self.bias
        return out

    def _transform(self, mean: Tensor, relation_ptr: list[int]) -> Tensor:
        """``Θ_r`` applied to each relation's block of group means, ``[P, in] -> [P, out]``."""
        sizes = [b - a for a, b in itertools.pairwise(relation_ptr)]
        present = [r for r, size in enumerate(sizes) if size > 0]
        if not present:
            return mean.new_zeros(0, self.out_channels)
        # One split and one unbind: slicing or indexing per relation would give each slice its
        # own backward that writes a full-size zero gradient, R times over.
        means = [part for part in mean.split(sizes) if part.size(0) > 0]
        if self.num_bases is not None:
            # Only the relations present are composed from the bases: a subgraph or a chunk
            # touches few of them.
            comp = self.comp[torch.tensor(present, device=mean.device)]
            weights = (comp @ self.weight.view(self.num_bases, -1)).view(-1, self.in_channels_l, self.out_channels)
            weights = weights.unbind(0)
        else:
            every = self.weight.unbind(0)
            weights = [every[r] for r in present]
        if self.num_blocks is None:
            parts = [part @ w for part, w in zip(means, weights, strict=True)]
        else:
            parts = [
                torch.einsum("pki,kio->pko", part.view(part.size(0), self.num_blocks, -1), w).reshape(part.size(0), -1)
                for part, w in zip(means, weights, strict=True)
            ]
        return torch.cat(parts)


class RGCNEncoder(nn.Module):
    r"""The R-GCN encoder from the `"Modeling Relational Data with Graph Convolutional Networks"
    <https://arxiv.org/abs/1703.06103>`_ paper (Schlichtkrull et al., 2018). Layer :math:`l`
    updates every node from its neighbours under each relation and from itself:

    .. math::
        \mathbf{h}_i^{(l+1)} = \sigma\Big( \mathbf{W}_0^{(l)} \mathbf{h}_i^{(l)}
        + \sum_{r \in \mathcal{R} \cup \mathcal{R}^{-1}} \sum_{j \in \mathcal{N}_i^r}
        \frac{1}{c_{i,r}} \mathbf{W}_r^{(l)} \mathbf{h}_j^{(l)} + \mathbf{b}^{(l)} \Big),
        \qquad c_{i,r} = |\mathcal{N}_i^r|

    where :math:`\mathcal{N}_i^r` are the sources of the edges of relation :math:`r` into
    :math:`i`, over the graph's edges :math:`(h, r, t)` and their inverses :math:`(t, r + R, h)`,
    so every node hears both its in- and out-neighbours; the self-connection
    :math:`\mathbf{W}_0` plays the self-loop. :math:`\sigma` is ReLU between layers, followed by
    feature dropout; the last layer has no activation, its output being the entity embedding a
    decoder scores. The weights :math:`\mathbf{W}_r` may be regularised by a basis decomposition
    :math:`\mathbf{W}_r = \sum_b a_{rb} \mathbf{V}_b` or a block-diagonal decomposition (PyG's
    :class:`~torch_geometric.nn.conv.RGCNConv` parameters, computed by
    :class:`GroupedRGCNConv`).

    **Edge dropout** (training only, as in the paper): before the layers, each edge, original and
    inverse independently, is dropped with probability :obj:`edge_dropout`, and the
    self-connection of each node with probability :obj:`self_loop_dropout`; the sampled graph is
    shared by all layers of the pass. Nothing is rescaled: :math:`c_{i,r}` counts the edges that
    remain.

    **Inputs.** Without node features, node :math:`i` starts from row :math:`\mathrm{n\_id}_i` of
    a learned table (``graph_input.global_ids``; Xavier-uniform); with features ``x [N, F]`` it
    starts from a linear map of them. On a subgraph, row :math:`i` of the output is node
    :math:`i` of the subgraph and :math:`c_{i,r}` is counted in the subgraph.

    **Relations.** R-GCN has no relation embeddings; the decoder's relation table
    ``[R', relation_dim]`` is a free parameter held here (Xavier-uniform).

    Args:
        num_entities (int): number of entities :math:`E` (rows of the input table).
        num_relations (int): relations :math:`R` of the graph, without inverses.
        entity_dim (int): width of the output entity embeddings.
        relation_dim (int): width of the relation embeddings.
        num_relation_embeddings (int, optional): rows :math:`R'` of the relation table, e.g.
            :math:`2R` when head queries use inverse relations. (default: :obj:`num_relations`)
        hidden_dim (int, optional): width of the inputs and of the hidden layers.
            (default: :obj:`entity_dim`)
        num_layers (int, optional): number of R-GCN layers. (default: :obj:`2`)
        num_bases (int, optional): bases per layer of the basis decomposition.
            (default: :obj:`None`)
        num_blocks (int, optional): blocks per layer of the block-diagonal decomposition; must
            divide :obj:`hidden_dim` and :obj:`entity_dim`. (default: :obj:`None`)
        dropout (float, optional): feature dropout between layers. (default: :obj:`0.0`)
        edge_dropout (float, optional): drop probability of each edge in training.
            (default: :obj:`0.4`)
        self_loop_dropout (float, optional): drop probability of each node's self-connection in
            training. (default: :obj:`0.2`)
        in_features (int, optional): width :math:`F` of ``graph.x``; give it exactly when the
            graphs carry node features. (default: :obj:`None`)
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        entity_dim: int,
        relation_dim: int,
        num_relation_embeddings: int | None = None,
        hidden_dim: int | None = None,
        num_layers: int = 2,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        dropout: float = 0.0,
        edge_dropout: float = 0.4,
        self_loop_dropout: float = 0.2,
        in_features: int | None = None,
    ) -> None:
        super().__init__()
        hidden_dim = entity_dim if hidden_dim is None else hidden_dim
        _check_arguments(
            num_layers,
            num_bases,
            num_blocks,
            {"hidden_dim": hidden_dim, "entity_dim": entity_dim},
            {"dropout": dropout, "edge_dropout": edge_dropout, "self_loop_dropout": self_loop_dropout},
        )
        self.num_entities = num_entities
        self.num_relations = num_relations
        self.dropout = dropout
        self.edge_dropout = edge_dropout
        self.self_loop_dropout = self_loop_dropout
        self.in_features = in_features
        self.entity = nn.Embedding(num_entities, hidden_dim) if in_features is None else None
        self.feature_proj = nn.Linear(in_features, hidden_dim) if in_features is not None else None
        dims = [hidden_dim] * num_layers + [entity_dim]
        self.convs = nn.ModuleList(
            GroupedRGCNConv(dims[i], dims[i + 1], 2 * num_relations, num_bases=num_bases, num_blocks=num_blocks)
            for i in range(num_layers)
        )
        num_relation_embeddings = num_relations if num_relation_embeddings is None else num_relation_embeddings
        self.relation = nn.Embedding(num_relation_embeddings, relation_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the input table (or feature map), every layer and the relation table."""
        if self.entity is not None:
            nn.init.xavier_uniform_(self.entity.weight)
        else:
            self.feature_proj.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        nn.init.xavier_uniform_(self.relation.weight)

    def forward(self, graph) -> tuple[Tensor, Tensor]:
        """Embeddings of the nodes of ``graph`` (a ``Data`` as :func:`as_graph` describes, or a ``HeteroData``).

        Returns:
            ``(entity_emb [N, entity_dim], relation_emb [R', relation_dim])``.
        """
        graph = as_graph(graph)
        x = self._inputs(graph)
        edge_index, edge_type = self._edges(graph)
        edge_index, edge_type, root_mask = self.drop_edges(edge_index, edge_type, x.size(0))
        # The grouping depends on the edges only, so all layers share it.
        size = (x.size(0), x.size(0))
        groups = group_edges(edge_index, edge_type, 2 * self.num_relations, size, x.dtype, torch.is_grad_enabled())
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.dropout(F.relu(x), self.dropout, self.training)
            x = conv.forward_grouped((x, x), groups, root_mask)
        return x, self.relation.weight

    @torch.no_grad()
    def inference(self, graph, chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
        """:meth:`forward` in eval mode (no dropout of any kind, whatever :obj:`self.training`),
        layer by layer, each layer over chunks of ``chunk_size`` target nodes and the edges into
        them, so that the per-edge memory is bounded by a chunk.

        Returns:
            ``(entity_emb [N, entity_dim], relation_emb [R', relation_dim])``, without gradients.
        """
        if chunk_size < 1:
            raise ValueError(f"RGCNEncoder.inference: chunk_size must be positive, got {chunk_size}")
        graph = as_graph(graph)
        x = self._inputs(graph)
        edge_index, edge_type = self._edges(graph)
        num_nodes = x.size(0)
        order = torch.argsort(edge_index[1])
        source, target, relation = edge_index[0, order], edge_index[1, order], edge_type[order]
        starts = list(range(0, num_nodes, chunk_size))
        ends = [min(start + chunk_size, num_nodes) for start in starts]
        bounds = torch.searchsorted(target, torch.tensor([0, *ends], device=target.device)).tolist()
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.relu(x)
            out = x.new_empty(num_nodes, conv.out_channels)
            for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
                a, b = bounds[k], bounds[k + 1]
                local = torch.stack([source[a:b], target[a:b] - start])
                out[start:end] = conv((x, x[start:end]), local, relation[a:b])
            x = out
        return x, self.relation.weight.detach()

    def drop_edges(self, edge_index: Tensor, edge_type: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """The training-time edge dropout: keep each edge with probability ``1 - edge_dropout``
        and each node's self-connection with probability ``1 - self_loop_dropout``.

        Args:
            edge_index (Tensor): ``[2, M]``, inverse edges included.
            edge_type (Tensor): ``[M]``.
            num_nodes (int): :math:`N`.

        Returns:
            ``(edge_index [2, M'], edge_type [M'], root_mask [N] bool or None)``; in eval mode the
            edges unchanged and :obj:`None` (every self-connection kept).
        """
        if not self.training:
            return edge_index, edge_type, None
        device = edge_index.device
        if self.edge_dropout > 0:
            keep = torch.rand(edge_type.numel(), device=device) >= self.edge_dropout
            edge_index, edge_type = edge_index[:, keep], edge_type[keep]
        root_mask = None
        if self.self_loop_dropout > 0:
            root_mask = torch.rand(num_nodes, device=device) >= self.self_loop_dropout
        return edge_index, edge_type, root_mask

    def _inputs(self, graph) -> Tensor:
        x = graph.x
        if self.feature_proj is not None:
            if x is None:
                raise ValueError(
                    f"RGCNEncoder was built with in_features={self.in_features} but the graph has no node "
                    "features x [N, F]"
                )
            return self.feature_proj(x)
        if x is not None:
            raise ValueError(
                f"the graph has node features x {list(x.shape)} but RGCNEncoder was built without in_features; "
                f"pass in_features={x.size(-1)} to read them (or remove x to use the entity table)"
            )
        if getattr(graph, "n_id", None) is None:
            if graph.num_nodes > self.num_entities:
                raise ValueError(
                    f"the graph has {graph.num_nodes} nodes and no n_id, but RGCNEncoder knows "
                    f"{self.num_entities} entities; give n_id [N] (global entity ids) for a subgraph"
                )
            if graph.num_nodes == self.num_entities:
                # The whole graph: the table itself, without a gathered copy.
                return self.entity.weight
        return self.entity(global_ids(graph))

    def _edges(self, graph) -> tuple[Tensor, Tensor]:
        edge_type = graph.edge_type
        if edge_type.numel() > 0:
            low, high = int(edge_type.min()), int(edge_type.max())
            if low < 0 or high >= self.num_relations:
                raise ValueError(
                    f"edge_type holds relations {low}..{high}, expected 0..{self.num_relations - 1} "
                    "(original direction; RGCNEncoder adds the inverses itself)"
                )
        return add_inverse_edges(graph.edge_index, edge_type, self.num_relations)

    def extra_repr(self) -> str:
        return (
            f"num_entities={self.num_entities}, num_relations={self.num_relations}, dropout={self.dropout}, "
            f"edge_dropout={self.edge_dropout}, self_loop_dropout={self.self_loop_dropout}"
        )


def _check_arguments(
    num_layers: int,
    num_bases: int | None,
    num_blocks: int | None,
    dims: dict[str, int],
    probabilities: dict[str, float],
) -> None:
    if num_layers < 1:
        raise ValueError(f"RGCNEncoder: num_layers must be at least 1, got {num_layers}")
    if num_bases is not None and num_blocks is not None:
        raise ValueError(
            f"RGCNEncoder: give num_bases ({num_bases}) or num_blocks ({num_blocks}), not both: "
            "basis and block-diagonal decompositions are alternatives"
        )
    if num_blocks is not None and any(dim % num_blocks for dim in dims.values()):
        widths = " and ".join(f"{name}={dim}" for name, dim in dims.items())
        raise ValueError(f"RGCNEncoder: num_blocks={num_blocks} must divide {widths}")
    for name, p in probabilities.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RGCNEncoder: {name} must lie in [0, 1], got {p}")
