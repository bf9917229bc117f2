"""Structure-aware negatives: candidates from the k-hop neighbourhood of the kept entity."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.data.triple_index import check_relation_ids, isin_sorted, sorted_distinct
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true


class KHopSampler(NegativeSampler):
    r"""Replace one side of each positive by an entity near the kept one, reached by a random walk.

    From "Structure Aware Negative Sampling in Knowledge Graphs" (Ahrabian et al., EMNLP 2020,
    https://aclanthology.org/2020.emnlp-main.492): entities within :math:`k` hops of the kept entity
    are related to it, so they make harder negatives than uniform draws; like the paper's RW-SANS
    variant, the neighbourhood is reached by random walks instead of a dense :math:`A^k`.

    The training graph is read as one undirected multigraph over all relations:
    :math:`A_{uv}` counts the distinct links :math:`(u, r, v)` and :math:`(v, r, u)` of the training
    triples (self-loops dropped), :math:`d_u = \sum_v A_{uv}` and :math:`P = D^{-1} A`. It is stored
    once, as the sorted keys of the links :math:`(u, r^\pm, v)` (:math:`r^+ = r` outgoing,
    :math:`r^- = r + R` incoming) with a CSR row pointer over :math:`u`; the same keys answer whether
    :math:`(u, r, v)` is a known training triple, so no dense matrix and no second index exist.

    Each negative of a positive with kept entity :math:`u` and true entity :math:`v^*` is the end of a
    walk of length :math:`\ell \in \{1, \dots, k\}` from :math:`u`, so before rejection

    .. math::
        q_u(v) = \frac{1}{k} \sum_{\ell=1}^{k} \left(P^{\ell}\right)_{uv},
        \qquad \operatorname{supp} q_u = \{v : \operatorname{dist}(u, v) \le k\},

    i.e. the support is exactly the :math:`k`-hop neighbourhood of SANS, nearer hops weighing more.
    The lengths are drawn systematically per batch: with :math:`n` negatives, column :math:`j` walks
    :math:`\ell_j = k - \lfloor (j + U) k / n \rfloor` steps (:math:`U \sim \mathcal{U}[0, 1)`), and
    the columns are shuffled, so every length is used :math:`\lfloor n/k \rfloor` or
    :math:`\lceil n/k \rceil` times per row and :math:`P(\ell) = 1/k` for each negative. A candidate
    is rejected when it is :math:`u`, :math:`v^*` or (with ``filtered``) makes a known training
    triple; a rejected negative walks again, with the same length, up to ``max_rounds`` times. What
    is still rejected then, and every negative of a kept entity without training links, falls back
    to uniform draws over all :math:`E` entities (redrawn the same way); :meth:`epoch_stats` reports
    the share as ``fallback_rate``. Reciprocal positives :math:`(t, r + R, h)` are filtered as
    the triples :math:`(h, r, t)` they reverse; relation ids of :math:`2R` and more are an error.

    Every step is vectorised over all walkers (two gathers into the row pointer, one into the keys),
    so a batch costs :math:`O(B n k)`; the known-triple check runs only for rows whose
    :math:`(u, r)` has known answers other than :math:`v^*`, through a hash table of those answers
    built per batch (a binary search of the keys only where it cannot decide). The graph costs
    :math:`8 (L + E)` bytes for :math:`L \le 2N` links, kept as non-persistent buffers (rebuilt from
    ``kg``, moved by ``.to()``).

    Args:
        kg (KnowledgeGraph): the training graph.
        k (int): maximal walk length, the neighbourhood radius. (default: ``2``)
        filtered (bool): reject candidates that make known training triples; on by default because
            the neighbourhood is where the false negatives are. (default: ``True``)
        max_rounds (int): further walks for a rejected negative before the uniform fallback (run
            in rounds of 1, 2, 3, ... walks per negative), and redraws of a rejected fallback draw.
            (default: ``10``)
    """

    def __init__(self, kg: KnowledgeGraph, k: int = 2, filtered: bool = True, max_rounds: int = 10):
        # The base class's filtering would build a second index and redraw whole batches: the link
        # keys below answer membership themselves, so the base sees filtered=False.
        super().__init__(kg, filtered=False, max_rounds=max_rounds)
        if int(k) < 1:
            raise ValueError(f"k (walk length) must be at least 1, got {k}")
        self.k = int(k)
        self.filtered = bool(filtered)
        self.num_relations = kg.num_relations
        self.entity_bits = max(1, (kg.num_entities - 1).bit_length())
        self.relation_bits = max(1, (2 * kg.num_relations - 1).bit_length())
        self.row_shift = self.entity_bits + self.relation_bits
        self.entity_mask = (1 << self.entity_bits) - 1
        if self.row_shift + self.entity_bits > 62:
            raise ValueError(
                f"KHopSampler packs (entity, relation, entity) into 62 bits, but E={kg.num_entities} and "
                f"2R={2 * kg.num_relations} need {self.row_shift + self.entity_bits}"
            )
        links = link_keys(kg.train, kg.num_relations, self.entity_bits, self.relation_bits)
        degree = torch.zeros(kg.num_entities, dtype=torch.long)
        for chunk in links.split(1 << 22):  # a few chunks bound the temporary copy of the ids
            degree += torch.bincount(chunk >> self.row_shift, minlength=kg.num_entities)
        rowptr = torch.zeros(kg.num_entities + 1, dtype=torch.long)
        torch.cumsum(degree, 0, out=rowptr[1:])
        # float32 draws resolve 2**24 neighbours; a larger row needs float64 to reach them all.
        wide = links.numel() and int(degree.max()) >= 2**24
        self.step_dtype = torch.float64 if wide else torch.float32
        self.offset_dtype = torch.int64 if wide else torch.int32
        self.register_buffer("links", links, persistent=False)
        self.register_buffer("rowptr", rowptr, persistent=False)

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        return Negatives(self.draw(positives, num_negatives, corrupt_head), corrupt_head)

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        return self.candidates(positives, num_negatives, corrupt_head)[0]

    def candidates(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> tuple[Tensor, Tensor]:
        """Negatives and where they came from.

        Args:
            positives (Tensor): shape ``[B, 3]``.
            num_negatives (int): :math:`n`.
            corrupt_head (Tensor): shape ``[B]``; True replaces the head, False the tail.

        Returns:
            ``(entities, from_walk)``, both of shape ``[B, n]``: the replacement entities, and True
            where the entity was reached by a walk (False: uniform fallback).
        """
        batch, n = positives.size(0), int(num_negatives)
        device = positives.device
        rows = _Batch(self, positives, corrupt_head, n)
        # Walker i sits in column i // B and row i % B (column-major), so the walkers still moving
        # at step s (length >= s, lengths descending by column) are a prefix of the flat array.
        row_of = torch.arange(batch, device=device).repeat(n)
        bounds = [columns * batch for columns in self._reach(n)]
        if self.links.numel():
            cand = self._walk(rows.begin.repeat(n), rows.degree.repeat(n), bounds)
            pending = torch.nonzero(rows.rejected(cand, row_of) & rows.walkable.repeat(n)).squeeze(1)
        else:
            cand = torch.zeros(n * batch, dtype=torch.long, device=device)
            pending = torch.empty(0, dtype=torch.long, device=device)
        pending = self._rewalk(rows, cand, pending, row_of, torch.tensor(bounds, device=device))
        # Still rejected after the rounds, or kept entity without links: uniform draws.
        isolated = torch.nonzero(~rows.walkable).squeeze(1)
        isolated = (isolated + batch * torch.arange(n, device=device).unsqueeze(1)).view(-1)
        fallback = torch.cat([pending, isolated])
        left = self._uniform(rows, cand, fallback, row_of)
        from_walk = torch.ones(n * batch, dtype=torch.bool, device=device).index_fill_(0, fallback, False)
        perm = torch.randperm(n, device=device)
        entities = cand.view(n, batch).index_select(0, perm).t().contiguous()
        from_walk = from_walk.view(n, batch).index_select(0, perm).t().contiguous()
        self.count(drawn=batch * n, fallback=fallback.numel(), false_negatives_left=left)
        return entities, from_walk

    def epoch_stats(self) -> dict[str, float]:
        """``fallback_rate`` (share of negatives drawn uniformly) and ``false_negatives_left``, then reset."""
        stats, self.stats = self.stats, {}
        drawn = stats.get("drawn", 0.0)
        return {
            "fallback_rate": stats.get("fallback", 0.0) / drawn if drawn else 0.0,
            "false_negatives_left": stats.get("false_negatives_left", 0.0),
        }

    def _reach(self, n: int) -> list[int]:
        r"""How many leading columns take step :math:`s = 1..k`: :math:`|\{j < n : \ell_j \ge s\}|`."""
        shift = float(torch.rand(()))
        return [min(n, max(0, math.ceil((self.k - step + 1) * n / self.k - shift))) for step in range(1, self.k + 1)]

    def _walk(self, begin: Tensor, degree: Tensor, sizes: list[int]) -> Tensor:
        """End nodes of walks whose first step picks among ``degree [m]`` links from ``begin [m]``.

        The first ``sizes[s]`` walkers take step ``s + 1`` (sizes non-increasing).
        """
        node = self._pick(begin, degree)
        for size in sizes[1:]:
            if size == 0:
                break
            head = node[:size]
            start = self.rowptr.index_select(0, head)
            node[:size] = self._pick(start, self.rowptr.index_select(0, head + 1) - start)
        return node

    def _pick(self, begin: Tensor, degree: Tensor) -> Tensor:
        """The far end of a uniformly chosen link in each run ``[begin, begin + degree)``, degree >= 1."""
        # rand < 1 and degree < 2**24 (2**53 in float64) keep floor(rand * degree) < degree exactly.
        offset = torch.rand(degree.shape, dtype=self.step_dtype, device=degree.device).mul_(degree)
        return self.links.index_select(0, offset.to(self.offset_dtype) + begin) & self.entity_mask

    def _rewalk(self, rows: _Batch, cand: Tensor, pending: Tensor, row_of: Tensor, bounds: Tensor) -> Tensor:
        """Walk again for the rejected walkers ``pending`` (ascending flat positions), in place.

        Round t gives each still-rejected walker t fresh walks and keeps the first accepted one, until
        ``max_rounds`` walks per walker are spent: the same attempts as one walk per round, in fewer
        rounds. Returns the walkers still rejected.
        """
        attempts, budget = 1, self.max_rounds
        while budget > 0 and pending.numel():
            tries = min(attempts, budget)
            # Each walker's tries sit side by side, so the lengths stay descending along the array.
            sizes = (torch.searchsorted(pending, bounds) * tries).tolist()
            walker_rows = row_of.index_select(0, pending).repeat_interleave(tries)
            begin = rows.begin.index_select(0, walker_rows)
            fresh = self._walk(begin, rows.degree.index_select(0, walker_rows), sizes).view(-1, tries)
            accepted = ~rows.rejected(fresh.view(-1), walker_rows).view(-1, tries)
            found = accepted.any(1)
            first = accepted.byte().argmax(1, keepdim=True)  # argmax returns the first maximum
            done = torch.nonzero(found).squeeze(1)
            cand.index_copy_(0, pending.index_select(0, done), fresh.gather(1, first).squeeze(1).index_select(0, done))
            pending = pending[~found]
            budget -= tries
            attempts += 1
        return pending

    def _uniform(self, rows: _Batch, cand: Tensor, index: Tensor, row_of: Tensor) -> int:
        """Put uniform draws at flat positions ``index`` of ``cand``, redrawing rejects; returns how many stay bad."""
        for _ in range(self.max_rounds + 1):
            if index.numel() == 0:
                break
            fresh = torch.randint(self.num_entities, index.shape, device=cand.device)
            cand.index_copy_(0, index, fresh)
            index = index[rows.rejected(fresh, row_of.index_select(0, index))]
        return index.numel()


_EMPTY, _COLLIDED = -1, -2
_GOLDEN = 0x9E3779B1  # Fibonacci hashing: entity ids (< 2**30) times this stay below 2**62


class _Batch:
    r"""Per-positive facts of one :class:`KHopSampler` batch, and its known-answer check.

    The known answers of a positive are the run of link keys with its prefix ``(kept, r^\pm)``. A
    binary search per candidate would dominate the batch, so the runs of up to ``4 n`` answers are
    hashed into a table local to the batch (a power of two of at least four times the run's length
    per row, one answer per slot): a probe that finds the candidate, or a slot holding another answer or
    none, is exact; only slots where answers collided, and rows with longer runs, fall back to a
    search of the sorted keys.
    """

    def __init__(self, sampler: KHopSampler, positives: Tensor, corrupt_head: Tensor, num_negatives: int):
        self.sampler = sampler
        self.kept, self.true = kept_and_true(positives, corrupt_head)
        links, rowptr = sampler.links, sampler.rowptr
        begin = rowptr.index_select(0, self.kept)
        degree = rowptr.index_select(0, self.kept + 1) - begin
        self.walkable = degree > 0
        # Walks from an entity without links are discarded; a valid first run keeps them in bounds.
        self.begin = torch.where(self.walkable, begin, 0)
        self.degree = degree.clamp(min=1)
        # A head is replaced in (?, r, kept): those are kept's incoming links r + R. A reciprocal
        # positive (t, r + R, h) is (h, r, t) read backwards, so its ids wrap around at 2R.
        relation, twice = positives[:, 1], 2 * sampler.num_relations
        check_relation_ids(relation, twice, "KHopSampler: ", " (reciprocal ids included)")
        relation = (relation + corrupt_head.long() * sampler.num_relations) % twice
        self.prefix = (self.kept << sampler.row_shift) | (relation << sampler.entity_bits)
        self.check = torch.zeros_like(self.walkable)
        if sampler.filtered and links.numel():
            bounds = torch.cat([self.prefix, self.prefix + (1 << sampler.entity_bits)])
            lo, hi = torch.searchsorted(links, bounds).split(self.kept.numel())
            count = hi - lo
            # Rows whose only known answer is the true entity (rejected anyway) need no check.
            first = links.index_select(0, lo.clamp(max=links.numel() - 1))
            self.check = (count > 1) | ((count == 1) & (first != (self.prefix | self.true)))
            self._hash_answers(lo, count, 4 * num_negatives)

    def _hash_answers(self, lo: Tensor, count: Tensor, limit: int) -> None:
        links, device = self.sampler.links, lo.device
        hashed = self.check & (count <= limit)
        # A power of two >= 4 * count slots for hashed rows (frexp: 2**e > 4 * count - 1), one otherwise:
        # at most a quarter full, so few probes land where answers collided.
        exponent = torch.frexp((4 * count - 1).clamp(min=1).double()).exponent.long()
        slots = torch.where(hashed, torch.ones_like(count) << exponent, 1)
        self.slot_mask = slots - 1
        self.slot_start = torch.cumsum(slots, 0) - slots
        self.table = torch.full((int(slots.sum()),), _EMPTY, dtype=torch.int32, device=device)
        run = torch.where(hashed, count, 0)
        owner = torch.repeat_interleave(torch.arange(run.numel(), device=device), run)
        within = torch.arange(owner.numel(), device=device) - (torch.cumsum(run, 0) - run).index_select(0, owner)
        answer = links.index_select(0, lo.index_select(0, owner) + within) & self.sampler.entity_mask
        slot = self._slot(answer, owner)
        self.table.index_copy_(0, slot, answer.int())
        self.table.masked_fill_(torch.bincount(slot, minlength=self.table.numel()) > 1, _COLLIDED)
        self.table.index_fill_(0, self.slot_start[self.check & ~hashed], _COLLIDED)

    def _slot(self, entity: Tensor, row: Tensor) -> Tensor:
        mixed = (entity * _GOLDEN) >> 16
        return self.slot_start.index_select(0, row) + (mixed & self.slot_mask.index_select(0, row))

    def rejected(self, cand: Tensor, row: Tensor) -> Tensor:
        """Whether candidates ``cand [m]`` of rows ``row [m]`` are the kept, the true or a known entity."""
        bad = (cand == self.kept.index_select(0, row)) | (cand == self.true.index_select(0, row))
        look = torch.nonzero(self.check.index_select(0, row) & ~bad).squeeze(1)
        if look.numel() == 0:
            return bad
        entity, owner = cand.index_select(0, look), row.index_select(0, look)
        held = self.table.index_select(0, self._slot(entity, owner))
        known = held == entity
        unsure = torch.nonzero(held == _COLLIDED).squeeze(1)
        if unsure.numel():
            keys = self.prefix.index_select(0, owner.index_select(0, unsure)) | entity.index_select(0, unsure)
            known.index_copy_(0, unsure, isin_sorted(self.sampler.links, keys))
        return bad.index_fill_(0, look[known], True)


def link_keys(triples: Tensor, num_relations: int, entity_bits: int, relation_bits: int) -> Tensor:
    r"""Sorted distinct keys of the links of ``triples`` in both directions, self-loops dropped.

    :math:`(h, r, t)` gives :math:`(h, r, t)` and :math:`(t, r + R, h)`, each packed as
    ``(u << (relation_bits + entity_bits)) | (r << entity_bits) | v``, so the keys of entity
    :math:`u` form one sorted run and those of :math:`(u, r)` a sub-run. Built in place in one
    ``[2N]`` buffer, so the peak is about two copies of the result.

    Args:
        triples (Tensor): shape ``[N, 3]``.
        num_relations (int): :math:`R`.
        entity_bits (int): bits of an entity id.
        relation_bits (int): bits of a directed relation id (``< 2R``).

    Returns:
        LongTensor of shape ``[L]``, :math:`L \le 2N`.
    """
    head, rel, tail = triples.long().unbind(1)
    shift = entity_bits + relation_bits
    keys = torch.empty(2 * head.numel(), dtype=torch.long, device=triples.device)
    out, inverse = keys.view(2, -1)
    torch.bitwise_left_shift(head, shift, out=out).bitwise_or_(rel << entity_bits).bitwise_or_(tail)
    torch.bitwise_left_shift(tail, shift, out=inverse).bitwise_or_((rel + num_relations) << entity_bits)
    inverse.bitwise_or_(head)
    # Self-loops become -1, which sorts first and is cut off below.
    loop = head == tail
    out.masked_fill_(loop, -1)
    inverse.masked_fill_(loop, -1)
    keys = sorted_distinct(keys)
    return keys[1:] if keys.numel() and int(keys[0]) < 0 else keys
