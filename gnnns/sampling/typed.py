"""Type-constrained negatives: candidates of the replaced entity's type, or of the relation's domain/range."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true


class TypedSampler(NegativeSampler):
    r"""Replace one side of each positive by another entity of the same type.

    From "Type-Constrained Representation Learning in Knowledge Graphs" (Krompaß, Baier and Tresp,
    ISWC 2015, https://arxiv.org/abs/1508.02593): a corruption that breaks the type constraints of a
    relation is trivially false, so negatives are drawn where the true entity could have been.

    With entity types (``kg.entity_types``: HeteroData node types, CoDEx types, several per entity
    allowed), the group of a positive whose true (replaced) entity :math:`v^*` has types
    :math:`T(v^*)` is one type :math:`\tau \sim \mathcal{U}(T(v^*))` and

    .. math::
        e \sim \mathcal{U}\bigl(M_\tau \setminus \{v^*\}\bigr), \qquad M_\tau = \{e : \tau \in T(e)\}.

    Without types, the paper's local closed-world assumption stands in for them: a replaced head of
    relation :math:`r` is drawn from its observed domain :math:`\{h : (h, r, t) \in \mathcal{G}\}`
    and a replaced tail from its range :math:`\{t : (h, r, t) \in \mathcal{G}\}`, both over the
    training triples :math:`\mathcal{G}`. Either way the groups are stored once as sorted keys
    ``(group << bits) | entity`` with a CSR pointer over groups; a draw is one offset per negative,
    with :math:`v^*`'s slot left out, so a negative never equals the positive and costs no redraw.
    A positive whose group holds no entity but :math:`v^*` (or whose :math:`v^*` has no type) falls
    back to uniform draws over all :math:`E` entities; :meth:`epoch_stats` reports the share as
    ``fallback_rate``. :attr:`source` says which groups are used (``"types"`` or
    ``"domain_range"``).

    A batch costs one random number per negative and, unless every group in it is a run of
    consecutive ids (as HeteroData node types are), one gather into the keys; the keys take
    8 bytes per (entity, group) pair (at most :math:`2N` for domain and range), kept as
    non-persistent buffers (rebuilt from ``kg``, moved by ``.to()``).

    Args:
        kg (KnowledgeGraph): the training graph.
        use_types (bool, optional): draw by entity type (True), by observed domain and range
            (False), or by type when ``kg.entity_types`` is given (None). (default: None)
        filtered (bool): redraw negatives that are known training triples. (default: False)
        max_rounds (int): redraw rounds for ``filtered``. (default: 10)
    """

    def __init__(self, kg: KnowledgeGraph, use_types: bool | None = None, filtered: bool = False, max_rounds: int = 10):
        super().__init__(kg, filtered=filtered, max_rounds=max_rounds)
        has_types = kg.entity_types is not None and kg.entity_types.numel() > 0
        if use_types is None:
            use_types = has_types
        if use_types and not has_types:
            raise ValueError(f"TypedSampler(use_types=True) needs kg.entity_types, but {kg.name} has none")
        self.source = "types" if use_types else "domain_range"
        self.num_relations = kg.num_relations
        self.entity_bits = max(1, (kg.num_entities - 1).bit_length())
        self.entity_mask = (1 << self.entity_bits) - 1
        if use_types:
            pairs = torch.unique(kg.entity_types.long(), dim=0)
            if int(pairs[:, 0].max()) >= kg.num_entities or int(pairs.min()) < 0:
                raise ValueError(f"entity_types must hold (entity, type) pairs with entity < {kg.num_entities}")
            entity, group = pairs.unbind(1)
            num_groups = int(group.max()) + 1
            # (entity, type) pairs sorted by entity: the CSR of each entity's types.
            type_ptr = torch.zeros(kg.num_entities + 1, dtype=torch.long)
            torch.cumsum(torch.bincount(entity, minlength=kg.num_entities), 0, out=type_ptr[1:])
            self.register_buffer("type_ptr", type_ptr, persistent=False)
            self.register_buffer("types", group.clone(), persistent=False)
        else:
            # Group r: heads of relation r (replaced heads); group R + r: its tails.
            train = kg.train.long()
            group = torch.cat([train[:, 1], train[:, 1] + kg.num_relations])
            entity = torch.cat([train[:, 0], train[:, 2]])
            num_groups = 2 * kg.num_relations
        if num_groups.bit_length() + self.entity_bits > 62:
            raise ValueError(f"{num_groups} groups of {kg.num_entities} entities do not fit 62-bit keys")
        keys = torch.unique((group << self.entity_bits) | entity)
        group_ptr = torch.zeros(num_groups + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(keys >> self.entity_bits, minlength=num_groups), 0, out=group_ptr[1:])
        # One key past every group, above all others, keeps each lookup in bounds and sorted.
        keys = torch.cat([keys, keys.new_full((1,), 1 << 62)])
        sizes = group_ptr[1:] - group_ptr[:-1]
        # float32 offsets resolve 2**24 members; a larger group needs float64 to reach them all.
        self.draw_dtype = torch.float64 if sizes.numel() and int(sizes.max()) >= 2**24 else torch.float32
        # A group whose members are consecutive ids (HeteroData node types) needs no lookup: member
        # i is first + i.
        if use_types:
            # Where each (entity, type) pair sits among the keys, so a draw needs no search for v*.
            type_slot = torch.searchsorted(keys, (group << self.entity_bits) | entity)
            self.register_buffer("type_slot", type_slot, persistent=False)
        first = keys.index_select(0, group_ptr[:-1]) & self.entity_mask
        last = keys.index_select(0, (group_ptr[1:] - 1).clamp(min=0)) & self.entity_mask
        self.register_buffer("keys", keys, persistent=False)
        self.register_buffer("group_ptr", group_ptr, persistent=False)
        self.register_buffer("consecutive", (sizes > 0) & (last - first + 1 == sizes), persistent=False)
        self.register_buffer("first", first, persistent=False)

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        entities, fallback = self._draw(positives, num_negatives, corrupt_head)
        self.count(drawn=entities.numel(), fallback=int(fallback.sum()) * entities.size(1))
        if self.filtered:
            entities = self.redraw_known(positives, entities, corrupt_head)
        return Negatives(entities, corrupt_head)

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        return self._draw(positives, num_negatives, corrupt_head)[0]

    def epoch_stats(self) -> dict[str, float]:
        """``fallback_rate`` (share of negatives drawn uniformly), ``false_negatives_left``, then reset."""
        stats, self.stats = self.stats, {}
        drawn = stats.get("drawn", 0.0)
        out = {"fallback_rate": stats.get("fallback", 0.0) / drawn if drawn else 0.0}
        if "false_negatives_left" in stats:
            out["false_negatives_left"] = stats["false_negatives_left"]
        return out

    def groups(self, positives: Tensor, corrupt_head: Tensor) -> Tensor:
        """The group each positive's negatives come from, shape ``[B]`` (-1: none, uniform fallback)."""
        return self._groups(positives, corrupt_head)[0]

    def _groups(self, positives: Tensor, corrupt_head: Tensor) -> tuple[Tensor, Tensor | None]:
        """Groups ``[B]`` and, with types, the key slot of each true entity in its group ``[B]``."""
        _, true = kept_and_true(positives, corrupt_head)
        if self.source == "domain_range":
            return positives[:, 1] + torch.where(corrupt_head, 0, self.num_relations), None
        begin = self.type_ptr.index_select(0, true)
        count = self.type_ptr.index_select(0, true + 1) - begin
        pick = (torch.rand(true.shape, device=true.device) * count).long()
        pair = (begin + pick).clamp_(max=self.types.numel() - 1)
        return torch.where(count > 0, self.types.index_select(0, pair), -1), self.type_slot.index_select(0, pair)

    def _draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> tuple[Tensor, Tensor]:
        """Entities ``[B, k]`` and which rows fell back to uniform draws ``[B]``."""
        _, true = kept_and_true(positives, corrupt_head)
        group, slot = self._groups(positives, corrupt_head)
        safe = group.clamp(min=0)
        begin = self.group_ptr.index_select(0, safe)
        size = torch.where(group >= 0, self.group_ptr.index_select(0, safe + 1) - begin, 0)
        # Where v* sits in its group, if it does: it is left out by drawing among the other
        # size - 1 slots, with slot size - 1 standing in for v*'s own.
        if slot is None:
            slot = torch.searchsorted(self.keys, (safe << self.entity_bits) | true)
            present = (size > 0) & (self.keys.index_select(0, slot) == ((safe << self.entity_bits) | true))
        else:
            present = size > 0  # a typed v* is a member of each of its types
        choices = size - present.long()
        fallback = choices <= 0
        own_slot = torch.where(present, slot - begin, -1).unsqueeze(1)
        shape = (positives.size(0), int(num_negatives))
        # rand < 1 and choices < 2**24 (2**53 in float64) keep floor(rand * choices) < choices exactly.
        scaled = torch.rand(shape, dtype=self.draw_dtype, device=positives.device).mul_(choices.unsqueeze(1))
        offset = scaled.long()
        offset = torch.where(offset == own_slot, (size - 1).unsqueeze(1), offset)
        if bool((self.consecutive.index_select(0, safe) | fallback).all()):
            entities = offset.add_(self.first.index_select(0, safe).unsqueeze(1))
        else:
            index = offset.add_(begin.unsqueeze(1))
            entities = self.keys.index_select(0, index.view(-1)).view(shape) & self.entity_mask
        if bool(fallback.any()):
            rows = torch.nonzero(fallback).squeeze(1)
            # Uniform over the E - 1 entities other than v*: draw below E - 1 and skip v*'s id.
            other = torch.randint(max(self.num_entities - 1, 1), (rows.numel(), shape[1]), device=rows.device)
            other += other >= true.index_select(0, rows).unsqueeze(1)
            entities.index_copy_(0, rows, other.clamp_(max=self.num_entities - 1))
        return entities, fallback
