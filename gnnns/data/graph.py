"""The knowledge graph every other part of gnnns consumes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from gnnns.data.eval_candidates import EvalCandidates
from gnnns.data.triple_index import TripleIndex

SPLITS = ("train", "valid", "test")


class KnowledgeGraph:
    r"""A knowledge graph with train/valid/test triples over dense entity and relation ids.

    Triples are ``LongTensor [N, 3]`` in ``(head, relation, tail)`` column order. Entities that
    occur only in valid/test are kept (they get ids and embeddings but no training triple);
    :attr:`unseen_entities` counts them.

    Args:
        train (Tensor): training triples, shape ``[N_train, 3]``.
        valid (Tensor, optional): validation triples, shape ``[N_valid, 3]``.
        test (Tensor, optional): test triples, shape ``[N_test, 3]``.
        num_entities (int, optional): :math:`E`; by default ``1 + max`` entity id seen.
        num_relations (int, optional): :math:`R`; by default ``1 + max`` relation id seen.
        entity_names (list[str], optional): name of each entity id.
        relation_names (list[str], optional): name of each relation id.
        entity_types (Tensor, optional): ``(entity, type)`` pairs, shape ``[M, 2]``; an entity
            may have several types.
        type_names (list[str], optional): name of each type id.
        name (str, optional): dataset name, for logs.
        eval_negatives (dict[str, EvalCandidates], optional): fixed candidates per evaluation split
            (``"valid"``, ``"test"``), one row per triple of the split, as OGB provides them;
            :func:`gnnns.evaluation.evaluate` then ranks against them instead of every entity.
            Kept in :attr:`eval_negatives`. (default: none)
    """

    def __init__(
        self,
        train: Tensor,
        valid: Tensor | None = None,
        test: Tensor | None = None,
        num_entities: int | None = None,
        num_relations: int | None = None,
        entity_names: Sequence[str] | None = None,
        relation_names: Sequence[str] | None = None,
        entity_types: Tensor | None = None,
        type_names: Sequence[str] | None = None,
        name: str = "kg",
        eval_negatives: Mapping[str, EvalCandidates] | None = None,
    ):
        self.train = _as_triples(train, "train")
        self.valid = _as_triples(valid, "valid")
        self.test = _as_triples(test, "test")
        every = torch.cat([self.train, self.valid, self.test])
        seen_e = int(torch.cat([every[:, 0], every[:, 2]]).max()) + 1 if len(every) else 0
        seen_r = int(every[:, 1].max()) + 1 if len(every) else 0
        self.num_entities = int(num_entities) if num_entities is not None else seen_e
        self.num_relations = int(num_relations) if num_relations is not None else seen_r
        if seen_e > self.num_entities or seen_r > self.num_relations:
            raise ValueError(
                f"{name}: triples use entity id {seen_e - 1} / relation id {seen_r - 1}, beyond "
                f"num_entities={self.num_entities} / num_relations={self.num_relations}"
            )
        if len(every) and int(every.min()) < 0:
            raise ValueError(f"{name}: negative ids in triples")
        self.entity_names = list(entity_names) if entity_names is not None else None
        self.relation_names = list(relation_names) if relation_names is not None else None
        self.entity_types = entity_types.long() if entity_types is not None else None
        self.type_names = list(type_names) if type_names is not None else None
        self.name = name
        self.eval_negatives: dict[str, EvalCandidates] = {}
        for split, candidates in (eval_negatives or {}).items():
            if len(candidates) != len(self.split(split)):
                raise ValueError(
                    f"{name}: eval_negatives[{split!r}] has {len(candidates)} queries, but the {split} split has "
                    f"{len(self.split(split))} triples; expected one row of candidates per triple"
                )
            self.eval_negatives[split] = candidates
        self.report: dict | None = None  # what a reader found: duplicates, overlaps, unseen entities
        self._index: TripleIndex | None = None
        self._train_index: TripleIndex | None = None

    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph(name={self.name!r}, entities={self.num_entities:,}, "
            f"relations={self.num_relations:,}, train={len(self.train):,}, valid={len(self.valid):,}, "
            f"test={len(self.test):,})"
        )

    def split(self, name: str) -> Tensor:
        """The triples of split ``name`` (``"train"``, ``"valid"`` or ``"test"``), shape ``[N, 3]``."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    @property
    def num_types(self) -> int:
        if self.entity_types is None:
            return 0
        if self.type_names is not None:
            return len(self.type_names)
        return int(self.entity_types[:, 1].max()) + 1 if len(self.entity_types) else 0

    @property
    def unseen_entities(self) -> Tensor:
        """Ids of entities that occur in valid/test but in no training triple, shape ``[U]``."""
        seen = torch.zeros(self.num_entities, dtype=torch.bool)
        seen[self.train[:, 0]] = True
        seen[self.train[:, 2]] = True
        other = torch.cat([self.valid, self.test])
        used = torch.zeros(self.num_entities, dtype=torch.bool)
        used[other[:, 0]] = True
        used[other[:, 2]] = True
        return torch.nonzero(used & ~seen).flatten()

    def index(self) -> TripleIndex:
        """Index of every known triple (train ∪ valid ∪ test), built once and cached."""
        if self._index is None:
            # The splits are indexed as they are: no [M, 3] copy of all of them (390 MB at ogbl-wikikg2's size).
            self._index = TripleIndex([self.train, self.valid, self.test], self.num_entities, self.num_relations)
        return self._index

    def train_index(self) -> TripleIndex:
        """Index of the training triples only: what a sampler may legitimately know."""
        if self._train_index is None:
            self._train_index = TripleIndex(self.train, self.num_entities, self.num_relations)
        return self._train_index

    def to_pyg(self, split: str = "train"):
        """The triples of ``split`` as a homogeneous :class:`torch_geometric.data.Data`.

        Returns:
            ``Data(edge_index [2, N], edge_type [N], num_nodes=E)``, plus ``node_type [E]`` when
            every entity has exactly one type.
        """
        from torch_geometric.data import Data

        triples = self.split(split)
        data = Data(
            edge_index=triples[:, [0, 2]].t().contiguous(),
            edge_type=triples[:, 1].clone(),
            num_nodes=self.num_entities,
        )
        node_type = self.node_type
        if node_type is not None:
            data.node_type = node_type
        return data

    @property
    def node_type(self) -> Tensor | None:
        """One type id per entity, shape ``[E]``, or None unless every entity has exactly one type."""
        if self.entity_types is None or len(self.entity_types) != self.num_entities:
            return None
        node_type = torch.full((self.num_entities,), -1, dtype=torch.long)
        node_type[self.entity_types[:, 0]] = self.entity_types[:, 1]
        return node_type if bool((node_type >= 0).all()) else None

    @classmethod
    def from_hetero(cls, data, valid=None, test=None, name: str = "hetero") -> KnowledgeGraph:
        """Build a knowledge graph from a :class:`~torch_geometric.data.HeteroData`.

        Each node type gets a contiguous range of global entity ids in ``data.node_types`` order
        (so node type = entity type) and each edge type ``(src, rel, dst)`` a relation id in
        ``data.edge_types`` order. ``valid`` and ``test`` may be given as ``HeteroData`` of the
        same schema (their ``edge_index`` are the split's triples).

        Raises:
            ValueError: a split has an edge type the training graph lacks, or a node id outside
                its node type's range (which would silently name a node of the next type).
        """
        offsets, start = {}, 0
        for node_type in data.node_types:
            offsets[node_type] = start
            start += int(data[node_type].num_nodes)

        def triples_of(graph, split: str) -> Tensor:
            unknown = [et for et in graph.edge_types if et not in data.edge_types]
            if unknown:
                raise ValueError(
                    f"KnowledgeGraph.from_hetero: {split} has edge type(s) {unknown} that the training "
                    f"graph does not; expected some of {data.edge_types}"
                )
            parts = []
            for rel_id, edge_type in enumerate(data.edge_types):
                if edge_type not in graph.edge_types:
                    continue
                src, _, dst = edge_type
                ei = graph[edge_type].edge_index
                for row, node_type in ((0, src), (1, dst)):
                    count = int(data[node_type].num_nodes)
                    if ei.size(1) and (int(ei[row].min()) < 0 or int(ei[row].max()) >= count):
                        raise ValueError(
                            f"KnowledgeGraph.from_hetero: {split} edge type {edge_type} has "
                            f"{'source' if row == 0 else 'target'} ids {int(ei[row].min())}..{int(ei[row].max())}; "
                            f"expected ids in [0, {count}) of node type {node_type!r}"
                        )
                rel = torch.full((ei.size(1),), rel_id, dtype=torch.long)
                parts.append(torch.stack([ei[0] + offsets[src], rel, ei[1] + offsets[dst]], 1))
            return torch.cat(parts) if parts else torch.empty(0, 3, dtype=torch.long)

        type_ids = torch.cat(
            [torch.full((int(data[nt].num_nodes),), i, dtype=torch.long) for i, nt in enumerate(data.node_types)]
        )
        entity_types = torch.stack([torch.arange(start), type_ids], 1)
        return cls(
            triples_of(data, "the training graph"),
            triples_of(valid, "valid") if valid is not None else None,
            triples_of(test, "test") if test is not None else None,
            num_entities=start,
            num_relations=len(data.edge_types),
            relation_names=["__".join(et) for et in data.edge_types],
            entity_types=entity_types,
            type_names=list(data.node_types),
            name=name,
        )

    def to_hetero(self, split: str = "train"):
        """The inverse of :meth:`from_hetero`: one node type per entity type.

        Requires every entity to have exactly one type; relation ``r`` between types ``a`` and
        ``b`` becomes edge type ``(a, relation_name, b)``, where a name ``a__rel__b`` (as
        :meth:`from_hetero` writes them) gives ``rel``, unless another relation is also called
        ``rel``: then it keeps its whole name. Two relations of one name between the same types
        are refused.
        """
        from torch_geometric.data import HeteroData

        node_type = self.node_type
        if node_type is None:
            raise ValueError("to_hetero needs exactly one type per entity (entity_types)")
        type_names = self.type_names or [f"type{i}" for i in range(self.num_types)]
        rel_names = self.relation_names or [f"rel{i}" for i in range(self.num_relations)]
        local = torch.empty(self.num_entities, dtype=torch.long)
        data = HeteroData()
        for t, tname in enumerate(type_names):
            members = torch.nonzero(node_type == t).flatten()
            local[members] = torch.arange(members.numel())
            data[tname].num_nodes = members.numel()
        triples = self.split(split)
        src_t, dst_t = node_type[triples[:, 0]], node_type[triples[:, 2]]
        groups = torch.unique(torch.stack([src_t, triples[:, 1], dst_t], 1), dim=0)
        short = [n.split("__")[1] if n.count("__") == 2 else n for n in rel_names]
        uses = Counter(short)
        # A shortened name that another relation also goes by would merge the two edge types.
        names = [n if s != n and uses[s] > 1 else s for n, s in zip(rel_names, short, strict=True)]
        owner: dict[tuple, int] = {}  # edge type -> the relation it holds
        for s, r, d in groups.tolist():
            mask = (src_t == s) & (triples[:, 1] == r) & (dst_t == d)
            edge_type = (type_names[s], names[r], type_names[d])
            if owner.setdefault(edge_type, r) != r:
                raise ValueError(
                    f"relations {owner[edge_type]} and {r} are both named {names[r]!r} between "
                    f"{type_names[s]!r} and {type_names[d]!r}: name them apart to build a HeteroData"
                )
            data[edge_type].edge_index = torch.stack([local[triples[mask, 0]], local[triples[mask, 2]]])
        return data

    def statistics(self) -> dict:
        """Counts for logs and the ``gnnns datasets`` listing."""
        return {
            "entities": self.num_entities,
            "relations": self.num_relations,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "unseen_entities": int(self.unseen_entities.numel()),
            "types": self.num_types,
        }


def _as_triples(x: Tensor | None, split: str) -> Tensor:
    if x is None:
        return torch.empty(0, 3, dtype=torch.long)
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.size(1) != 3:
        raise ValueError(f"{split} triples must have shape [N, 3], got {list(x.shape)}")
    if x.is_floating_point():
        raise ValueError(f"{split} triples must be integer ids, got dtype {x.dtype}")
    return x.long().contiguous()
