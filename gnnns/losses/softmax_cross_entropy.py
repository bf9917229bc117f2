"""Softmax cross-entropy over sampled negatives or over all entities (1vsAll, KvsAll)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.losses.weighting import importance_weighted_logits, row_mean


class SoftmaxCrossEntropyLoss(nn.Module):
    r"""Softmax cross-entropy, the loss of 1vsAll training in `"Canonical Tensor Decomposition
    for Knowledge Base Completion" <https://arxiv.org/abs/1806.07297>`_ (Lacroix et al., 2018) and
    of KvsAll training with a normalised target in `"You CAN Teach an Old Dog New Tricks! On
    Training Knowledge Graph Embeddings" <https://openreview.net/forum?id=BkxSmlBFvr>`_
    (Ruffinelli et al., 2020). For a target distribution :math:`y` over the candidates,

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_{b} \sum_{e} \tilde{y}_{be} \log \operatorname{softmax}(s_b)_e,
        \qquad \tilde{y} = (1 - \varepsilon) \, y + \varepsilon / C

    where :math:`C` is the number of candidates and :math:`\varepsilon` the label smoothing.

    * :meth:`forward` (negative sampling): the candidates are ``[pos, neg_1..k]`` with the
      positive as target (:math:`C = k + 1`); sampler weights enter as the importance
      correction :math:`\log(k w_k)` added to the negative logits, as in
      :class:`~gnnns.losses.InfoNCELoss` (with :math:`\varepsilon = 0` the two losses agree at
      :math:`\tau = 1`). A negative of weight 0 (one a :class:`~gnnns.sampling.Filtered`
      sampler left known) is absent: :math:`C` counts only the others.
    * :meth:`forward_all`: all :math:`C = E` entities; a LongTensor of true indices is one-hot
      (1vsAll), a multi-hot ``[B, E]`` target is normalised per row (KvsAll).

    Args:
        label_smoothing (float, optional): :math:`\varepsilon \in [0, 1)`. (default: :obj:`0.0`)
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"SoftmaxCrossEntropyLoss: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(
        self, pos: Tensor, neg: Tensor, weight: Tensor | None = None, row_weight: Tensor | None = None
    ) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1), ``row_weight [B]``
        (each positive's weight in the batch's mean, :func:`~gnnns.losses.row_mean`). Returns a scalar."""
        logits = torch.cat((pos.unsqueeze(-1), importance_weighted_logits(neg, weight)), dim=-1)
        if weight is None or self.label_smoothing == 0.0:
            target = torch.zeros(pos.shape, dtype=torch.long, device=pos.device)
            rows = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing, reduction="none")
            return row_mean(rows, row_weight)
        # A negative of weight 0 (one a filter left known) has logit -inf: it is absent, and the
        # smoothing spreads over the C present candidates only (else its -log p = inf enters the mean).
        log_p = logits.log_softmax(dim=-1)
        present = torch.isfinite(logits)
        smooth = log_p.masked_fill(~present, 0.0).sum(dim=-1) / present.sum(dim=-1)
        rows = -(1.0 - self.label_smoothing) * log_p[:, 0] - self.label_smoothing * smooth
        return row_mean(rows, row_weight)

    def forward_all(self, scores: Tensor, targets: Tensor) -> Tensor:
        """1-N form.

        Args:
            scores (Tensor): scores of every entity, shape ``[B, E]``.
            targets (Tensor): true indices, LongTensor ``[B]`` (1vsAll), or a multi-hot float or
                bool tensor ``[B, E]`` (KvsAll).

        Returns:
            A scalar.
        """
        if targets.dim() == 1:
            return _OneToNCrossEntropy.apply(scores, targets, self.label_smoothing)
        if targets.shape != scores.shape:
            raise ValueError(
                f"SoftmaxCrossEntropyLoss.forward_all: targets must be indices [B] or multi-hot "
                f"{list(scores.shape)}, got {list(targets.shape)}"
            )
        targets = targets.to(_loss_dtype(scores))
        # A row without any true entity would divide by zero; it then keeps only the smoothing.
        total = targets.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(targets.dtype).tiny)
        return _OneToNCrossEntropy.apply(scores, targets / total, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class _OneToNCrossEntropy(torch.autograd.Function):
    r""":math:`-\frac{1}{B} \sum_{b, e} \tilde{y}_{be} \log \operatorname{softmax}(s_b)_e` for
    ``[B, E]`` scores, with the gradient
    :math:`(\operatorname{softmax}(s_b) \sum_e \tilde{y}_{be} - \tilde{y}_b) / B` (the sum is 1 for
    any row with a target) written in one buffer.

    ``F.cross_entropy`` computes the same value; on a ``[B, E]`` score matrix its backward also
    fills a zero ``[B, E]`` tensor for the NLL gradient, another for the smoothing term, and adds
    them before the log-softmax backward. Here the saved log-probabilities become the gradient in
    place (:math:`\exp`, scale, subtract the target), which halves the loss's time in a CPU
    1vsAll step. Because the buffer is consumed, a second backward through the same graph
    raises instead of returning a wrong gradient.

    ``target`` is a LongTensor ``[B]`` of true indices or a ``[B, E]`` distribution (rows
    summing to one, or zero: such a row keeps only the smoothing term). It gets no gradient.

    Scores of a lower precision (bfloat16 from an autocast matrix product) are read by the
    log-softmax itself and everything after is float32: the loss, and the gradient until its
    final rounding to the scores' dtype.
    """

    @staticmethod
    def forward(ctx, scores: Tensor, target: Tensor, label_smoothing: float) -> Tensor:
        rows, candidates = scores.shape
        ctx.scores_dtype = scores.dtype
        log_p = torch.log_softmax(scores, dim=-1, dtype=_loss_dtype(scores))
        if target.dim() == 1:
            true = log_p.gather(1, target.unsqueeze(1)).sum()
            mass = None
        else:
            true = log_p.reshape(-1) @ target.reshape(-1)  # no [B, E] product tensor
            # The gradient is softmax(s) * sum(y~) - y~; a row's sum(y~) is 1 unless it has no target.
            mass = (1.0 - label_smoothing) * target.sum(dim=-1, keepdim=True) + label_smoothing
        loss = -(1.0 - label_smoothing) * true
        if label_smoothing > 0:
            loss = loss - label_smoothing / candidates * log_p.sum()
        ctx.save_for_backward(log_p, target, mass)
        ctx.label_smoothing = label_smoothing
        ctx.consumed = False
        return loss / rows

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None, None]:
        if ctx.consumed:
            raise RuntimeError(
                "SoftmaxCrossEntropyLoss.forward_all: backward was already run through this graph "
                "(its buffer became the gradient); compute the loss again"
            )
        ctx.consumed = True
        log_p, target, mass = ctx.saved_tensors
        rows, candidates = log_p.shape
        eps = ctx.label_smoothing
        scale = grad_output / rows
        grad = log_p.exp_().mul_(scale if mass is None else mass * scale)
        if eps > 0:
            grad.sub_(scale * (eps / candidates))
        if target.dim() == 1:
            index = target.unsqueeze(1)
            grad.scatter_add_(1, index, (-(1.0 - eps) * scale).expand(rows, 1).to(grad.dtype))
        else:
            grad.addcmul_(target, scale, value=-(1.0 - eps))
        return grad.to(ctx.scores_dtype), None, None


def _loss_dtype(scores: Tensor) -> torch.dtype:
    """float32 for scores of a lower precision (bfloat16, float16); their own dtype otherwise."""
    return torch.promote_types(scores.dtype, torch.float32)
