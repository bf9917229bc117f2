"""The CompGCN encoder: entity and relation embeddings updated jointly by CompGCN layers."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from gnnns.models.encoders import graph_input
from gnnns.models.encoders.compgcn_conv import CompGCNConv


class CompGCNEncoder(nn.Module):
    r"""The encoder of `"Composition-based Multi-Relational Graph Convolutional Networks"
    <https://arxiv.org/abs/1911.03082>`_ (Vashishth et al., ICLR 2020): a stack of
    :class:`~gnnns.models.encoders.compgcn_conv.CompGCNConv` layers that updates entity and
    relation embeddings together,

    .. math::
        \mathbf{h}^{l+1}_v = f\Big(\sum_{(u, r) \in \mathcal{N}(v)} w_{uv}\,
        \mathbf{W}^l_{\lambda(r)}\, \phi(\mathbf{h}^l_u, \mathbf{z}^l_r)\Big), \qquad
        \mathbf{z}^{l+1}_r = \mathbf{W}^l_{\mathrm{rel}}\, \mathbf{z}^l_r.

    As in the paper, :math:`\mathcal{N}(v)` holds the neighbours along :math:`v`'s outgoing edges
    of the extended graph: a triple :math:`(h, r, t)` lets the head receive
    :math:`\phi(\mathbf{h}_t, \mathbf{z}_r)` through :math:`\mathbf{W}_O` and the tail receive
    :math:`\phi(\mathbf{h}_h, \mathbf{z}_{r+R})` through :math:`\mathbf{W}_I`; both messages weigh
    :math:`1 / \sqrt{\mathrm{out}(h)\, \mathrm{in}(t)}` (degrees of the full training graph, taken
    from ``graph.node_degree`` when given). On a subgraph, a message into :math:`v` is further
    multiplied by :math:`D_v / S_v`, :math:`v`'s full-graph count of such messages over those
    present, so that the sum is an unbiased estimate of the full-graph one when the present
    messages are a uniform sample of :math:`v`'s; on the full graph the factor is 1 (see
    :class:`~gnnns.models.encoders.compgcn_conv.CompGCNConv`). The authors' code
    instead takes both endpoints' degrees as message counts at the receiving side
    (:math:`1/\sqrt{\mathrm{out}(h)\,\mathrm{out}(t)}` and :math:`1/\sqrt{\mathrm{in}(h)\,\mathrm{in}(t)}`).

    Initial relation embeddings are free (:math:`2R` rows), or with :obj:`num_bases` :math:`B > 0`
    combinations :math:`\mathbf{z}_r = \sum_b \alpha_{rb} \mathbf{v}_b` of :math:`B` learned basis
    vectors (paper, section 4.2). Parameters are Xavier-normal, as in the authors' code.

    Args:
        num_entities (int): :math:`E`, rows of the entity table (indexed by ``graph.n_id``).
        num_relations (int): :math:`R`, relations of the data without inverses.
        entity_dim (int): width of the entity embeddings (the last layer's width).
        relation_dim (int): width of the relation embeddings returned; when it differs from
            :obj:`entity_dim` a final linear map projects them.
        num_relation_embeddings (int, optional): :math:`R'` rows returned, the first :math:`R'` of
            the :math:`2R` (``r + R`` is the inverse of ``r``). :obj:`None`: :math:`2R`.
            (default: :obj:`None`)
        init_dim (int, optional): width of the input embeddings. (default: ``100``)
        hidden_dim (int, optional): width of the inner layers; :obj:`None`: :obj:`entity_dim`.
            (default: :obj:`None`)
        num_layers (int, optional): number of CompGCN layers. (default: ``1``)
        composition (str, optional): ``"sub"``, ``"mult"`` or ``"corr"``. (default: ``"corr"``)
        num_bases (int, optional): :math:`B`; ``0`` for free relation embeddings. (default: ``0``)
        dropout (float, optional): dropout of every layer's neighbour terms. (default: ``0.1``)
        output_dropout (float, optional): dropout of every layer's entity output, the authors'
            ``hid_drop`` (0.3 in their CompGCN + ConvE runs). (default: ``0.0``)
        batch_norm_scale (float, optional): initial scale :math:`\gamma` of every layer's batch
            norm (PyTorch's and the authors' default is 1). At 1 the first layer's outputs,
            :math:`\tanh` of unit-variance features, are large, and a 1-N BCE decoder starts with
            large logits from which it learns very slowly on FB15k-237; ``0.1`` starts them small.
            (default: ``1.0``)
        in_features (int, optional): :math:`F` when graphs carry node features ``x [N, F]``,
            mapped to :obj:`init_dim` by a linear layer. (default: :obj:`None`)
        sparse (bool, optional): sparse gradients for the entity table: a step on a subgraph
            gives a gradient of its ``n_id`` rows alone, which a sparse optimizer applies to those
            rows alone (neighbour-sampled training on a large graph). (default: :obj:`False`)
    """

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        entity_dim: int,
        relation_dim: int,
        num_relation_embeddings: int | None = None,
        init_dim: int = 100,
        hidden_dim: int | None = None,
        num_layers: int = 1,
        composition: str = "corr",
        num_bases: int = 0,
        dropout: float = 0.1,
        output_dropout: float = 0.0,
        batch_norm_scale: float = 1.0,
        in_features: int | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        num_relation_embeddings = 2 * num_relations if num_relation_embeddings is None else num_relation_embeddings
        if not 1 <= num_relation_embeddings <= 2 * num_relations:
            raise ValueError(
                f"CompGCNEncoder: num_relation_embeddings={num_relation_embeddings}; expected 1..{2 * num_relations}"
            )
        if num_layers < 1 or num_bases < 0:
            raise ValueError(f"CompGCNEncoder: num_layers={num_layers}, num_bases={num_bases}; expected >= 1, >= 0")
        self.num_entities, self.num_relations = num_entities, num_relations
        self.num_relation_embeddings, self.num_bases = num_relation_embeddings, num_bases
        self.sparse_input = bool(sparse)
        self.entity = nn.Embedding(num_entities, init_dim, sparse=sparse)
        self.features = nn.Linear(in_features, init_dim) if in_features is not None else None
        if num_bases > 0:
            self.relation_basis = nn.Parameter(torch.empty(num_bases, init_dim))
            self.relation_coefficient = nn.Parameter(torch.empty(2 * num_relations, num_bases))
        else:
            self.relation = nn.Parameter(torch.empty(2 * num_relations, init_dim))
        hidden_dim = entity_dim if hidden_dim is None else hidden_dim
        dims = [init_dim] + [hidden_dim] * (num_layers - 1) + [entity_dim]
        self.convs = nn.ModuleList(
            CompGCNConv(a, b, composition=composition, dropout=dropout) for a, b in itertools.pairwise(dims)
        )
        self.relation_projection = nn.Linear(entity_dim, relation_dim) if relation_dim != entity_dim else None
        self.output_dropout = nn.Dropout(output_dropout)
        self.batch_norm_scale = float(batch_norm_scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal tables and weights, zero biases."""
        nn.init.xavier_normal_(self.entity.weight)
        for linear in (self.features, self.relation_projection):
            if linear is not None:
                nn.init.xavier_normal_(linear.weight)
                nn.init.zeros_(linear.bias)
        if self.num_bases > 0:
            nn.init.xavier_normal_(self.relation_basis)
            nn.init.xavier_normal_(self.relation_coefficient)
        else:
            nn.init.xavier_normal_(self.relation)
        for conv in self.convs:
            conv.reset_parameters()
            if conv.batch_norm is not None:
                nn.init.constant_(conv.batch_norm.weight, self.batch_norm_scale)

    def initial_relations(self) -> Tensor:
        """The layer-0 relation embeddings, shape ``[2R, init_dim]``."""
        if self.num_bases > 0:
            return self.relation_coefficient @ self.relation_basis
        return self.relation

    def forward(self, graph) -> tuple[Tensor, Tensor]:
        """Embed the nodes of a graph or subgraph.

        Args:
            graph (Data or HeteroData): see :func:`~gnnns.models.encoders.graph_input.as_graph`;
                optional ``n_id [N]``, ``x [N, F]``, ``node_degree [N, 2]``.

        Returns:
            ``(entity_emb [N, entity_dim], relation_emb [R', relation_dim])``; row ``i`` is node ``i``.
        """
        graph = graph_input.as_graph(graph)
        x = self._inputs(graph)
        edge_index, edge_type, degree = self._messages(graph)
        rel = self.initial_relations()
        for conv in self.convs:
            x, rel = conv(x, edge_index, edge_type, rel, degree)
            x = self.output_dropout(x)
        return x, self._relation_output(rel)

    @torch.no_grad()
    def inference(self, graph, chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
        """:meth:`forward` in eval mode, layer by layer, ``chunk_size`` target nodes at a time.

        Each chunk sees only the messages into its nodes (a bipartite call), so the memory of a
        layer is bounded by the chunk's edges. The module is put in eval mode for the call
        (batch norm uses its running statistics, no dropout) and its modes are restored after.

        Returns:
            ``(entity_emb [N, entity_dim], relation_emb [R', relation_dim])``.
        """
        if chunk_size < 1:
            raise ValueError(f"CompGCNEncoder.inference: chunk_size={chunk_size}; expected >= 1")
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        try:
            return self._chunked(graph_input.as_graph(graph), chunk_size)
        finally:
            for module, training in modes:
                module.training = training

    def _chunked(self, graph, chunk_size: int) -> tuple[Tensor, Tensor]:
        x = self._inputs(graph)
        edge_index, edge_type, degree = self._messages(graph)
        order = edge_index[1].argsort()
        edge_index, edge_type = edge_index[:, order], edge_type[order]
        num_nodes = x.size(0)
        starts = list(range(0, num_nodes, chunk_size))
        bounds = torch.tensor([*starts, num_nodes], device=edge_index.device)
        ptr = torch.searchsorted(edge_index[1], bounds).tolist()
        rel = self.initial_relations()
        for conv in self.convs:
            parts = []
            for i, start in enumerate(starts):
                lo, hi = ptr[i], ptr[i + 1]
                local = edge_index[:, lo:hi] - torch.tensor([[0], [start]], device=edge_index.device)
                targets = slice(start, start + chunk_size)
                out, rel_next = conv((x, x[targets]), local, edge_type[lo:hi], rel, (degree, degree[targets]))
                parts.append(out)
            x, rel = torch.cat(parts), rel_next
        return x, self._relation_output(rel)

    def _inputs(self, graph) -> Tensor:
        x = getattr(graph, "x", None)
        if x is None:
            return self.entity(graph_input.global_ids(graph))
        if self.features is None:
            raise ValueError(
                f"CompGCNEncoder: the graph has node features x {list(x.shape)} but the encoder was built "
                "without in_features; pass in_features=F"
            )
        return self.features(x)

    def _messages(self, graph) -> tuple[Tensor, Tensor, Tensor]:
        """Messages ``[2, 2M]``, their types ``[2M]`` and the layers' ``node_degree [N, 2]``."""
        # Paper direction: along (h, r, t) the head receives from the tail through r (flip), and the
        # tail from the head through the inverse r + R.
        edge_index, edge_type = graph_input.add_inverse_edges(
            graph.edge_index.flip(0), graph.edge_type, self.num_relations
        )
        degree = getattr(graph, "node_degree", None)
        if degree is None:
            degree = graph_input.node_degree(graph.edge_index, int(graph.num_nodes))
        # Original-direction messages are sent by tails (in-degree) and received by heads
        # (out-degree): the graph's (out, in) columns swapped.
        return edge_index, edge_type, degree.flip(1)

    def _relation_output(self, rel: Tensor) -> Tensor:
        rel = rel[: self.num_relation_embeddings]
        return rel if self.relation_projection is None else self.relation_projection(rel)

    def extra_repr(self) -> str:
        return (
            f"num_entities={self.num_entities}, num_relations={self.num_relations}, "
            f"num_relation_embeddings={self.num_relation_embeddings}, num_bases={self.num_bases}"
        )
