"""Vectorised membership and neighbourhood queries over a set of known triples."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class TripleIndex:
    r"""Sorted integer keys of known triples, queried with :func:`torch.searchsorted`.

    A triple :math:`(h, r, t)` is encoded as the key :math:`(h \cdot R + r) \cdot E + t` (and
    :math:`(t \cdot R + r) \cdot E + h` for the head-side view), which fits ``int64`` for every
    public knowledge graph (:math:`E^2 R < 9.2 \cdot 10^{18}`, e.g. ogbl-wikikg2). Membership of
    ``N`` triples costs :math:`O(N \log M)` with no Python loop; the known tails of a batch of
    ``(h, r)`` queries come back as flat ``(row, entity)`` pairs, which is exactly what filtered
    ranking and false-negative filtering need.

    Args:
        triples (Tensor or sequence of Tensor): known triples, shape ``[M, 3]`` (duplicates are
            allowed), or several such tensors (train, valid, test), indexed together without
            first concatenating them into one ``[M, 3]`` copy.
        num_entities (int): number of entities :math:`E`.
        num_relations (int): number of relations :math:`R`.
    """

    def __init__(self, triples: Tensor | Sequence[Tensor], num_entities: int, num_relations: int):
        parts = [triples] if isinstance(triples, Tensor) else list(triples)
        for part in parts:
            if part.dim() != 2 or part.size(1) != 3:
                raise ValueError(f"TripleIndex expects triples of shape [M, 3], got {list(part.shape)}")
        if num_entities**2 * max(num_relations, 1) >= 2**63:
            raise ValueError("graph too large for int64 triple keys")
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        parts = [part.long().cpu() for part in parts]
        self._tail_keys = sorted_distinct(self._encode_parts(parts, 0, 2))  # sorted, (h, r) groups then t
        self._head_keys = sorted_distinct(self._encode_parts(parts, 2, 0))  # sorted, (t, r) groups then h

    def _encode_parts(self, parts: list[Tensor], a: int, b: int) -> Tensor:
        """The keys of every part's triples with column ``a`` first and ``b`` last, written into one buffer."""
        keys = torch.empty(sum(len(part) for part in parts), dtype=torch.long)
        offset = 0
        for part in parts:
            self._encode(part[:, a], part[:, 1], part[:, b], out=keys[offset : offset + len(part)])
            offset += len(part)
        return keys

    def __len__(self) -> int:
        return self._tail_keys.numel()

    def _encode(self, a: Tensor, r: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
        # (h, R + r, t) would alias (h + 1, r, t), e.g. reciprocal ids passed by mistake.
        check_relation_ids(r, self.num_relations)
        # One buffer (fresh, or ``out``), the rest in place: above glibc's mmap threshold (32 MB) every
        # temporary is new memory that the kernel faults in and zeroes, which took half of a 16M-triple build.
        shape = torch.broadcast_shapes(a.shape, r.shape, b.shape)
        a, r, b = a.long(), r.long(), b.long()  # int32 ids would wrap around in the key
        if out is None:
            key = a.expand(shape) * self.num_relations
        else:
            key = torch.mul(a.expand(shape), self.num_relations, out=out)
        return key.add_(r).mul_(self.num_entities).add_(b)

    def to(self, device: torch.device | str) -> TripleIndex:
        """Move the key tensors to ``device`` (in place) and return ``self``."""
        self._tail_keys = self._tail_keys.to(device)
        self._head_keys = self._head_keys.to(device)
        return self

    def contains(self, triples: Tensor) -> Tensor:
        """Whether each triple is known.

        Args:
            triples (Tensor): shape ``[..., 3]``.

        Returns:
            BoolTensor of shape ``[...]``.
        """
        keys = self._encode(triples[..., 0], triples[..., 1], triples[..., 2])
        return isin_sorted(self._tail_keys, keys.to(self._tail_keys.device)).to(triples.device)

    def contains_corrupted(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
        """Whether the triples made by replacing one side of each positive are known.

        Args:
            positives (Tensor): shape ``[B, 3]``.
            entities (Tensor): replacement entities, shape ``[B, k]``.
            corrupt_head (Tensor): shape ``[B]``; True replaces the head, False the tail.

        Returns:
            BoolTensor of shape ``[B, k]``.
        """
        kept = torch.where(corrupt_head, positives[:, 2], positives[:, 0]).unsqueeze(1)
        rel = positives[:, 1].unsqueeze(1)
        keys = self._encode(kept, rel, entities)
        tail_hit = isin_sorted(self._tail_keys, keys.to(self._tail_keys.device)).to(entities.device)
        head_hit = isin_sorted(self._head_keys, keys.to(self._head_keys.device)).to(entities.device)
        return torch.where(corrupt_head.unsqueeze(1), head_hit, tail_hit)

    def known(self, kept: Tensor, relation: Tensor, predict_head: bool) -> tuple[Tensor, Tensor]:
        """All known answers of a batch of queries, as flat pairs.

        For ``predict_head=False`` the queries are ``(kept, relation, ?)`` and the answers are
        tails; for ``predict_head=True`` they are ``(?, relation, kept)`` and the answers heads.

        Args:
            kept (Tensor): the known entity of each query, shape ``[Q]``.
            relation (Tensor): shape ``[Q]``.
            predict_head (bool): which side is asked for.

        Returns:
            ``(row, entity)``, each of shape ``[P]``: answer ``entity[i]`` belongs to query
            ``row[i]``.
        """
        keys = self._head_keys if predict_head else self._tail_keys
        check_relation_ids(relation, self.num_relations)
        kept, relation = kept.long(), relation.long()  # int32 ids would wrap around in the key
        base = (kept.to(keys.device) * self.num_relations + relation.to(keys.device)) * self.num_entities
        start = torch.searchsorted(keys, base)
        end = torch.searchsorted(keys, base + self.num_entities)
        counts = end - start
        row = torch.repeat_interleave(torch.arange(kept.numel(), device=keys.device), counts)
        offsets = torch.arange(row.numel(), device=keys.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        entity = keys[start[row] + offsets] - base[row]
        return row.to(kept.device), entity.to(kept.device)


def check_relation_ids(relation: Tensor, limit: int, who: str = "", note: str = "") -> None:
    """Refuse relation ids outside ``[0, limit)``: as parts of packed keys they would alias other
    triples' keys silently. ``who`` prefixes the message, ``note`` explains the limit."""
    if relation.numel() and (int(relation.min()) < 0 or int(relation.max()) >= limit):
        raise ValueError(
            f"{who}relation ids must lie in [0, {limit}){note}, got {int(relation.min())}..{int(relation.max())}"
        )


def sorted_distinct(keys: Tensor) -> Tensor:
    r"""The sorted distinct values of a 1-D integer tensor, consuming ``keys`` (sorted in place).

    On the CPU NumPy's in-place sort needs no index tensor, where :func:`torch.unique` holds
    several copies; it is also two to five times faster (:math:`10^6` to :math:`3 \cdot 10^7` keys
    on two cores).

    Args:
        keys (Tensor): shape ``[n]``, integer; its contents are sorted (on the CPU) or left alone.

    Returns:
        Tensor of shape ``[m]``, :math:`m \le n`, ascending and distinct.
    """
    if keys.device.type == "cpu":
        keys.numpy().sort()
    else:
        keys = torch.sort(keys).values
    keep = torch.ones(keys.numel(), dtype=torch.bool, device=keys.device)
    torch.ne(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def isin_sorted(sorted_keys: Tensor, keys: Tensor) -> Tensor:
    """Whether each entry of ``keys`` (any shape) occurs in the ascending 1-D ``sorted_keys``, by binary search."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys
