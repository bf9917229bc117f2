"""Binary cross-entropy over sampled negatives or over all entities (1vsAll, KvsAll)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.losses.weighting import row_mean, weighted_negative_mean


class BCELoss(nn.Module):
    r"""Binary cross-entropy with logits, the loss of KvsAll training in `"Convolutional 2D
    Knowledge Graph Embeddings" <https://arxiv.org/abs/1707.01476>`_ (Dettmers et al., 2018):
    every candidate is classified true or false on its own,

    .. math::
        \ell(s, y) = -y \log \sigma(s) - (1 - y) \log \sigma(-s),
        \qquad \tilde{y} = (1 - \varepsilon) \, y + \varepsilon / C

    with label smoothing :math:`\varepsilon` over :math:`C` candidates.

    * :meth:`forward` (negative sampling): :math:`C = k + 1` and
      :math:`\mathcal{L} = \frac{1}{B} \sum_b \big[\ell(s^+_b, \tilde{y}^+)
      + \sum_k w_{bk} \, \ell(s^-_{bk}, \tilde{y}^-)\big]` with :math:`\tilde{y}^+ = 1 -
      \varepsilon + \varepsilon / C`, :math:`\tilde{y}^- = \varepsilon / C`: the positive and its
      negatives carry equal total weight, :math:`w = 1/k` unless the sampler gives weights.
    * :meth:`forward_all`: :math:`C = E`, the mean of :math:`\ell` over all ``[B, E]`` entries
      against the multi-hot target (one-hot for a LongTensor of true indices).

    ConvE's and CompGCN's code add :math:`1 / C` rather than :math:`\varepsilon / C` to the scaled
    targets, :math:`\tilde{y} = (1 - \varepsilon) \, y + 1 / C` (when :math:`\varepsilon > 0`);
    ``smoothing="conve"`` reproduces that, for exact reproductions of those papers.

    Args:
        label_smoothing (float, optional): :math:`\varepsilon \in [0, 1)`. (default: :obj:`0.0`)
        smoothing (str, optional): ``"mix"`` (the mixture above) or ``"conve"`` (add :math:`1 / C`
            as ConvE's and CompGCN's code do). (default: :obj:`"mix"`)
    """

    def __init__(self, label_smoothing: float = 0.0, smoothing: str = "mix") -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"BCELoss: label_smoothing must be in [0, 1), got {label_smoothing}")
        if smoothing not in ("mix", "conve"):
            raise ValueError(f"BCELoss: smoothing must be 'mix' or 'conve', got {smoothing!r}")
        self.label_smoothing = label_smoothing
        self.smoothing = smoothing

    def _floor(self, candidates: int) -> float:
        """The smoothed target of a false candidate among ``candidates``."""
        if self.smoothing == "conve" and self.label_smoothing > 0:
            return 1.0 / candidates
        return self.label_smoothing / candidates

    def forward(
        self, pos: Tensor, neg: Tensor, weight: Tensor | None = None, row_weight: Tensor | None = None
    ) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1), ``row_weight [B]``
        (each positive's weight in the batch's mean, :func:`~gnnns.losses.row_mean`). Returns a scalar."""
        floor = self._floor(neg.size(-1) + 1)
        pos_loss = F.binary_cross_entropy_with_logits(
            pos, pos.new_full(pos.shape, 1.0 - self.label_smoothing + floor), reduction="none"
        )
        neg_loss = F.binary_cross_entropy_with_logits(neg, neg.new_full(neg.shape, floor), reduction="none")
        return row_mean(pos_loss + weighted_negative_mean(neg_loss, weight), row_weight)

    def forward_all(self, scores: Tensor, targets: Tensor) -> Tensor:
        """1-N form.

        Args:
            scores (Tensor): scores of every entity, shape ``[B, E]``.
            targets (Tensor): true indices, LongTensor ``[B]`` (1vsAll), or a multi-hot float or
                bool tensor ``[B, E]`` (KvsAll).

        Returns:
            A scalar.
        """
        if targets.dim() != 1 and targets.shape != scores.shape:
            raise ValueError(
                f"BCELoss.forward_all: targets must be indices [B] or multi-hot {list(scores.shape)}, "
                f"got {list(targets.shape)}"
            )
        # Scores of a lower precision (bfloat16 autocast products) are taken in float32.
        scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
        if targets.dim() != 1:
            targets = targets.to(scores.dtype)
        return _OneToNBCE.apply(scores, targets, 1.0 - self.label_smoothing, self._floor(scores.size(-1)))

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, smoothing={self.smoothing!r}"


class _OneToNBCE(torch.autograd.Function):
    r"""The mean of :math:`\ell(s, \tilde{y}) = \operatorname{softplus}(s) - \tilde{y} s` over
    ``[B, E]`` scores, for :math:`\tilde{y} = a \, y + c` (:math:`a = 1 - \varepsilon`, :math:`c`
    the floor), without building :math:`\tilde{y}`: :math:`\sum \tilde{y} s = c \sum s + a
    \sum_{y = 1} s`. The gradient :math:`(\sigma(s) - \tilde{y}) / (B E)` is written in one buffer.

    ``F.binary_cross_entropy_with_logits`` on a materialised ``[B, E]`` target makes several
    passes over the matrix forward and backward, two to three times the score GEMM of a CPU
    1vsAll step; this makes about three passes in all (``benchmarks/one_to_n_loss.py``: 3.7×
    faster). ``target``: true indices ``[B]`` or a float multi-hot ``[B, E]``; it gets no gradient.
    """

    @staticmethod
    def forward(ctx, scores: Tensor, target: Tensor, positive: float, floor: float) -> Tensor:
        flat = scores.reshape(-1)
        # The scores at the true entries: gathered for indices, a dot product for a multi-hot.
        true = scores.gather(1, target.unsqueeze(1)).sum() if target.dim() == 1 else flat @ target.reshape(-1)
        total = F.softplus(scores).sum() - positive * true
        if floor:
            total = total - floor * flat.sum()
        ctx.save_for_backward(scores, target)
        ctx.positive, ctx.floor = positive, floor
        return total / scores.numel()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None, None, None]:
        scores, target = ctx.saved_tensors
        scale = grad_output / scores.numel()
        grad = torch.sigmoid(scores)
        if ctx.floor:
            grad.sub_(ctx.floor)
        if target.dim() == 1:
            grad.scatter_add_(1, target.unsqueeze(1), grad.new_full((len(target), 1), -ctx.positive))
        else:
            grad.add_(target, alpha=-ctx.positive)
        return grad.mul_(scale), None, None, None
