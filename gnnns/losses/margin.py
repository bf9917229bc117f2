"""The pairwise margin ranking loss."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnns.losses.weighting import row_mean, weighted_negative_mean


class MarginRankingLoss(nn.Module):
    r"""The margin ranking loss of `"Translating Embeddings for Modeling Multi-Relational Data"
    <https://proceedings.neurips.cc/paper/2013/file/1cecc7a77928ca8133fa24c4dd7e0ba5-Paper.pdf>`_
    (Bordes et al., 2013): every negative should score at least :math:`\gamma` below its positive,

    .. math::
        \mathcal{L} = \frac{1}{B} \sum_{b=1}^{B} \sum_{k} w_{bk}
        \max\left(0, \gamma - s^+_b + s^-_{bk}\right)

    with :math:`w_{bk} = 1/k` unless the sampler gives weights.

    Args:
        margin (float, optional): :math:`\gamma`. (default: :obj:`1.0`)
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(
        self, pos: Tensor, neg: Tensor, weight: Tensor | None = None, row_weight: Tensor | None = None
    ) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1), ``row_weight [B]``
        (each positive's weight in the batch's mean, :func:`~gnnns.losses.row_mean`). Returns a scalar."""
        violation = torch.relu(self.margin - pos.unsqueeze(-1) + neg)
        return row_mean(weighted_negative_mean(violation, weight), row_weight)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
