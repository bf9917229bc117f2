"""The CompGCN layer: neighbours composed with their relation, one weight per edge direction."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

COMPOSITIONS = ("sub", "mult", "corr")


def circular_correlation(a: Tensor, b: Tensor) -> Tensor:
    r"""Circular correlation :math:`(\mathbf{a} \star \mathbf{b})_k = \sum_{i=0}^{d-1} a_i\, b_{(k+i) \bmod d}`.

    Computed in :math:`O(d \log d)` as :math:`\mathcal{F}^{-1}(\overline{\mathcal{F}(\mathbf{a})}
    \odot \mathcal{F}(\mathbf{b}))`.

    Args:
        a (Tensor): shape ``[..., d]``.
        b (Tensor): shape ``[..., d]``, broadcastable with :obj:`a`.

    Returns:
        Shape ``[..., d]``.
    """
    d = a.size(-1)
    return torch.fft.irfft(torch.fft.rfft(a).conj() * torch.fft.rfft(b), n=d)


def _as_complex(x: Tensor) -> Tensor:
    """``[n, 2F]`` real (real, imaginary) pairs as ``[n, F]`` complex numbers."""
    return torch.view_as_complex(x.reshape(x.size(0), -1, 2))


class CompGCNConv(MessagePassing):
    r"""The CompGCN layer from `"Composition-based Multi-Relational Graph Convolutional Networks"
    <https://arxiv.org/abs/1911.03082>`_ (Vashishth et al., ICLR 2020), eq. 4-5:

    .. math::
        \mathbf{h}_v = f\Big(\tfrac{1}{3} \sum_{\delta \in \{O, I\}} \mathrm{drop}\big(
        \mathbf{W}_\delta \sum_{(u, r) \in \mathcal{N}_\delta(v)} w_{uv}\, \phi(\mathbf{x}_u, \mathbf{z}_r)\big)
        + \tfrac{1}{3} \mathbf{W}_S\, \phi(\mathbf{x}_v, \mathbf{z}_S) + \mathbf{b}\Big),
        \qquad \mathbf{z}_r' = \mathbf{W}_{\mathrm{rel}}\, \mathbf{z}_r,

    where :math:`f` is batch normalisation followed by the activation, :math:`\mathcal{N}_O(v)`
    are the messages into :math:`v` of original relations (``edge_type < R``),
    :math:`\mathcal{N}_I(v)` those of inverse relations (``edge_type >= R``), :math:`\mathbf{z}_S`
    a learned self-loop relation and :math:`\phi` the composition: ``"sub"``
    :math:`\mathbf{x} - \mathbf{z}`, ``"mult"`` :math:`\mathbf{x} \odot \mathbf{z}` or ``"corr"``
    :math:`\mathbf{x} \star \mathbf{z}` (:func:`circular_correlation`). The 1/3 averaging, dropout
    on the two neighbour terms, bias and batch normalisation follow the authors' implementation.

    Each direction is normalised symmetrically, and rescaled for messages missing from a subgraph:

    .. math::
        w_{uv} = \frac{1}{\sqrt{D^\delta_{\mathrm{out}}(u)\, D^\delta_{\mathrm{in}}(v)}}
        \cdot \frac{D^\delta_{\mathrm{in}}(v)}{S^\delta_{\mathrm{in}}(v)},

    where :math:`D^\delta` counts the messages of direction :math:`\delta` a node sends or receives
    in the full graph (:obj:`node_degree`) and :math:`S^\delta_{\mathrm{in}}(v)` those :math:`v`
    receives in :obj:`edge_index`. On the full graph :math:`S = D` and the second factor is 1 (the
    paper's layer); on a subgraph holding :math:`S` of the :math:`D` messages into :math:`v`, it
    makes the sum an unbiased estimate of the full-graph sum when the kept messages are a uniform
    sample. Every message has an inverse, so the inverse direction sends what the original one
    receives: :math:`D^I_{\mathrm{out}} = D^O_{\mathrm{in}}`, :math:`D^I_{\mathrm{in}} = D^O_{\mathrm{out}}`.

    Messages flow ``edge_index[0] -> edge_index[1]`` (PyG's ``source_to_target``); which node
    sends along a relation is the caller's choice (:class:`~gnnns.models.encoders.compgcn.CompGCNEncoder`
    follows the paper: a head receives from its tails through the original relation).

    Args:
        in_dim (int): input width :math:`d`, of entities and relations.
        out_dim (int): output width.
        composition (str, optional): ``"sub"``, ``"mult"`` or ``"corr"``. (default: ``"corr"``)
        dropout (float, optional): dropout on the aggregated neighbour terms. (default: ``0.1``)
        bias (bool, optional): add a learned bias. (default: :obj:`True`)
        batch_norm (bool, optional): batch-normalise the output. (default: :obj:`True`)
        activation (Callable, optional): applied last; :obj:`None` for none.
            (default: :func:`torch.tanh`)
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        composition: str = "corr",
        dropout: float = 0.1,
        bias: bool = True,
        batch_norm: bool = True,
        activation: Callable[[Tensor], Tensor] | None = torch.tanh,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        if composition not in COMPOSITIONS:
            raise ValueError(f"CompGCNConv: composition={composition!r}; expected one of {COMPOSITIONS}")
        self.in_dim, self.out_dim, self.composition = in_dim, out_dim, composition
        self.weight_original = nn.Parameter(torch.empty(in_dim, out_dim))
        self.weight_inverse = nn.Parameter(torch.empty(in_dim, out_dim))
        self.weight_self = nn.Parameter(torch.empty(in_dim, out_dim))
        self.weight_relation = nn.Parameter(torch.empty(in_dim, out_dim))
        self.self_relation = nn.Parameter(torch.empty(1, in_dim))
        self.register_parameter("bias", nn.Parameter(torch.empty(out_dim)) if bias else None)
        self.batch_norm = nn.BatchNorm1d(out_dim) if batch_norm else None
        self.dropout = nn.Dropout(dropout)
        self.activation = activation
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal weights and self-loop relation, zero bias, as the authors' code."""
        super().reset_parameters()
        for weight in (self.weight_original, self.weight_inverse, self.weight_self, self.weight_relation):
            nn.init.xavier_normal_(weight)
        nn.init.xavier_normal_(self.self_relation)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        if self.batch_norm is not None:
            self.batch_norm.reset_parameters()

    def compose(self, x: Tensor, rel: Tensor) -> Tensor:
        r""":math:`\phi(\mathbf{x}, \mathbf{z})`, broadcasting ``[..., d] x [..., d] -> [..., d]``."""
        if self.composition == "sub":
            return x - rel
        if self.composition == "mult":
            return x * rel
        return circular_correlation(x, rel)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_type: Tensor,
        rel: Tensor,
        node_degree: Tensor | tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One CompGCN layer.

        Args:
            x (Tensor or (Tensor, Tensor)): node states ``[N, in_dim]``, or a bipartite pair
                ``(x_src [N_src, in_dim], x_dst [N_dst, in_dim])`` whose targets ``x_dst`` are the
                nodes that receive messages (and their self-loop).
            edge_index (Tensor): messages ``source -> target``, shape ``[2, E]``.
            edge_type (Tensor): shape ``[E]``, in ``0..2R-1`` (``r + R`` is the inverse of ``r``).
            rel (Tensor): relation embeddings, shape ``[2R, in_dim]``.
            node_degree (Tensor or (Tensor, Tensor), optional): shape ``[N, 2]``, or a pair for
                the sources and targets of a bipartite call: per node, the number of
                original-direction messages it sends (column 0) and receives (column 1) in the
                full graph. :obj:`None`: counted from :obj:`edge_index`, for a full, non-bipartite
                graph. (default: :obj:`None`)

        Returns:
            ``(x_out [N_dst, out_dim], rel_out [2R, out_dim])``.
        """
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if rel.size(0) % 2:
            raise ValueError(f"CompGCNConv: rel has {rel.size(0)} rows; expected 2R (relations and their inverses)")
        n_src, n_dst = x_src.size(0), x_dst.size(0)
        # Both directions in one propagate: a direction-δ message reads source row u + δ N_src of a
        # table holding x scaled for each direction, and lands in row v + δ N_dst.
        inverse = (edge_type >= rel.size(0) // 2).long()
        index = torch.stack([edge_index[0] + inverse * n_src, edge_index[1] + inverse * n_dst])
        source_scale, target_scale = self._edge_scales(index, x_src, n_dst, node_degree)
        # w_uv = a(u) b(v) factorises: a scales the source table and b the sums, so no message is
        # multiplied by its weight (phi is linear in x for mult and corr; sub scales z_r by a(u)).
        x_msg, rel_msg = self._to_message_space(x_src, rel)
        summed = self.propagate(
            index,
            x=x_msg.repeat(2, 1) * source_scale.unsqueeze(-1),
            scale=source_scale,
            rel=rel_msg,
            edge_type=edge_type,
            size=(2 * n_src, 2 * n_dst),
        )
        summed = self._from_message_space(summed) * target_scale.unsqueeze(-1)
        original, inverse_sum = summed.unflatten(0, (2, n_dst)).unbind(0)
        # W is linear, so sum_u W phi(x_u, z_r) = W sum_u phi(x_u, z_r): the weights multiply the
        # [N, d] sums once instead of every [E, d] message (exact, and E/N times cheaper).
        out = (
            self.dropout(original @ self.weight_original)
            + self.dropout(inverse_sum @ self.weight_inverse)
            + self.compose(x_dst, self.self_relation) @ self.weight_self
        ) / 3
        if self.bias is not None:
            out = out + self.bias
        if self.batch_norm is not None:
            out = self.batch_norm(out)
        if self.activation is not None:
            out = self.activation(out)
        return out, rel @ self.weight_relation

    def _edge_scales(
        self, index: Tensor, x_src: Tensor, n_dst: int, node_degree: Tensor | tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor]:
        """a(u) for the ``[2 N_src]`` source rows and b(v) for the ``[2 N_dst]`` target rows."""
        ones = torch.ones(index.size(1), dtype=x_src.dtype, device=index.device)
        received = torch.zeros(2 * n_dst, dtype=x_src.dtype, device=index.device).index_add_(0, index[1], ones)
        if node_degree is None:
            if x_src.size(0) != n_dst:
                raise ValueError("CompGCNConv: a bipartite call needs node_degree (the full graph's counts)")
            sent = torch.zeros(2 * n_dst, dtype=x_src.dtype, device=index.device).index_add_(0, index[0], ones)
            degree_src = degree_dst = torch.stack([sent[:n_dst], received[:n_dst]], 1)
        else:
            degree_src, degree_dst = (node_degree, node_degree) if isinstance(node_degree, Tensor) else node_degree
        # Row blocks [original; inverse]: the inverse direction sends what the original receives.
        d_out = degree_src.to(x_src.dtype).clamp(min=1).t().reshape(-1)
        d_in = degree_dst.to(x_src.dtype).clamp(min=1).flip(1).t().reshape(-1)
        return d_out.rsqrt(), d_in.sqrt() / received.clamp(min=1)

    def _to_message_space(self, x: Tensor, rel: Tensor) -> tuple[Tensor, Tensor]:
        # Circular correlation is linear in each argument, so the sum of correlations is the inverse
        # FFT of the sum of spectra: transform the N nodes and 2R relations once, multiply spectra
        # per edge, invert once per node. Entities are conjugated here, per node, not per edge.
        if self.composition != "corr":
            return x, rel
        return torch.fft.rfft(x).conj().resolve_conj(), torch.fft.rfft(rel)

    def _from_message_space(self, x: Tensor) -> Tensor:
        if self.composition != "corr":
            return x
        return torch.fft.irfft(_as_complex(x), n=self.in_dim)

    def message(self, x_j: Tensor, scale_j: Tensor, rel: Tensor, edge_type: Tensor) -> Tensor:
        rel_j = rel.index_select(0, edge_type)
        if self.composition == "sub":
            return x_j - rel_j * scale_j.unsqueeze(-1)
        if self.composition == "mult":
            return x_j * rel_j
        # Complex spectra leave as (real, imaginary) pairs, which every scatter backend sums.
        return torch.view_as_real(x_j * rel_j).flatten(1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_dim}, {self.out_dim}, composition={self.composition!r})"
