"""Type-constrained negatives: candidates of the replaced entity's type, or of the relation's domain/range."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.data.triple_index import sorted_distinct
from gnnns.sampling.base import NegativeSampler
from gnnns.sampling.negatives import Negatives, Scorer, kept_and_true

_SENTINEL = 1 << 62


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
            keys, num_groups = self._type_keys(kg)
        else:
            keys, num_groups = self._domain_range_keys(kg)
        # keys ends with _SENTINEL, above every real key: lookups past a group's end stay in bounds.
        group_ptr = torch.zeros(num_groups + 1, dtype=torch.long)
        for chunk in keys[:-1].split(1 << 22):  # a few chunks bound the temporary copy of the ids
            group_ptr[1:] += torch.bincount(chunk >> self.entity_bits, minlength=num_groups)
        group_ptr = torch.cumsum(group_ptr, 0)
        sizes = group_ptr[1:] - group_ptr[:-1]
        # float32 offsets resolve 2**24 members; a larger group needs float64 to reach them all.
        self.draw_dtype = torch.float64 if sizes.numel() and int(sizes.max()) >= 2**24 else torch.float32
        # A group whose members are consecutive ids (HeteroData node types) needs no lookup: member
        # i is first + i.
        first = keys.index_select(0, group_ptr[:-1]) & self.entity_mask
        last = keys.index_select(0, (group_ptr[1:] - 1).clamp(min=0)) & self.entity_mask
        self.register_buffer("keys", keys, persistent=False)
        self.register_buffer("group_ptr", group_ptr, persistent=False)
        self.register_buffer("consecutive", (sizes > 0) & (last - first + 1 == sizes), persistent=False)
        self.register_buffer("first", first, persistent=False)

    def _type_keys(self, kg: KnowledgeGraph) -> tuple[Tensor, int]:
        """Group keys ``(type << bits) | entity``; registers the CSR of each entity's types."""
        pairs = kg.entity_types.long()
        if pairs.dim() != 2 or pairs.size(1) != 2 or int(pairs.min()) < 0 or int(pairs[:, 0].max()) >= kg.num_entities:
            raise ValueError(
                f"entity_types must be (entity, type) pairs of shape [M, 2] with 0 <= entity < {kg.num_entities}"
            )
        num_groups = int(pairs[:, 1].max()) + 1
        type_bits = max(1, (num_groups - 1).bit_length())
        _check_bits(num_groups, kg.num_entities, type_bits + self.entity_bits)
        by_entity = sorted_distinct((pairs[:, 0] << type_bits) | pairs[:, 1])
        entity, types = by_entity >> type_bits, by_entity & ((1 << type_bits) - 1)
        type_ptr = torch.zeros(kg.num_entities + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(entity, minlength=kg.num_entities), 0, out=type_ptr[1:])
        keys = torch.empty(entity.numel() + 1, dtype=torch.long)
        torch.bitwise_left_shift(types, self.entity_bits, out=keys[:-1]).bitwise_or_(entity)
        keys[-1] = _SENTINEL
        keys = sorted_distinct(keys)
        self.register_buffer("type_ptr", type_ptr, persistent=False)
        self.register_buffer("types", types, persistent=False)
        # Where each (entity, type) pair sits among the keys, so a draw needs no search for v*.
        type_slot = torch.searchsorted(keys, (types << self.entity_bits) | entity)
        self.register_buffer("type_slot", type_slot, persistent=False)
        return keys, num_groups

    def _domain_range_keys(self, kg: KnowledgeGraph) -> tuple[Tensor, int]:
        """Group keys ``(group << bits) | entity``: group r holds the heads of r, group R + r its tails."""
        num_groups = 2 * kg.num_relations
        _check_bits(num_groups, kg.num_entities, (num_groups - 1).bit_length() + self.entity_bits)
        head, rel, tail = kg.train.long().unbind(1)
        keys = torch.empty(2 * head.numel() + 1, dtype=torch.long)
        heads, tails = keys[:-1].view(2, -1)
        torch.bitwise_left_shift(rel, self.entity_bits, out=heads).bitwise_or_(head)
        torch.bitwise_left_shift(rel + kg.num_relations, self.entity_bits, out=tails).bitwise_or_(tail)
        keys[-1] = _SENTINEL
        return sorted_distinct(keys), num_groups

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


def _check_bits(num_groups: int, num_entities: int, bits: int) -> None:
    if bits > 62:
        raise ValueError(
            f"TypedSampler packs (group, entity) into 62 bits: {num_groups} groups of {num_entities} need {bits}"
        )
