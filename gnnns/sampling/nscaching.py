"""NSCaching: negatives drawn from per-query caches of hard entities, refreshed by the model."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.data.triple_index import check_relation_ids
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.dynamic import gumbel_like
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true, require_scorer

UPDATES = ("sample", "top")


class NSCachingSampler(NegativeSampler):
    r"""Negatives drawn uniformly from a small cache of hard entities kept for each query.

    From `"NSCaching: Simple and Efficient Negative Sampling for Knowledge Graph Embedding"
    <https://arxiv.org/abs/1812.06410>`_ (Zhang, Yao, Shao and Chen, ICDE 2019). Every
    ``(head, relation)`` pair of the training triples owns a cache :math:`\mathcal{T}_{h,r}` of
    :math:`N_1` candidate tails and every ``(relation, tail)`` pair a cache
    :math:`\mathcal{H}_{r,t}` of :math:`N_1` candidate heads. A positive whose tail is replaced
    gets :math:`k` negatives drawn uniformly (with replacement) from :math:`\mathcal{T}_{h,r}`,
    one whose head is replaced from :math:`\mathcal{H}_{r,t}`. Then, in training mode, the cache
    just used is refreshed: its entries and :math:`N_2` fresh uniform entities are scored by the
    current model, and :math:`N_1` of the :math:`N_1 + N_2` are kept, without replacement, with

    .. math::
        p(e) = \frac{\exp f(e)}{\sum_{e' \in \mathcal{T}_{h,r} \cup \mathcal{N}} \exp f(e')}

    for :math:`\mathcal{N}` the fresh entities and :math:`f` the model's score of the corrupted
    triple (``update="sample"``, the paper's importance sampling, drawn as the top :math:`N_1` of
    :math:`f(e) + \mathrm{Gumbel}(0, 1)`), or the :math:`N_1` best (``update="top"``). Caches thus
    track the entities the model currently scores high at the cost of scoring
    :math:`N_1 + N_2` candidates per distinct query of a batch, without gradient. Only the cache
    that served a positive is refreshed (the paper refreshes the head and the tail cache of every
    positive), which halves that cost; every cache is refreshed whenever it is used.

    The paper uses :math:`N_1 = N_2 = 50`. The defaults :math:`N_1 = N_2 = 16` keep the added
    cost of a training step moderate: 1.2 to 1.5 times the step with uniform negatives for
    ComplEx (:math:`d = 64`, batch 1024, :math:`k = 32`) on a busy CPU, against 1.7 times at
    :math:`N_1 = N_2 = 32`. Raise them for harder, more varied caches.

    Details:

    * Pairs are found by binary search (:func:`torch.searchsorted`) in the sorted ``int64`` keys
      :math:`(s E + \mathrm{kept}) R + r`, :math:`s = 1` for head caches. A positive whose pair
      has no training triple (another graph, an unseen entity) gets uniform negatives and no
      cache; ``epoch_stats()`` reports the share as ``fallback_rate``.
    * Reciprocal positives :math:`(t, r + R, h)` use the caches of :math:`(h, r, t)`; relation
      ids of :math:`2R` and more are an error.
    * A query that appears several times in a batch is refreshed once, with its last positive,
      so the write-back is well defined.
    * A refresh keeps the :math:`N_1` best-scored valid candidates: never the true entity of
      that positive nor two copies of one entity, and with ``filtered=True`` no entity that makes
      a known training triple. When fewer than :math:`N_1` candidates are valid (for instance
      with ``num_fresh=0``, which otherwise only reorders the caches) the gaps are filled with
      uniform entities other than the true one, which may repeat or be known triples. Without
      ``filtered`` a cache may hold other known positives of its query, which score high. With
      ``filtered=True`` sampled negatives that are known triples are also redrawn uniformly.
    * Caches are buffers (``int32`` while :math:`E < 2^{31}`, halving their memory), initialised
      uniformly at random, so checkpoints carry them. They take :math:`P (4 N_1 + 8)` bytes for
      :math:`P` distinct pairs (:attr:`cache_bytes`, also in ``epoch_stats()``).
    * In ``eval()`` mode negatives come from the caches, which stay unchanged.

    Args:
        kg (KnowledgeGraph): the training graph.
        cache_size (int): :math:`N_1`, entities per cache. (default: 16)
        num_fresh (int): :math:`N_2`, uniform candidates scored with a cache at each refresh.
            (default: 16)
        update (str): ``"sample"`` (importance sampling) or ``"top"``. (default: ``"sample"``)
        filtered (bool): keep known training triples out of caches and negatives.
            (default: False)
        max_rounds (int): redraw rounds for ``filtered``. (default: 10)
    """

    def __init__(
        self,
        kg: KnowledgeGraph,
        cache_size: int = 16,
        num_fresh: int = 16,
        update: str = "sample",
        filtered: bool = False,
        max_rounds: int = 10,
    ):
        super().__init__(kg, filtered=filtered, max_rounds=max_rounds)
        if int(cache_size) < 1 or int(num_fresh) < 0:
            raise ValueError(
                f"NSCachingSampler: need cache_size >= 1 and num_fresh >= 0, got {cache_size} and {num_fresh}"
            )
        if update not in UPDATES:
            raise ValueError(f"NSCachingSampler: unknown update {update!r}; expected one of {UPDATES}")
        self.cache_size, self.num_fresh, self.update = int(cache_size), int(num_fresh), update
        self.num_relations = kg.num_relations
        h, r, t = kg.train.unbind(1)
        tail_pairs, head_pairs = self._encode(torch.zeros_like(h), h, r), self._encode(torch.ones_like(t), t, r)
        keys = torch.unique(torch.cat([tail_pairs, head_pairs]))
        dtype = torch.int32 if self.num_entities <= torch.iinfo(torch.int32).max else torch.int64
        self.register_buffer("pair_keys", keys)
        self.register_buffer("cache", torch.randint(self.num_entities, (keys.numel(), self.cache_size), dtype=dtype))

    def extra_repr(self) -> str:
        return (
            f"pairs={self.pair_keys.numel()}, cache_size={self.cache_size}, num_fresh={self.num_fresh}, "
            f"update={self.update!r}"
        )

    @property
    def cache_bytes(self) -> int:
        """Memory of the caches and of their pair keys, in bytes."""
        return self.cache.numel() * self.cache.element_size() + self.pair_keys.numel() * self.pair_keys.element_size()

    def _encode(self, head_side: Tensor, kept: Tensor, relation: Tensor) -> Tensor:
        return (head_side.long() * self.num_entities + kept) * self.num_relations + relation

    def pair_keys_of(self, positives: Tensor, corrupt_head: Tensor) -> Tensor:
        """The cache key of each positive's query, shape ``[B]``."""
        relation = positives[:, 1]
        check_relation_ids(relation, 2 * self.num_relations, "NSCachingSampler: ", " (reciprocal ids included)")
        # (t, r + R, h) with its tail replaced is (h, r, t) with its head replaced: same cache.
        inverse = relation >= self.num_relations
        kept, _ = kept_and_true(positives, corrupt_head)
        return self._encode(corrupt_head ^ inverse, kept, relation - self.num_relations * inverse.long())

    def lookup(self, positives: Tensor, corrupt_head: Tensor) -> tuple[Tensor, Tensor]:
        """Cache row of each positive's query and whether it exists, both shape ``[B]``."""
        keys = self.pair_keys_of(positives, corrupt_head)
        if self.pair_keys.numel() == 0:
            return torch.zeros_like(keys), torch.zeros_like(keys, dtype=torch.bool)
        row = torch.searchsorted(self.pair_keys, keys).clamp_(max=self.pair_keys.numel() - 1)
        return row, self.pair_keys[row] == keys

    def cached(self, positives: Tensor, corrupt_head: Tensor) -> Tensor:
        """The cache serving each positive, shape ``[B, N1]``; ``-1`` for queries without one."""
        row, found = self.lookup(positives, corrupt_head)
        if self.cache.size(0) == 0:  # a graph without training triples has no caches
            return torch.full((positives.size(0), self.cache_size), -1, dtype=torch.long, device=positives.device)
        return torch.where(found.unsqueeze(1), self.cache[row].long(), -1)

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        scorer = require_scorer(scorer, self)
        row, found = self.lookup(positives, corrupt_head)
        shape = (positives.size(0), num_negatives)
        # Cache slots in a random order, each used once before any is repeated: k <= N1 negatives
        # are distinct cache entries, and larger k spreads evenly over the cache.
        repeats = -(-num_negatives // self.cache_size)
        rounds = torch.rand(positives.size(0), repeats, self.cache_size, device=positives.device).argsort(dim=2)
        column = rounds.flatten(1)[:, :num_negatives]
        entities = torch.randint(self.num_entities, shape, device=positives.device)
        if self.cache.size(0):  # a graph without training triples has no caches: uniform negatives
            entities = torch.where(found.unsqueeze(1), self.cache[row.unsqueeze(1), column].long(), entities)
        self.count(fallback=(~found).sum(), rows=positives.size(0))
        if self.training:
            self.refresh(positives, corrupt_head, row, found, scorer)
        if self.filtered:
            entities = self.redraw_known(positives, entities, corrupt_head)
        return Negatives(entities, corrupt_head)

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        """Uniform entities, shape ``[B, k]`` (redraws of known triples with ``filtered``)."""
        return torch.randint(self.num_entities, (positives.size(0), num_negatives), device=positives.device)

    @torch.no_grad()
    def refresh(self, positives: Tensor, corrupt_head: Tensor, row: Tensor, found: Tensor, scorer: Scorer) -> None:
        """Rescore the caches of a batch's queries together with fresh candidates; keep :math:`N_1`.

        Args:
            positives (Tensor): shape ``[B, 3]``.
            corrupt_head (Tensor): shape ``[B]``.
            row (Tensor): cache row of each positive, shape ``[B]`` (from :meth:`lookup`).
            found (Tensor): whether that row exists, shape ``[B]``.
            scorer (callable): the current model's ``scorer``.
        """
        members = torch.nonzero(found).flatten()
        if members.numel() == 0:
            return
        rows, group = torch.unique(row[members], return_inverse=True)
        # One refresh per distinct row, with the last positive that used it: index_copy_ then
        # writes each row once, which duplicates in the index would leave unspecified.
        last = torch.full_like(rows, -1).scatter_reduce_(0, group, members, reduce="amax")
        pos, side = positives[last], corrupt_head[last]
        fresh = torch.randint(self.num_entities, (rows.numel(), self.num_fresh), device=rows.device)
        candidates = torch.cat([self.cache[rows].long(), fresh], dim=1)
        scores = scorer(pos, candidates, side).float()
        _, true = kept_and_true(pos, side)
        invalid = (candidates == true.unsqueeze(1)) | repeated(candidates)
        if self.filtered:
            invalid |= self.index.contains_corrupted(pos, candidates, side)
        key = scores.masked_fill(invalid, float("-inf"))
        if self.update == "sample":
            key = key + gumbel_like(key)
        best, keep = key.topk(self.cache_size, dim=1)
        kept = candidates.gather(1, keep)
        # Fewer valid candidates than N1 (few fresh ones, or a cache of repeats and known answers):
        # the gaps get uniform entities other than the true one (repeats among them are possible).
        gap = best == float("-inf")
        if bool(gap.any()) and self.num_entities > 1:
            other = torch.randint(self.num_entities - 1, kept.shape, device=kept.device)
            other += (other >= true.unsqueeze(1)).long()
            kept = torch.where(gap, other, kept)
        self.cache.index_copy_(0, rows, kept.to(self.cache.dtype))
        self.count(changed=((keep >= self.cache_size) | gap).sum(), refreshed=keep.numel())

    def epoch_stats(self) -> dict[str, float]:
        """``fallback_rate``, ``cache_change_rate`` (share of refreshed entries that are new),
        ``cache_bytes`` and ``false_negatives_left``, then reset."""
        stats = super().epoch_stats()
        out = {
            "fallback_rate": stats.pop("fallback", 0.0) / max(stats.pop("rows", 0.0), 1.0),
            "cache_change_rate": stats.pop("changed", 0.0) / max(stats.pop("refreshed", 0.0), 1.0),
            "cache_bytes": float(self.cache_bytes),
        }
        out.update(stats)
        return out


def repeated(x: Tensor) -> Tensor:
    """Marks every entry equal to an earlier one of its row, shape ``[B, n] -> [B, n]``."""
    ordered, order = x.sort(dim=1, stable=True)
    later = torch.zeros_like(x, dtype=torch.bool)
    later[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    return torch.zeros_like(later).scatter_(1, order, later)
