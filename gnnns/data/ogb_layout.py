"""A :class:`~gnnns.data.KnowledgeGraph` written as OGB's files, the layout its zip unpacks to (for tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gnnns.data.graph import KnowledgeGraph
from gnnns.data.ogb_datasets import ogb_dataset


def write_ogb_layout(kg: KnowledgeGraph, root: str | Path, name: str = "ogbl-wikikg2", processed: bool = False) -> Path:
    """Write ``kg`` as OGB's files of dataset ``name``, the layout its zip unpacks to, for tests and scale runs.

    Writes ``root/<ogbl_name>/`` with ``RELEASE_v1.txt``, the ``raw/`` CSV files OGB's loader
    parses into its graph (the training triples), and ``split/<split type>/{train,valid,test}.pt``:
    dicts of numpy arrays ``head``, ``relation``, ``tail`` ``[N]`` and, for valid and test,
    ``head_neg`` / ``tail_neg`` ``[N, K]`` from ``kg.eval_negatives``. For ogbl-biokg every
    entity needs exactly one type (``kg.entity_types``): ids are written as local ids of their
    type with ``head_type`` / ``tail_type`` name lists, and candidates must be of the corrupted
    side's type. Entity ids round-trip through :func:`load_ogb` when every type's entities form
    a contiguous id range in sorted type-name order (as :func:`load_ogb` numbers them).

    Args:
        kg (KnowledgeGraph): the graph, with ``eval_negatives`` for ``"valid"`` and ``"test"``.
        root (str or Path): the data root to write under.
        name (str): ``"ogbl-wikikg2"`` or ``"ogbl-biokg"``. (default: ``"ogbl-wikikg2"``)
        processed (bool): also write ``processed/data_processed``, the parsed graph OGB saves on
            its first load, so that loading skips parsing ``raw/``. (default: False)

    Returns:
        The dataset folder.
    """
    meta = ogb_dataset(name)
    for split in ("valid", "test"):
        if split not in kg.eval_negatives:
            raise ValueError(
                f"write_ogb_layout: {kg.name} has no eval_negatives[{split!r}]; OGB's {split} split needs them"
            )
    folder = Path(root) / meta.folder_name
    split_dir = folder / "split" / meta.split
    for sub in (folder / "raw", folder / "processed", split_dir):
        sub.mkdir(parents=True, exist_ok=True)
    (folder / f"RELEASE_v{meta.version}.txt").write_text(
        f"{meta.name}, release {meta.version}, written by gnnns.data.write_ogb_layout\n", encoding="utf-8"
    )
    writer = _HeteroWriter(kg) if meta.hetero else _HomoWriter(kg)
    graph = writer.write_raw(folder / "raw")
    if processed:
        torch.save(graph, folder / "processed" / "data_processed", pickle_protocol=4)
    for split in ("train", "valid", "test"):
        torch.save(writer.split_dict(split), split_dir / f"{split}.pt")
    return folder


def _write_csv(path: Path, array: np.ndarray | list, header: Sequence[str] | None = None) -> None:
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError('write_ogb_layout writes CSV with pandas: pip install "gnnns[ogb]"') from e
    frame = pd.DataFrame(array, columns=list(header) if header is not None else None)
    frame.to_csv(path, header=header is not None, index=False, compression={"method": "gzip", "compresslevel": 1})


def _split_candidates(kg: KnowledgeGraph, split: str) -> tuple[np.ndarray, np.ndarray]:
    head, tail = kg.eval_negatives[split].batch(0, len(kg.split(split)))
    return head.numpy(), tail.numpy()


class _HomoWriter:
    """ogbl-wikikg2's layout: one homogeneous graph of global ids."""

    def __init__(self, kg: KnowledgeGraph):
        self.kg = kg

    def write_raw(self, raw: Path) -> dict:
        train = self.kg.train.numpy()
        _write_csv(raw / "edge.csv.gz", train[:, [0, 2]])
        _write_csv(raw / "edge_reltype.csv.gz", train[:, 1:2])
        _write_csv(raw / "num-node-list.csv.gz", [[self.kg.num_entities]])
        _write_csv(raw / "num-edge-list.csv.gz", [[len(train)]])
        return {
            "edge_index": np.ascontiguousarray(train[:, [0, 2]].T),
            "edge_feat": None,
            "node_feat": None,
            "edge_reltype": np.ascontiguousarray(train[:, 1:2]),
            "num_nodes": self.kg.num_entities,
        }

    def split_dict(self, split: str) -> dict:
        triples = self.kg.split(split).numpy()
        out = {"head": triples[:, 0].copy(), "relation": triples[:, 1].copy(), "tail": triples[:, 2].copy()}
        if split != "train":
            out["head_neg"], out["tail_neg"] = _split_candidates(self.kg, split)
        return out


class _HeteroWriter:
    """ogbl-biokg's layout: per-type local ids, one folder of edges per (head type, relation, tail type)."""

    def __init__(self, kg: KnowledgeGraph):
        node_type = kg.node_type
        if node_type is None:
            raise ValueError(f"write_ogb_layout: {kg.name} needs exactly one entity type per entity for ogbl-biokg")
        self.kg = kg
        self.node_type = node_type.numpy()
        self.type_names = list(kg.type_names or [f"type{i}" for i in range(kg.num_types)])
        counts = np.bincount(self.node_type, minlength=len(self.type_names))
        # Local id: position among the entities of the same type, in global id order.
        order = np.argsort(self.node_type, kind="stable")
        self.local = np.empty(kg.num_entities, dtype=np.int64)
        self.local[order] = np.arange(kg.num_entities) - np.repeat(np.cumsum(counts) - counts, counts)
        self.counts = counts
        rel_names = kg.relation_names or [f"rel{r}" for r in range(kg.num_relations)]
        self.relation_names = [n.split("__")[1] if n.count("__") == 2 else n for n in rel_names]
        for text in (*self.type_names, *self.relation_names):
            if "___" in text or "/" in text or not text:
                raise ValueError(f"write_ogb_layout: name {text!r} cannot be part of an OGB folder name")

    def write_raw(self, raw: Path) -> dict:
        _write_csv(raw / "num-node-dict.csv.gz", [self.counts.tolist()], header=self.type_names)
        train = self.kg.train.numpy()
        head_t, tail_t = self.node_type[train[:, 0]], self.node_type[train[:, 2]]
        num_types, num_relations = len(self.type_names), self.kg.num_relations
        key = (head_t * num_relations + train[:, 1]) * num_types + tail_t
        order = np.argsort(key, kind="stable")
        groups, starts = np.unique(key[order], return_index=True)
        triplets, graph = [], {"edge_index_dict": {}, "edge_reltype": {}}
        for group, rows in zip(groups.tolist(), np.split(order, starts[1:]), strict=True):
            h, r, t = group // num_types // num_relations, group // num_types % num_relations, group % num_types
            triplet = (self.type_names[h], self.relation_names[r], self.type_names[t])
            triplets.append(triplet)
            edges = self.local[train[rows][:, [0, 2]]]
            reltype = np.full((len(rows), 1), r, dtype=np.int64)
            folder = raw / "relations" / "___".join(triplet)
            folder.mkdir(parents=True, exist_ok=True)
            _write_csv(folder / "edge.csv.gz", edges)
            _write_csv(folder / "num-edge-list.csv.gz", [[len(rows)]])
            _write_csv(folder / "edge_reltype.csv.gz", reltype)
            graph["edge_index_dict"][triplet] = np.ascontiguousarray(edges.T)
            graph["edge_reltype"][triplet] = reltype
        _write_csv(raw / "triplet-type-list.csv.gz", triplets)
        # The dicts OGB's reader builds, with node types and triplets in its sorted order.
        return {
            "edge_index_dict": dict(sorted(graph["edge_index_dict"].items())),
            "edge_feat_dict": None,
            "node_feat_dict": None,
            "num_nodes_dict": {
                t: int(self.counts[i]) for i, t in sorted(enumerate(self.type_names), key=lambda x: x[1])
            },
            "edge_reltype": dict(sorted(graph["edge_reltype"].items())),
        }

    def split_dict(self, split: str) -> dict:
        triples = self.kg.split(split).numpy()
        names = np.array(self.type_names, dtype=object)
        head_t, tail_t = self.node_type[triples[:, 0]], self.node_type[triples[:, 2]]
        out = {
            "head": self.local[triples[:, 0]],
            "relation": triples[:, 1].copy(),
            "tail": self.local[triples[:, 2]],
            # OGB stores the type of each triple's head and tail as a list of names.
            "head_type": names[head_t].tolist(),
            "tail_type": names[tail_t].tolist(),
        }
        if split != "train":
            for key, cands, types in zip(
                ("head_neg", "tail_neg"), _split_candidates(self.kg, split), (head_t, tail_t), strict=True
            ):
                if (self.node_type[cands] != types[:, None]).any():
                    raise ValueError(
                        f"write_ogb_layout: {split} {key} holds entities of another type than the corrupted side; "
                        "ogbl-biokg's candidates are local ids of that side's type"
                    )
                out[key] = self.local[cands]
        return out
