"""An adversarial negative generator trained by policy gradient against the main model (KBGAN)."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from gnnns.data import KnowledgeGraph
from gnnns.data.triple_index import check_relation_ids
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.dynamic import gumbel_like, uniform_other_than
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true, require_scorer


class AdversarialSampler(NegativeSampler):
    r"""A small DistMult generator picks negatives among uniform candidates and learns from the
    main model's scores, which act as its reward.

    After `"KBGAN: Adversarial Learning for Knowledge Graph Embeddings"
    <https://arxiv.org/abs/1711.04071>`_ (Cai and Wang, NAACL 2018). For each positive,
    :math:`m` uniform candidates :math:`c_1, \dots, c_m` replace the side given by
    ``corrupt_head``; the generator, with entity and relation embeddings of its own, gives them

    .. math::
        p_j = \operatorname{softmax}_j \langle \mathbf{g}_{\mathrm{kept}}, \mathbf{g}_r,
        \mathbf{g}_{c_j} \rangle

    and :math:`k` of them are picked (without replacement when :math:`k \le m`, as the top
    :math:`k` of :math:`\log p_j + \mathrm{Gumbel}(0, 1)`; with replacement otherwise). The
    reward of a pick is the main model's score of it, :math:`\rho = f(\text{negative})` through
    ``scorer`` (no gradient): the generator is paid for negatives the model finds plausible. In
    training mode the generator then takes one REINFORCE step with its own optimizer,

    .. math::
        \mathcal{L}_G = -\frac{1}{Bk} \sum_{b, i} (\rho_{bi} - \bar{\rho}) \log p_{b, j_{bi}},
        \qquad \bar{\rho} \leftarrow \beta \bar{\rho} + (1 - \beta) \operatorname{mean}(\rho)

    where the baseline :math:`\bar{\rho}` (a buffer) is an exponential moving average of past
    rewards, started at the first batch's mean. The step runs with gradients enabled even when
    the sampler is called under :func:`torch.no_grad`; in ``eval()`` mode (or under
    :func:`torch.inference_mode`) nothing is updated. The generator's parameters, the baseline
    and the optimizer state (through :meth:`get_extra_state`) are all in ``state_dict()``.

    The optimizer is :class:`torch.optim.SparseAdam` fed sparse gradients of the rows a batch
    touches: Adam that updates only those rows, since a dense Adam step would rewrite all
    :math:`E \times d` entries at every call on a large graph. The main model's optimizer must
    not include the generator's parameters.

    A candidate equal to the true entity (or, with ``filtered=True``, one that makes a known
    training triple) gets probability 0; where a row has fewer than :math:`k` valid candidates,
    the missing picks are uniform draws other than the true entity, left out of the generator's
    loss and counted as ``fallback_rate``. Reciprocal positives :math:`(t, r + R, h)` use
    relation :math:`r` (DistMult is symmetric). ``epoch_stats()`` reports ``mean_reward`` and
    ``generator_loss`` (means over calls).

    Args:
        kg (KnowledgeGraph): the training graph.
        dim (int): generator embedding size. (default: 50)
        num_candidates (int, optional): :math:`m`, uniform candidates per positive; None: at least
            64 and twice the negatives asked for, so that the generator has a choice. (default: None)
        lr (float): generator learning rate. (default: 1e-3)
        baseline_decay (float): :math:`\beta \in [0, 1)`. (default: 0.99)
        filtered (bool): never pick candidates that make known training triples. (default: False)
        max_rounds (int): redraw rounds for fallback draws with ``filtered``. (default: 10)
    """

    def __init__(
        self,
        kg: KnowledgeGraph,
        dim: int = 50,
        num_candidates: int | None = None,
        lr: float = 1e-3,
        baseline_decay: float = 0.99,
        filtered: bool = False,
        max_rounds: int = 10,
    ):
        super().__init__(kg, filtered=filtered, max_rounds=max_rounds)
        if int(dim) < 1 or (num_candidates is not None and int(num_candidates) < 1):
            raise ValueError(f"AdversarialSampler: dim and num_candidates must be >= 1, got {dim}, {num_candidates}")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"AdversarialSampler: baseline_decay must be in [0, 1), got {baseline_decay}")
        self.dim, self.lr = int(dim), float(lr)
        self.num_candidates = int(num_candidates) if num_candidates is not None else None
        self.baseline_decay = float(baseline_decay)
        self.num_relations = kg.num_relations
        self.entity = nn.Parameter(torch.empty(self.num_entities, self.dim))
        self.relation = nn.Parameter(torch.empty(max(self.num_relations, 1), self.dim))
        self.register_buffer("baseline", torch.zeros(()))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.optimizer = torch.optim.SparseAdam([self.entity, self.relation], lr=self.lr)
        self.reset_parameters()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_candidates={self.num_candidates}, lr={self.lr}"

    def reset_parameters(self) -> None:
        """Fresh Xavier-uniform embeddings, zero baseline, empty optimizer state."""
        nn.init.xavier_uniform_(self.entity)
        nn.init.xavier_uniform_(self.relation)
        self.baseline.zero_()
        self.num_updates.zero_()
        self.optimizer = torch.optim.SparseAdam([self.entity, self.relation], lr=self.lr)

    def get_extra_state(self) -> Any:
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        # A deep copy: Optimizer.load_state_dict keeps the given tensors, which would otherwise be
        # shared with (and updated in place for) whoever else holds this state dict. It also
        # moves the moments to the parameters' device and dtype.
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))

    def _apply(self, fn, recurse: bool = True):
        # The optimizer sits outside the module tree: rebuild it over the (possibly new)
        # parameter objects and reload its state so that the moments follow .to(device).
        state = self.optimizer.state_dict()
        super()._apply(fn, recurse)
        self.optimizer = torch.optim.SparseAdam([self.entity, self.relation], lr=self.lr)
        self.optimizer.load_state_dict(state)
        return self

    def logits(self, positives: Tensor, candidates: Tensor, corrupt_head: Tensor) -> tuple[Tensor, _Rows]:
        """Generator scores of the corrupted triples, ``[B, 3]``, ``[B, m]`` -> ``[B, m]``.

        The scores are computed from copies of the embedding rows a batch touches, returned with
        them: the update turns their gradients into one sparse gradient with unique rows, which
        costs less than the duplicated rows of a sparse :func:`~torch.nn.functional.embedding`
        backward that SparseAdam would have to coalesce.
        """
        relation = positives[:, 1]
        check_relation_ids(relation, 2 * self.num_relations, "AdversarialSampler: ", " (reciprocal ids included)")
        relation = torch.where(relation >= self.num_relations, relation - self.num_relations, relation)
        kept, _ = kept_and_true(positives, corrupt_head)
        rows = _Rows.of(self.entity, torch.cat([kept.unsqueeze(1), candidates], dim=1))
        rel_rows = _Rows.of(self.relation, relation)
        query = rows.gather(rows.at[:, 0]) * rel_rows.gather(rel_rows.at)
        logits = torch.einsum("bd,bmd->bm", query, rows.gather(rows.at[:, 1:]))
        return logits, (rows, rel_rows)

    def probabilities(self, positives: Tensor, candidates: Tensor, corrupt_head: Tensor) -> Tensor:
        """The generator's distribution over given candidates, shape ``[B, m]`` (no gradient)."""
        with torch.no_grad():
            return self.logits(positives, candidates, corrupt_head)[0].softmax(dim=1)

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        scorer = require_scorer(scorer, self)
        _, true = kept_and_true(positives, corrupt_head)
        m = self.num_candidates or max(64, 2 * num_negatives)
        candidates = torch.randint(self.num_entities, (positives.size(0), m), device=positives.device)
        invalid = candidates == true.unsqueeze(1)
        if self.filtered:
            invalid |= self.index.contains_corrupted(positives, candidates, corrupt_head)
        learn = self.training and not torch.is_inference_mode_enabled()
        with torch.set_grad_enabled(learn):
            logits, rows = self.logits(positives, candidates, corrupt_head)
            # The most negative finite value rather than -inf: a row with no valid candidate then
            # stays a (uniform) distribution instead of NaN.
            log_p = logits.masked_fill(invalid, torch.finfo(logits.dtype).min).log_softmax(dim=1)
        picks = self.pick(log_p.detach(), num_negatives)
        entities = candidates.gather(1, picks)
        missing = invalid.gather(1, picks)
        entities = torch.where(missing, self.draw(positives, num_negatives, corrupt_head), entities)
        if self.filtered and bool(missing.any()):
            entities = self.redraw_known(positives, entities, corrupt_head)
        with torch.no_grad():
            reward = scorer(positives, entities, corrupt_head).float()
        self.count(reward=reward.mean(), calls=1, fallback=missing.sum(), picked=missing.numel())
        if learn:
            self.update(log_p, picks, reward, ~missing, rows)
        return Negatives(entities, corrupt_head)

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        """Uniform entities other than the true one, shape ``[B, k]`` (redraws with ``filtered``)."""
        _, true = kept_and_true(positives, corrupt_head)
        return uniform_other_than(true, num_negatives, self.num_entities)

    def pick(self, log_p: Tensor, num: int) -> Tensor:
        """Column indices of the picks, ``[B, m] -> [B, num]``."""
        if num <= log_p.size(1):
            return (log_p + gumbel_like(log_p)).topk(num, dim=1).indices
        return torch.multinomial(log_p.exp(), num, replacement=True)

    def update(self, log_p: Tensor, picks: Tensor, reward: Tensor, valid: Tensor, rows: tuple[_Rows, _Rows]) -> None:
        """One policy-gradient step on the generator.

        Args:
            log_p (Tensor): log-probabilities of all candidates, with gradient, shape ``[B, m]``.
            picks (Tensor): picked columns, shape ``[B, k]``.
            reward (Tensor): the main model's scores of the picks, shape ``[B, k]``.
            valid (BoolTensor): picks that were generator choices (not fallbacks), ``[B, k]``.
            rows (tuple): the entity and relation rows :meth:`logits` used.
        """
        mean = reward[valid].mean() if bool(valid.any()) else reward.mean()
        if int(self.num_updates) == 0:
            self.baseline.copy_(mean)
        with torch.enable_grad():
            # where, not a product: a fallback pick may have log p = -inf, and 0 * -inf is NaN.
            picked = log_p.gather(1, picks)
            loss = -torch.where(valid, (reward - self.baseline) * picked, torch.zeros_like(picked)).mean()
            grads = torch.autograd.grad(loss, [rows[0].values, rows[1].values])
        self.entity.grad = rows[0].sparse_grad(grads[0], self.entity)
        self.relation.grad = rows[1].sparse_grad(grads[1], self.relation)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.baseline.mul_(self.baseline_decay).add_((1.0 - self.baseline_decay) * mean)
        self.num_updates += 1
        self.count(generator_loss=loss.detach(), updates=1)

    def epoch_stats(self) -> dict[str, float]:
        """``mean_reward``, ``generator_loss``, ``fallback_rate``, ``false_negatives_left``; then reset."""
        stats = super().epoch_stats()
        out = {
            "mean_reward": stats.pop("reward", 0.0) / max(stats.pop("calls", 0.0), 1.0),
            "generator_loss": stats.pop("generator_loss", 0.0) / max(stats.pop("updates", 0.0), 1.0),
            "fallback_rate": stats.pop("fallback", 0.0) / max(stats.pop("picked", 0.0), 1.0),
        }
        out.update(stats)
        return out


class _Rows(NamedTuple):
    """The distinct rows of a table that a batch uses: ``ids [U]``, a copy ``values [U, d]`` that
    gradients flow into, and ``at``, the position in ``ids`` of each looked-up id."""

    ids: Tensor
    values: Tensor
    at: Tensor

    @classmethod
    def of(cls, table: Tensor, index: Tensor) -> _Rows:
        ids, at = torch.unique(index, return_inverse=True)
        return cls(ids, table.detach()[ids].requires_grad_(torch.is_grad_enabled()), at)

    def gather(self, at: Tensor) -> Tensor:
        """Rows at positions ``at [...]`` -> ``[..., d]``."""
        # index_select: a plain gather forward and an index_add backward, both cheaper on CPU
        # than advanced indexing's index_put.
        return self.values.index_select(0, at.flatten()).view(*at.shape, -1)

    def sparse_grad(self, grad: Tensor, table: Tensor) -> Tensor:
        """``grad [U, d]`` as a gradient of the whole table: sorted unique ids are coalesced already."""
        return torch.sparse_coo_tensor(
            self.ids.unsqueeze(0), grad, table.shape, is_coalesced=True, check_invariants=False
        )
