"""How the ``k`` negatives of a positive are weighted against each other."""

from __future__ import annotations

import torch
from torch import Tensor


def self_adversarial_weights(
    neg: Tensor,
    weight: Tensor | None = None,
    adversarial_temperature: float = 0.0,
) -> Tensor | None:
    r"""Self-adversarial weights of negatives, from `"RotatE: Knowledge Graph Embedding by
    Relational Rotation in Complex Space" <https://arxiv.org/abs/1902.10197>`_ (Sun et al., 2019,
    eq. 5):

    .. math::
        p_k = \frac{w_k \exp(\alpha s_k)}{\sum_j w_j \exp(\alpha s_j)}

    with :math:`w` the sampler's weights (uniform when absent). The weights are *detached*: they
    act as the sampling distribution of the negatives, not as something to optimise.

    Args:
        neg (Tensor): negative scores, shape ``[B, k]``.
        weight (Tensor, optional): sampler weights, shape ``[B, k]``, rows summing to 1.
            (default: :obj:`None`)
        adversarial_temperature (float, optional): :math:`\alpha`; :obj:`0` disables the
            weighting and returns :obj:`weight` unchanged. (default: :obj:`0.0`)

    Returns:
        Weights of shape ``[B, k]`` with rows summing to 1, or :obj:`None` for uniform weights.
    """
    if adversarial_temperature <= 0.0:
        return weight
    logits = adversarial_temperature * neg.detach()
    if weight is not None:
        # In log space the product with the sampler weights is renormalised by the softmax itself.
        logits = logits + weight.detach().log()
    return torch.softmax(logits, dim=-1)


def weighted_negative_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    r"""Per-positive average over its negatives, :math:`\sum_k w_k v_k`, shape
    ``[B, k] -> [B]``; the plain mean over ``k`` when :obj:`weight` is :obj:`None`."""
    if weight is None:
        return values.mean(dim=-1)
    return (weight * values).sum(dim=-1)


def row_mean(values: Tensor, row_weight: Tensor | None) -> Tensor:
    r"""The batch's loss from its positives' terms ``[B]``: the mean, or with weights
    :math:`u_b` (RotatE's subsampling weights, :class:`~gnnns.training.SubsamplingWeights`) the
    weighted mean :math:`\sum_b u_b v_b / \sum_b u_b`. The weights are data, not parameters:
    no gradient flows into them."""
    if row_weight is None:
        return values.mean()
    row_weight = row_weight.detach().to(values.dtype)
    return (row_weight * values).sum() / row_weight.sum()


def importance_weighted_logits(neg_logits: Tensor, weight: Tensor | None) -> Tensor:
    r"""Negative logits ``[B, k]`` shifted by :math:`\log(k w_k)`, so that a sum of exponentials
    over them becomes :math:`k \sum_k w_k e^{s_k}`: the ``k`` negatives keep their total mass
    while each counts in proportion to its weight (with uniform weights :math:`1/k` nothing
    changes). Unchanged when :obj:`weight` is :obj:`None`."""
    if weight is None:
        return neg_logits
    return neg_logits + (neg_logits.size(-1) * weight).log()
