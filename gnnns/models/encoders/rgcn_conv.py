"""The R-GCN layer: a mean over each relation's neighbours, computed per (relation, target) group."""

from __future__ import annotations

import itertools
import warnings
from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.nn import RGCNConv


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
    """``sparse @ dense`` whose backward uses a precomputed transpose instead of building one.

    It runs in the sparse matrix's dtype (float32) also under bfloat16 autocast: the neighbour
    means are sums of many rows, and the CPU's sparse kernels have no bfloat16 form."""

    @staticmethod
    def forward(ctx, matrix: Tensor, matrix_t: Tensor, dense: Tensor) -> Tensor:
        ctx.matrix_t = matrix_t
        with torch.autocast(dense.device.type, enabled=False):
            return matrix @ dense.to(matrix.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.matrix_t @ grad.to(ctx.matrix_t.dtype)


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
        if transpose is None:
            with torch.autocast(x_src.device.type, enabled=False):  # as in _SparseMatmul
                mean = groups.mean @ x_src.to(groups.mean.dtype)
        else:
            mean = _SparseMatmul.apply(groups.mean, transpose, x_src)
        messages = self._transform(mean, groups.relation_ptr)
        # Under bfloat16 autocast the messages are bfloat16; each node's sum over its relations is
        # taken in float32 (the parameters' dtype).
        out = x_dst.new_zeros(x_dst.size(0), self.out_channels, dtype=self.root.dtype)
        out = out.index_add_(0, groups.target, messages.to(out.dtype))
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
