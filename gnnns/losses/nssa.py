"""RotatE's negative-sampling loss with self-adversarial weighting."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.losses.weighting import row_mean, self_adversarial_weights, weighted_negative_mean


class NSSALoss(nn.Module):
    r"""The negative-sampling loss with self-adversarial sampling (NSSA) of `"RotatE: Knowledge
    Graph Embedding by Relational Rotation in Complex Space" <https://arxiv.org/abs/1902.10197>`_
    (Sun et al., 2019, eq. 5 and 6). With scores :math:`s = -d` (a distance decoder's score is
    minus its distance),

    .. math::
        \mathcal{L} = -\log \sigma(\gamma + s^+)
        - \sum_k p_k \log \sigma\left(-(\gamma + s^-_k)\right),
        \qquad p_k = \frac{w_k \exp(\alpha s^-_k)}{\sum_j w_j \exp(\alpha s^-_j)}

    where the weights :math:`p` are detached (they play the role of a sampling distribution),
    uniform when :math:`\alpha = 0`, and :math:`w` are the sampler's weights (uniform when
    absent). As in the official implementation the two terms are averaged over the batch
    separately and then halved: :math:`(\overline{\text{pos}} + \overline{\text{neg}}) / 2`;
    with ``row_weight`` :math:`u` both averages are weighted, :math:`\sum_b u_b x_b / \sum_b u_b`
    (the official code's default "subsampling weights").

    Args:
        margin (float, optional): :math:`\gamma`. (default: :obj:`9.0`)
        adversarial_temperature (float, optional): :math:`\alpha`; :obj:`0` disables
            self-adversarial weighting. (default: :obj:`0.0`)
    """

    def __init__(self, margin: float = 9.0, adversarial_temperature: float = 0.0) -> None:
        super().__init__()
        if adversarial_temperature < 0:
            raise ValueError(f"NSSALoss: adversarial_temperature must be >= 0, got {adversarial_temperature}")
        self.margin = margin
        self.adversarial_temperature = adversarial_temperature

    def forward(
        self, pos: Tensor, neg: Tensor, weight: Tensor | None = None, row_weight: Tensor | None = None
    ) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1), ``row_weight [B]``
        (each positive's weight in the batch's mean, :func:`~gnnns.losses.row_mean`). Returns a scalar."""
        pos_loss = -F.logsigmoid(self.margin + pos)
        neg_loss = -F.logsigmoid(-(self.margin + neg))
        p = self_adversarial_weights(neg, weight, self.adversarial_temperature)
        # (mean pos + mean neg) / 2 is the mean of (pos + neg) / 2, weighted alike with row weights.
        return row_mean((pos_loss + weighted_negative_mean(neg_loss, p)) / 2, row_weight)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, adversarial_temperature={self.adversarial_temperature}"
