"""R-GCN: relational graph convolutions over a knowledge graph and its inverse edges."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.models.encoders.graph_input import add_inverse_edges, as_graph, global_ids
from gnnns.models.encoders.rgcn_conv import GroupedRGCNConv, group_edges


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
        sparse (bool, optional): sparse gradients for the input table: a step on a subgraph
            gives a gradient of its ``n_id`` rows alone, which a sparse optimizer
            (:func:`gnnns.training.optim.build_optimizer`) applies to those rows alone, so that
            a neighbour-sampled step does not read and write the whole ``[E, hidden_dim]`` table
            and its optimizer state. (default: :obj:`False`)
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
        sparse: bool = False,
    ) -> None:
        super().__init__()
        if sparse and in_features is not None:
            raise ValueError(
                "RGCNEncoder: sparse=True makes the input table's gradient sparse; with in_features "
                "there is no input table"
            )
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
        self.sparse_input = bool(sparse)
        self.entity = nn.Embedding(num_entities, hidden_dim, sparse=sparse) if in_features is None else None
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
            if graph.num_nodes == self.num_entities and not (self.sparse_input and torch.is_grad_enabled()):
                # The whole graph: the table itself, without a gathered copy (a sparse table's
                # gradient must come from a gather).
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
