"""Softmax cross-entropy over sampled negatives or over all entities (1vsAll, KvsAll)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.losses.weighting import importance_weighted_logits


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
      :math:`\tau = 1`).
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

    def forward(self, pos: Tensor, neg: Tensor, weight: Tensor | None = None) -> Tensor:
        """Args: ``pos [B]``, ``neg [B, k]``, ``weight [B, k]`` (rows sum to 1). Returns a scalar."""
        logits = torch.cat((pos.unsqueeze(-1), importance_weighted_logits(neg, weight)), dim=-1)
        target = torch.zeros(pos.shape, dtype=torch.long, device=pos.device)
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)

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
            return F.cross_entropy(scores, targets, label_smoothing=self.label_smoothing)
        if targets.shape != scores.shape:
            raise ValueError(
                f"SoftmaxCrossEntropyLoss.forward_all: targets must be indices [B] or multi-hot "
                f"{list(scores.shape)}, got {list(targets.shape)}"
            )
        targets = targets.to(scores.dtype)
        # A row without any true entity would divide by zero; it then keeps only the smoothing.
        total = targets.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
        return F.cross_entropy(scores, targets / total, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"
