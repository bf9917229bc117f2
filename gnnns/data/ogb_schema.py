"""Node ids of OGB's split files as gnnns's global entity ids, checked against the graph's counts.

ogbl-wikikg2 holds global ids already (:class:`_HomoSchema`); ogbl-biokg holds local ids per node
type, and node type :math:`c` (in OGB's sorted order) owns the global range :math:`[o_c, o_c + n_c)`
(:class:`_HeteroSchema`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gnnns.data.readers import DataFormatError


def _max_id(values) -> int:
    values = np.asarray(values)
    return int(values.max()) if values.size else -1


@dataclass
class _HomoSchema:
    """Entity count and relation ids of an untyped OGB graph (ogbl-wikikg2)."""

    num_entities: int
    max_relation: int
    type_names = None  # untyped: no entity types

    def relation_names(self, num_relations: int) -> None:
        return None

    def entity_types(self) -> None:
        return None

    def global_ids(self, part: dict, side: str, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """Ids of ``part[side]`` (already global) and no per-row type."""
        return _int_array(part, side, path, ndim=1), None

    def check_ids(self, block: np.ndarray, types: np.ndarray | None, path: Path, key: str, start: int) -> None:
        if block.size and (int(block.min()) < 0 or int(block.max()) >= self.num_entities):
            raise DataFormatError(
                f"{path}: {key} rows {start}.. hold entity ids in [{int(block.min())}, {int(block.max())}]; "
                f"expected 0 .. {self.num_entities - 1}"
            )

    def offsets_of(self, types: np.ndarray | None) -> int:
        return 0


@dataclass
class _HeteroSchema:
    """Node types (sorted, as OGB orders them), their counts and global-id offsets, and relation names."""

    type_names: list[str]
    counts: np.ndarray
    max_relation: int
    names: dict[int, str]

    @classmethod
    def from_graph(cls, graph: dict) -> _HeteroSchema:
        num_nodes = graph["num_nodes_dict"]
        names = {}
        for (head_type, relation, tail_type), reltype in graph.get("edge_reltype", {}).items():
            reltype = np.asarray(reltype).reshape(-1)
            if reltype.size:
                names[int(reltype[0])] = f"{head_type}__{relation}__{tail_type}"
        return cls(
            type_names=list(num_nodes),
            counts=np.array([int(n) for n in num_nodes.values()], dtype=np.int64),
            max_relation=max(names, default=-1),
            names=names,
        )

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)

    @property
    def num_entities(self) -> int:
        return int(self.counts.sum())

    def relation_names(self, num_relations: int) -> list[str]:
        return [self.names.get(r, f"rel{r}") for r in range(num_relations)]

    def entity_types(self) -> Tensor:
        type_of = torch.repeat_interleave(torch.arange(len(self.counts)), torch.from_numpy(self.counts))
        return torch.stack([torch.arange(self.num_entities), type_of], 1)

    def type_codes(self, part: dict, key: str, path: Path) -> np.ndarray:
        """Type id per triple from OGB's type names (a list or array of strings), vectorised."""
        import pandas as pd

        if key not in part:
            raise DataFormatError(
                f"{path}: no {key!r} entry (found {sorted(part)}); expected the node type of every triple's "
                f"{key.removesuffix('_type')}"
            )
        codes = pd.Categorical(part[key], categories=self.type_names).codes.astype(np.int64)
        if codes.size and int(codes.min()) < 0:
            unknown = sorted(set(pd.unique(np.asarray(part[key], dtype=object)[codes < 0])))
            raise DataFormatError(f"{path}: {key} holds unknown node types {unknown[:5]}; expected {self.type_names}")
        return codes

    def global_ids(self, part: dict, side: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Global ids of ``part[side]`` (local ids of the triple's ``{side}_type``) and the type per row."""
        local = _int_array(part, side, path, ndim=1)
        types = self.type_codes(part, f"{side}_type", path)
        if len(types) != len(local):
            raise DataFormatError(f"{path}: {len(local)} {side} ids but {len(types)} {side}_type entries")
        self.check_ids(local[:, None], types, path, side, 0)
        return local + self.offsets[types], types

    def check_ids(self, block: np.ndarray, types: np.ndarray, path: Path, key: str, start: int) -> None:
        bound = self.counts[types][:, None]
        bad = (block < 0) | (block >= bound)
        if bad.any():
            row = int(np.nonzero(bad.any(1))[0][0])
            raise DataFormatError(
                f"{path}: {key} row {start + row} holds local id {int(block[row][bad[row]][0])} of node type "
                f"{self.type_names[types[row]]!r}, which has {int(bound[row, 0])} nodes"
            )

    def offsets_of(self, types: np.ndarray) -> np.ndarray:
        return self.offsets[types][:, None]


def _int_array(part: dict, key: str, path: Path, ndim: int) -> np.ndarray:
    if key not in part:
        raise DataFormatError(
            f"{path}: no {key!r} entry (found {sorted(part)}); expected OGB's split dict with head, relation, "
            "tail (and head_neg, tail_neg in valid and test)"
        )
    value = part[key]
    array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if array.ndim != ndim or not np.issubdtype(array.dtype, np.integer):
        raise DataFormatError(
            f"{path}: {key} is {array.dtype} of shape {list(array.shape)}; expected {ndim}-d integer ids"
        )
    return array
