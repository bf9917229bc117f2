"""A false-negative-aware InfoNCE: debiased contrastive estimation with hardness weighting."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gnnns.losses.weighting import importance_weighted_logits, row_mean, self_adversarial_weights


class DebiasedInfoNCELoss(nn.Module):
    r"""False-negative-aware contrastive loss, after `"HaSa: Hardness and Structure-Aware
    Contrastive Knowledge Graph Embedding" <https://arxiv.org/abs/2305.10563>`_ (Zhang et al.,
    WWW 2024): an InfoNCE variant that corrects for negatives that are likely true triples, usable
    with any sampler.

    A sampled negative is a true (but unknown) triple with probability :math:`\tau^+`, the class
    prior. The debiased estimator of `"Debiased Contrastive Learning"
    <https://arxiv.org/abs/2007.00224>`_ (Chuang et al., NeurIPS 2020) removes that share of
    positives from the negatives' mass, and the hardness weights of `"Contrastive Learning with
    Hard Negative Samples" <https://arxiv.org/abs/2010.04592>`_ (Robinson et al., ICLR 2021), as
    HaSa applies them to knowledge-graph embedding, concentrate it on high-scoring negatives.
    With positive score :math:`s^+`, negative scores :math:`s_j`, temperature :math:`\tau`,
    hardness :math:`\beta` and sampler weights :math:`w_j` (uniform :math:`1/k` if absent):

    .. math::
        q_j = \frac{w_j e^{\beta s_j}}{\sum_{j'} w_{j'} e^{\beta s_{j'}}}, \qquad
        N = \max\left( \frac{k \sum_j q_j e^{s_j / \tau} - k \tau^+ e^{s^+ / \tau}}{1 - \tau^+},
        \; k \, e^{\min_j s_j / \tau} \right),

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_b \log \frac{e^{s^+_b / \tau}}{e^{s^+_b / \tau} + N_b}

    where the minimum runs over negatives with :math:`w_j > 0` (weight 0 means absent). The
    weights :math:`q` are detached, like :func:`~gnnns.losses.self_adversarial_weights`: they
    describe which negatives are drawn, not something to optimise.

    *The floor.* Subtracting the estimated false negatives can leave nothing (or less than
    nothing) when the positive outscores its negatives. Chuang et al. clip at
    :math:`k e^{-1/\tau}`, the smallest possible term for cosine similarities; knowledge-graph
    scores are unbounded and shift with the decoder (TransE and RotatE scores are negative
    distances), so any fixed constant would be arbitrary. We clip at :math:`k e^{\min_j s_j/\tau}`
    instead: the true negatives are among the observed ones, so the mean of their terms cannot
    fall below the smallest observed term. This floor moves with the scores, which keeps the
    loss invariant to adding a constant to every score, and, like Chuang's constant, it is
    detached: when it binds only the positive receives a gradient.

    With :math:`\tau^+ = 0` the floor can never bind (a weighted mean is at least the minimum),
    and the loss is exactly :class:`~gnnns.losses.InfoNCELoss` with weights :math:`q`; with
    :math:`\beta = 0` as well, exactly :class:`~gnnns.losses.InfoNCELoss`. Everything is
    computed in log space: :math:`\log N` subtracts the two terms as
    :math:`a + \log(1 - e^{b - a})` from their logsumexps :math:`a > b`.

    Args:
        temperature (float, optional): :math:`\tau > 0`. (default: :obj:`1.0`)
        prior (float, optional): :math:`\tau^+ \in [0, 1)`, the probability that a sampled
            negative is in fact a true triple. (default: :obj:`0.1`)
        hardness (float, optional): :math:`\beta \ge 0`; :obj:`0` keeps the sampler's weights.
            (default: :obj:`0.0`)
    """

    def __init__(self, temperature: float = 1.0, prior: float = 0.1, hardness: float = 0.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"DebiasedInfoNCELoss: temperature must be > 0, got {temperature}")
        if not 0.0 <= prior < 1.0:
            raise ValueError(f"DebiasedInfoNCELoss: prior must lie in [0, 1), got {prior}")
        if hardness < 0:
            raise ValueError(f"DebiasedInfoNCELoss: hardness must be >= 0, got {hardness}")
        self.temperature = temperature
        self.prior = prior
        self.hardness = hardness

    def forward(
        self, pos: Tensor, neg: Tensor, weight: Tensor | None = None, row_weight: Tensor | None = None
    ) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1), ``row_weight [B]``
        (each positive's weight in the batch's mean, :func:`~gnnns.losses.row_mean`). Returns a scalar."""
        q = self_adversarial_weights(neg, weight, self.hardness)
        pos_logit = pos / self.temperature
        neg_logits = importance_weighted_logits(neg / self.temperature, q)
        if self.prior == 0.0:
            logits = torch.cat((pos_logit.unsqueeze(-1), neg_logits), dim=-1)
            return row_mean(torch.logsumexp(logits, dim=-1) - pos_logit, row_weight)
        log_n = self._log_true_negative_mass(pos_logit, neg, neg_logits, q)
        return row_mean(torch.logaddexp(pos_logit, log_n) - pos_logit, row_weight)

    def _log_true_negative_mass(self, pos_logit: Tensor, neg: Tensor, neg_logits: Tensor, q: Tensor | None) -> Tensor:
        r""":math:`\log N`, shape ``[B]``."""
        k = neg.size(-1)
        observed = torch.logsumexp(neg_logits, dim=-1)  # log k sum_j q_j e^{s_j / tau}
        false_mass = pos_logit + math.log(k * self.prior)  # log k tau+ e^{s+ / tau}
        gap = false_mass - observed
        positive = gap < 0
        # Rows whose difference is not positive take the floor; a harmless stand-in for their gap
        # keeps the unused branch (and so its gradient) finite.
        safe_gap = torch.where(positive, gap, torch.full_like(gap, -1.0))
        debiased = observed + _log1mexp(safe_gap) - math.log1p(-self.prior)
        debiased = torch.where(positive, debiased, torch.full_like(debiased, -math.inf))
        present = neg.new_ones(neg.shape, dtype=torch.bool) if q is None else q > 0
        lowest = (neg.detach() / self.temperature).masked_fill(~present, math.inf).amin(dim=-1)
        return torch.maximum(debiased, lowest + math.log(k))

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, prior={self.prior}, hardness={self.hardness}"


def _log1mexp(x: Tensor) -> Tensor:
    r""":math:`\log(1 - e^x)` for :math:`x < 0`, accurate at both ends (Maechler, "Accurately Computing
    log(1 - exp(-|a|))", 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))
