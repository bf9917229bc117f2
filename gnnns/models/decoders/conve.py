"""ConvE: a 2D convolution over the stacked entity and relation embeddings."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gnnns.models.decoders.base import Decoder

STACKINGS = ("stack", "interleave")


class ConvE(Decoder):
    r"""The ConvE decoder from the `"Convolutional 2D Knowledge Graph Embeddings"
    <https://arxiv.org/abs/1707.01476>`_ paper (Dettmers et al., 2018): the head and relation
    embeddings are reshaped into a 2D image, convolved, projected back to :math:`d` dimensions
    and matched with the tail by a dot product,

    .. math::
        f(h, r, t) = g\Big(\mathrm{vec}\big(g([\bar{\mathbf{e}}_h ; \bar{\mathbf{r}}] * \omega)\big)
        \, \mathbf{W}\Big) \cdot \mathbf{e}_t + b_t

    where :math:`[\bar{\mathbf{e}}_h ; \bar{\mathbf{r}}]` is the ``2 height x width`` image,
    :math:`\omega` the filters (no bias: the batch norm after them would cancel it),
    :math:`g` a ReLU, :math:`\mathbf{W}` a linear layer and :math:`b_t` a per-entity bias. As in
    the official code the image is batch-normalised, then dropped out (input dropout); the
    feature maps are batch-normalised before the ReLU, then whole maps are dropped
    (:class:`~torch.nn.Dropout2d`); the projection is dropped out (hidden dropout) and
    batch-normalised before the last ReLU. Batch norm and dropout follow :meth:`train` /
    :meth:`eval`.

    The two layouts of the image, for :math:`d = hw`:

    * ``"stack"`` (ConvE): :math:`\mathbf{e}_h` reshaped row-major to ``height x width`` on top
      of :math:`\mathbf{r}` reshaped the same way, so the filters only mix the two embeddings
      along the one row where they meet.
    * ``"interleave"`` (CompGCN's ConvE): the coordinates are paired,
      :math:`(e_0, r_0, e_1, r_1, \dots, e_{d-1}, r_{d-1})`, and this sequence is written row by
      row into the ``2 height x width`` image. With an even width the *columns* alternate
      (:math:`\mathbf{e}` in even columns, :math:`\mathbf{r}` in odd ones) and every filter sees
      both embeddings; with an odd width the pattern shifts by one from row to row.

    The bias :math:`b_t` travels with the candidate: entity rows hold ``[e (dim) | b]``
    (:attr:`entity_dim` ``= dim + 1``) and the query ends with a constant 1, so that
    :meth:`match` is a dot product and :meth:`match_all` one matrix product. ConvE only answers
    tail queries :math:`(h, r, ?)`: build the model with ``reciprocal=True`` so that a head query
    :math:`(?, r, t)` becomes the tail query :math:`(t, r^{-1}, ?)`.

    Args:
        dim (int): embedding size :math:`d` of entities and relations.
        height (int, optional): rows of each reshaped embedding, a divisor of :obj:`dim`; the
            image is ``2 * height`` rows by ``dim // height`` columns. :obj:`None` picks the
            divisor closest to :math:`\sqrt{2d}` whose image fits the kernel (ties: the taller),
            which is the official code's 20 x 10 for :math:`d = 200` (a 40 x 10 image, 9728
            hidden features). CompGCN uses :obj:`height=10` (a 20 x 20 image).
            (default: :obj:`None`)
        num_filters (int, optional): number of filters. (default: :obj:`32`)
        kernel_size (int, optional): filters are ``kernel_size x kernel_size``, without
            padding. (default: :obj:`3`)
        input_dropout (float, optional): dropout on the image. (default: :obj:`0.2`)
        feature_dropout (float, optional): dropout of whole feature maps. (default: :obj:`0.2`)
        hidden_dropout (float, optional): dropout on the projection. (default: :obj:`0.3`)
        stacking (str, optional): ``"stack"`` or ``"interleave"``, see above.
            (default: :obj:`"stack"`)
        bias (bool, optional): learn the per-entity bias :math:`b_t` in the last coordinate of
            each entity row. (default: :obj:`True`)
        input_norm (bool, optional): batch-normalise the image, as the official code does;
            LibKGE's ConvE does not. (default: :obj:`True`)
        norm_affine (bool, optional): give the batch norms a learned scale and shift, as the
            official code does; LibKGE's have none (``affine=False``). (default: :obj:`True`)
    """

    def __init__(
        self,
        dim: int,
        height: int | None = None,
        num_filters: int = 32,
        kernel_size: int = 3,
        input_dropout: float = 0.2,
        feature_dropout: float = 0.2,
        hidden_dropout: float = 0.3,
        stacking: str = "stack",
        bias: bool = True,
        input_norm: bool = True,
        norm_affine: bool = True,
    ) -> None:
        super().__init__()
        if stacking not in STACKINGS:
            raise ValueError(f"ConvE: stacking must be one of {STACKINGS}, got {stacking!r}")
        if height is None:
            height = default_height(dim, kernel_size)
        if height < 1 or dim % height:
            raise ValueError(f"ConvE: height must be a positive divisor of dim={dim}, got {height}")
        width = dim // height
        out_height, out_width = 2 * height - kernel_size + 1, width - kernel_size + 1
        if out_height < 1 or out_width < 1:
            raise ValueError(
                f"ConvE: a {kernel_size}x{kernel_size} kernel does not fit the {2 * height}x{width} image "
                f"(dim={dim}, height={height}); choose a height with 2 * height >= kernel_size and "
                f"dim // height >= kernel_size"
            )
        self.dim = dim
        self.height = height
        self.width = width
        self.stacking = stacking
        self.bias = bias
        # Read by the model: a GNN encoder computes `dim` columns and the model appends a free bias.
        self.bias_column = bias
        self.entity_dim = dim + 1 if bias else dim
        self.relation_dim = dim
        self.input_norm = nn.BatchNorm2d(1, affine=norm_affine) if input_norm else nn.Identity()
        self.input_dropout = nn.Dropout(input_dropout)
        self.conv = nn.Conv2d(1, num_filters, kernel_size, bias=False)
        self.feature_norm = nn.BatchNorm2d(num_filters, affine=norm_affine)
        self.feature_dropout = nn.Dropout2d(feature_dropout)
        self.fc = nn.Linear(num_filters * out_height * out_width, dim)
        self.hidden_dropout = nn.Dropout(hidden_dropout)
        self.hidden_norm = nn.BatchNorm1d(dim, affine=norm_affine)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, height={self.height}, width={self.width}, stacking={self.stacking!r}, bias={self.bias}"

    def reset_parameters(self) -> None:
        """Re-initialise the filters, the projection and the batch norms (running statistics
        included) with PyTorch's defaults, as the official code does."""
        for module in (self.input_norm, self.conv, self.feature_norm, self.fc, self.hidden_norm):
            if not isinstance(module, nn.Identity):
                module.reset_parameters()

    @torch.no_grad()
    def reset_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        """Xavier-normal embeddings, as in the official code, and a zero bias column."""
        nn.init.xavier_normal_(entity[:, : self.dim])
        entity[:, self.dim :].zero_()
        nn.init.xavier_normal_(relation)

    def image(self, head: Tensor, rel: Tensor) -> Tensor:
        """The input image of the convolution, ``[N, dim] x [N, dim] -> [N, 1, 2 height, width]``,
        laid out as :attr:`stacking` says."""
        # Concatenated, the first `height` rows of the row-major image are the head and the next
        # `height` the relation; stacked on a last axis, [N, dim, 2] flattens to e0, r0, e1, r1, ...
        pixels = torch.cat((head, rel), dim=-1) if self.stacking == "stack" else torch.stack((head, rel), dim=-1)
        return pixels.reshape(-1, 1, 2 * self.height, self.width)

    def query(self, kept: Tensor, rel: Tensor, corrupt_head: Tensor | bool) -> Tensor:
        """``[..., entity_dim] x [..., dim] -> [..., entity_dim]``: the projected feature vector
        of the head, followed by a 1 that picks up the candidate's bias when :attr:`bias`.

        Leading dimensions broadcast; they are flattened into one batch for the convolution (and
        for the batch norms' statistics in training mode).

        Raises:
            ValueError: if :obj:`corrupt_head` asks for a head query anywhere.
        """
        wants_head = bool(corrupt_head.any()) if isinstance(corrupt_head, Tensor) else bool(corrupt_head)
        if wants_head:
            raise ValueError(
                "ConvE answers tail queries (h, r, ?) only, got corrupt_head=True; build the KGCModel with "
                "reciprocal=True (and 2R relation embeddings) so that a head query (?, r, t) is asked as "
                "the tail query (t, r + R, ?)"
            )
        head, rel = torch.broadcast_tensors(kept[..., : self.dim], rel)
        lead = head.shape[:-1]
        x = self.input_dropout(self.input_norm(self.image(head.reshape(-1, self.dim), rel.reshape(-1, self.dim))))
        x = self.feature_dropout(F.relu(self.feature_norm(self.conv(x))))
        x = self.fc(x.flatten(1))
        x = F.relu(self.hidden_norm(self.hidden_dropout(x)))
        x = x.reshape(*lead, self.dim)
        if self.bias:
            x = torch.cat((x, x.new_ones(*lead, 1)), dim=-1)
        return x

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[..., entity_dim] x [..., entity_dim] -> [...]``: the dot product, bias included."""
        # einsum contracts with a batched matrix product: [B, 1, d] x [B, k, d] never
        # materialises a [B, k, d] product as `(q * c).sum(-1)` would.
        return torch.einsum("...d,...d->...", query, cand)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        """``[Q, entity_dim] x [E, entity_dim] -> [Q, E]``: one matrix product."""
        return query @ cand.t()


def default_height(dim: int, kernel_size: int = 3) -> int:
    r"""The divisor of :obj:`dim` closest to :math:`\sqrt{2 \, dim}` (ties: the larger) among
    those whose ``2 * height x dim // height`` image fits a ``kernel_size`` square kernel.

    For :math:`d = 200` this is 20, the official ConvE shape (20 x 10 per embedding).

    Raises:
        ValueError: if no divisor fits the kernel.
    """
    target = math.sqrt(2 * dim)
    fitting = [h for h in range(1, dim + 1) if dim % h == 0 and 2 * h >= kernel_size and dim // h >= kernel_size]
    if not fitting:
        raise ValueError(f"ConvE: no reshape of dim={dim} fits a {kernel_size}x{kernel_size} kernel")
    return min(fitting, key=lambda h: (abs(h - target), -h))
