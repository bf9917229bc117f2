"""The InfoNCE (contrastive) loss over a positive and its sampled negatives."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnns.losses.weighting import importance_weighted_logits, row_mean


class InfoNCELoss(nn.Module):
    r"""The InfoNCE loss of `"Representation Learning with Contrastive Predictive Coding"
    <https://arxiv.org/abs/1807.03748>`_ (van den Oord et al., 2018): the positive must win a
    softmax against its negatives at temperature :math:`\tau`,

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_{b} \log
        \frac{e^{s^+_b / \tau}}{e^{s^+_b / \tau} + k \sum_{j} w_{bj} \, e^{s^-_{bj} / \tau}}

    With uniform weights :math:`w = 1/k` (the default) the denominator is the plain sum over the
    negatives. Sampler weights turn it into an importance-weighted estimate: the ``k`` negatives
    keep their total mass, each counting in proportion to its weight. Computed with
    :func:`torch.logsumexp`.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`1.0`)
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"InfoNCELoss: temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self, pos: Tensor, neg: Tensor, weight: Tensor | None = None, row_weight: Tensor | None = None
    ) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1), ``row_weight [B]``
        (each positive's weight in the batch's mean, :func:`~gnnns.losses.row_mean`). Returns a scalar."""
        pos_logit = pos / self.temperature
        neg_logits = importance_weighted_logits(neg / self.temperature, weight)
        logits = torch.cat((pos_logit.unsqueeze(-1), neg_logits), dim=-1)
        return row_mean(torch.logsumexp(logits, dim=-1) - pos_logit, row_weight)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
