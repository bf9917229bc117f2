"""OGB's knowledge-graph datasets, ogbl-wikikg2 and ogbl-biokg, read offline through the ``ogb`` package.

Hu et al., "Open Graph Benchmark: Datasets for Machine Learning on Graphs", NeurIPS 2020
(https://arxiv.org/abs/2005.00687). OGB's own :class:`ogb.linkproppred.LinkPropPredDataset`
reads the files; gnnns only makes sure it never downloads, never asks a question on stdin and
never checks PyPI for a newer release, and turns its per-split dictionaries of numpy arrays into
a :class:`~gnnns.data.KnowledgeGraph` without a Python object per triple.

The files sit under the gnnns data root (:func:`~gnnns.data.resolve_root`) in the folder OGB's
loader uses, ``ogbl_wikikg2/`` or ``ogbl_biokg/`` (the downloaded zip unpacks to
``wikikg-v2/`` / ``biokg/``; rename it). See ``datasets/ogb.md``.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from gnnns.data.eval_candidates import EvalCandidates, StoredEvalCandidates
from gnnns.data.graph import KnowledgeGraph
from gnnns.data.readers import DataFormatError
from gnnns.data.registry import ENV_VAR, DatasetNotFoundError, resolve_root

_NO_WEIGHTS_ONLY = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
_CHUNK_ROWS = 1 << 16  # candidate rows converted at a time: 64k x 500 x 8 B = 256 MB of int64 at most
_INT32_MAX = 2**31 - 1
_ABSENT = object()


@dataclass(frozen=True)
class OGBDataset:
    """What gnnns knows of one OGB link-prediction dataset (facts from ogb's ``master.csv``).

    Attributes:
        name (str): OGB name, e.g. ``"ogbl-wikikg2"``.
        description (str): one line for listings.
        download_name (str): the zip's name and the folder it unpacks to.
        split (str): the split type, the folder under ``split/``.
        hetero (bool): typed nodes (``head_type`` / ``tail_type`` per triple).
        counts (dict): the dataset's statistics, as :meth:`KnowledgeGraph.statistics` names them.
        version (int): the release, the ``RELEASE_v{version}.txt`` file OGB checks for.
    """

    name: str
    description: str
    download_name: str
    split: str
    hetero: bool
    counts: Mapping[str, int] = field(default_factory=dict)
    version: int = 1

    @property
    def url(self) -> str:
        """Where OGB serves the zip."""
        return f"http://snap.stanford.edu/ogb/data/linkproppred/{self.download_name}.zip"

    @property
    def folder_name(self) -> str:
        """The folder under the data root: OGB's name with ``_`` for ``-``."""
        return self.name.replace("-", "_")

    @property
    def raw_files(self) -> tuple[str, ...]:
        """Files of ``raw/`` that OGB parses when ``processed/data_processed`` is absent."""
        if self.hetero:
            return ("raw/num-node-dict.csv.gz", "raw/triplet-type-list.csv.gz")
        return ("raw/edge.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz", "raw/edge_reltype.csv.gz")

    def missing(self, folder: Path) -> list[str]:
        """What OGB would need but ``folder`` lacks, as paths relative to it (empty: complete)."""
        gone = [] if (folder / f"RELEASE_v{self.version}.txt").is_file() else [f"RELEASE_v{self.version}.txt"]
        if not (folder / "processed" / "data_processed").is_file():
            gone += [f"{f} (or processed/data_processed)" for f in self.raw_files if not (folder / f).is_file()]
        split_dir = folder / "split" / self.split
        if not (split_dir / "split_dict.pt").is_file():
            gone += [
                f"split/{self.split}/{s}.pt"
                for s in ("train", "valid", "test")
                if not (split_dir / f"{s}.pt").is_file()
            ]
        return gone


OGB_DATASETS: dict[str, OGBDataset] = {
    "ogbl-wikikg2": OGBDataset(
        "ogbl-wikikg2",
        "OGB ogbl-wikikg2 (Wikidata, time split; 500 + 500 provided negatives per query)",
        "wikikg-v2",
        "time",
        hetero=False,
        counts={"entities": 2_500_604, "relations": 535, "train": 16_109_182, "valid": 429_456, "test": 598_543},
    ),
    "ogbl-biokg": OGBDataset(
        "ogbl-biokg",
        "OGB ogbl-biokg (biomedical, 5 node types, random split; typed provided negatives)",
        "biokg",
        "random",
        hetero=True,
        counts={"entities": 93_773, "relations": 51, "train": 4_762_678, "valid": 162_886, "test": 162_870, "types": 5},
    ),
}
"""The OGB datasets gnnns loads, by OGB name."""


def ogb_dataset(name: str) -> OGBDataset:
    """The :class:`OGBDataset` of ``name`` (case and ``_``/``-`` insensitive), or :class:`DatasetNotFoundError`."""
    key = name.strip().lower().replace("_", "-")
    if key not in OGB_DATASETS:
        raise DatasetNotFoundError(
            f"{name!r} is not an OGB dataset gnnns reads; expected one of {', '.join(OGB_DATASETS)}"
        )
    return OGB_DATASETS[key]


def import_ogb() -> ModuleType:
    """``ogb.linkproppred``, imported without the PyPI version check ``ogb`` starts on import.

    ``ogb`` asks the ``outdated`` package for its latest release in a background thread (a network
    call) when ``outdated`` imports; hiding ``outdated`` while ``ogb`` first imports skips it.

    Raises:
        ImportError: ``ogb`` is not installed (``pip install "gnnns[ogb]"``).
    """
    saved = sys.modules.get("outdated", _ABSENT)
    sys.modules["outdated"] = None  # `from outdated import ...` raises ImportError; ogb then skips the check
    try:
        import ogb.linkproppred as linkproppred
    except ImportError as e:
        raise ImportError(
            f'reading OGB datasets needs the `ogb` package: pip install "gnnns[ogb]" (importing it failed: {e})'
        ) from e
    finally:
        if saved is _ABSENT:
            del sys.modules["outdated"]
        else:
            sys.modules["outdated"] = saved
    return linkproppred


def _refuse_download(url: str, *args, **kwargs):
    raise DatasetNotFoundError(
        f"ogb tried to download {url}; gnnns reads OGB datasets offline only. Download and unpack it "
        "yourself (see datasets/ogb.md)."
    )


@contextmanager
def _offline(linkproppred: ModuleType) -> Iterator[None]:
    """Let ``ogb`` read pickled numpy arrays with ``torch.load`` and forbid it to download.

    ``ogb`` calls ``torch.load`` without ``weights_only``, which newer torch defaults to True and
    which cannot read OGB's numpy arrays; the environment variable restores the old default for
    those calls only. Its download helpers would open the network and, above 1 GB, ask on stdin.
    """
    module = sys.modules[linkproppred.LinkPropPredDataset.__module__]
    saved_env = os.environ.get(_NO_WEIGHTS_ONLY)
    saved_helpers = module.decide_download, module.download_url
    os.environ[_NO_WEIGHTS_ONLY] = "1"
    module.decide_download = module.download_url = _refuse_download
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f".*{_NO_WEIGHTS_ONLY}.*")
            yield
    finally:
        module.decide_download, module.download_url = saved_helpers
        if saved_env is None:
            del os.environ[_NO_WEIGHTS_ONLY]
        else:
            os.environ[_NO_WEIGHTS_ONLY] = saved_env


def _not_found_message(meta: OGBDataset, root: Path, source: str, folder: Path, missing: list[str]) -> str:
    lines = [f"{meta.name} is not complete under the data root {root} (from {source}); missing in {folder}/:"]
    lines += [f"  {path}" for path in missing]
    others = sorted(p.name for p in folder.glob("RELEASE_v*.txt")) if folder.is_dir() else []
    if others and f"RELEASE_v{meta.version}.txt" in missing:
        lines.append(f"  (found {', '.join(others)}: another release of the dataset than the installed ogb expects)")
    lines += [
        "gnnns never downloads OGB data. Fetch and unpack it once:",
        f"  cd {root} && wget {meta.url} && unzip {meta.download_name}.zip",
        f"  mv {meta.download_name} {meta.folder_name}   # OGB's loader reads it under this name",
        f"or point {ENV_VAR} at the folder that holds {meta.folder_name}/, or pass root=...",
    ]
    return "\n".join(lines)


def load_ogb(name: str, root: str | Path | None = None) -> KnowledgeGraph:
    r"""Load ogbl-wikikg2 or ogbl-biokg from OGB's files under the data root, offline.

    Triples are ``[N, 3]`` int64 ``(head, relation, tail)``; the provided negatives of valid and
    test become :attr:`KnowledgeGraph.eval_negatives` (:class:`StoredEvalCandidates`, int32),
    so evaluation follows OGB's protocol. ogbl-biokg's per-type ids become global ids: node type
    :math:`c` (in OGB's sorted order) owns the contiguous range
    :math:`[o_c, o_c + n_c)`, the order :meth:`KnowledgeGraph.from_hetero` uses, so
    :meth:`KnowledgeGraph.to_hetero` gives back a ``HeteroData`` with its node types; its provided
    negatives (local ids of the corrupted side's type) are shifted the same way.

    Memory: what stays is the triples as int64 and the candidates as int32; for ogbl-wikikg2
    0.41 GB and :math:`(429{,}456 + 598{,}543) \times 1000 \times 4` B = 4.1 GB. Each split file
    is read alone, the largest (test, 4.8 GB of int64 candidates) first, streamed out of its zip
    container, and its candidates converted to int32 a chunk at a time; the transient peak is
    about twice that file, since a protocol-2 pickle decodes each numpy array through a string
    (measured: +1.19 GB for ogbl-wikikg2's shape at 1/8 size, +2.38 GB at 1/4). When
    ``processed/data_processed`` is absent, OGB parses ``raw/`` once and writes it.

    Args:
        name (str): ``"ogbl-wikikg2"`` or ``"ogbl-biokg"`` (case and ``_``/``-`` insensitive).
        root (str or Path, optional): data root holding ``ogbl_wikikg2/`` or ``ogbl_biokg/``;
            see :func:`~gnnns.data.resolve_root`.

    Raises:
        DatasetNotFoundError: unknown name, or a file OGB would read is missing (the message lists
            them and how to get them).
        ImportError: the ``ogb`` package is not installed.
        DataFormatError: a split file lacks an entry or holds ids out of range.
    """
    meta = ogb_dataset(name)
    root_path, source = resolve_root(root)
    folder = root_path / meta.folder_name
    missing = meta.missing(folder)
    if missing:
        raise DatasetNotFoundError(_not_found_message(meta, root_path, source, folder, missing))
    linkproppred = import_ogb()
    # OGB writes the parsed raw files there, and would fail if the folder were not there.
    (folder / "processed").mkdir(exist_ok=True)
    with _offline(linkproppred):
        dataset = linkproppred.LinkPropPredDataset(meta.name, root=str(root_path))
    graph = dataset.graph
    dataset.graph = None  # only its counts and relation ids are needed; free its edge arrays
    if meta.hetero:
        schema = _HeteroSchema.from_graph(graph)
    else:
        schema = _HomoSchema(int(graph["num_nodes"]), _max_id(graph["edge_reltype"]))
    del graph

    split_dir = Path(dataset.root) / "split" / dataset.meta_info["split"]
    bundled = None
    if (split_dir / "split_dict.pt").is_file():
        with _offline(linkproppred):
            bundled = dataset.get_edge_split()
    triples, candidates = {}, {}
    # The largest file first, while little else is held.
    for split in ("test", "valid", "train"):
        path = split_dir / f"{split}.pt"
        part = bundled.pop(split) if bundled is not None else _read_split_file(path)
        triples[split], candidates[split] = _read_split(part, split, path, schema)
        del part
    num_relations = max([schema.max_relation, *(int(t[:, 1].max()) for t in triples.values() if len(t))]) + 1
    return KnowledgeGraph(
        triples["train"],
        triples["valid"],
        triples["test"],
        num_entities=schema.num_entities,
        num_relations=num_relations,
        relation_names=schema.relation_names(num_relations),
        entity_types=schema.entity_types(),
        type_names=schema.type_names,
        name=meta.name,
        eval_negatives={s: candidates[s] for s in ("valid", "test") if candidates[s] is not None},
    )


class _HoldsTensors(Exception):
    """The pickle refers to torch storages, which only :func:`torch.load` can restore."""


class _NumpyUnpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        raise _HoldsTensors(pid)


def _read_split_file(path: Path) -> dict:
    """OGB's split dict from ``path``, streaming the pickle out of torch's zip container.

    OGB's split files hold numpy arrays. :func:`torch.load` would first read the whole pickle into
    memory and then build the arrays from it (holding the file twice); streaming it holds each
    array and its decoded bytes only. Files in the legacy format, or holding tensors, go to
    :func:`torch.load` (``weights_only=False``: OGB's arrays are pickled numpy objects).
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            records = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(records) == 1:
                with archive.open(records[0]) as stream:
                    try:
                        return _NumpyUnpickler(stream).load()
                    except _HoldsTensors:
                        pass
    return torch.load(path, map_location="cpu", weights_only=False)


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


def _read_split(part: dict, split: str, path: Path, schema) -> tuple[Tensor, EvalCandidates | None]:
    """Triples ``[N, 3]`` int64 and, when the file has ``head_neg``/``tail_neg``, their candidates."""
    head, head_types = schema.global_ids(part, "head", path)
    tail, tail_types = schema.global_ids(part, "tail", path)
    relation = _int_array(part, "relation", path, ndim=1)
    if not len(head) == len(relation) == len(tail):
        raise DataFormatError(f"{path}: head, relation and tail have {len(head)}, {len(relation)}, {len(tail)} rows")
    triples = torch.from_numpy(np.stack([head, relation, tail], 1).astype(np.int64, copy=False))
    if "head_neg" not in part and "tail_neg" not in part:
        return triples, None
    dtype = torch.int32 if schema.num_entities <= _INT32_MAX else torch.int64
    head_neg = _candidates(part, "head_neg", head_types, len(triples), path, schema, dtype)
    tail_neg = _candidates(part, "tail_neg", tail_types, len(triples), path, schema, dtype)
    return triples, StoredEvalCandidates(head_neg, tail_neg)


def _candidates(part: dict, key: str, types, rows: int, path: Path, schema, dtype: torch.dtype) -> Tensor:
    """OGB's candidate array as global ids in ``dtype``, converted a chunk of rows at a time so that
    no second full-size int64 array exists."""
    source = _int_array(part, key, path, ndim=2)
    if len(source) != rows:
        raise DataFormatError(f"{path}: {key} has {len(source)} rows but the split has {rows} triples")
    out = torch.empty(source.shape, dtype=dtype)
    target = out.numpy()
    for start in range(0, rows, _CHUNK_ROWS):
        block = source[start : start + _CHUNK_ROWS]
        block_types = types[start : start + _CHUNK_ROWS] if types is not None else None
        schema.check_ids(block, block_types, path, key, start)
        target[start : start + len(block)] = block + schema.offsets_of(block_types)
    return out


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
