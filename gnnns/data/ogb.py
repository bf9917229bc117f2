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

from pathlib import Path

from gnnns.data.graph import KnowledgeGraph
from gnnns.data.ogb_datasets import OGB_DATASETS, OGBDataset, ogb_dataset
from gnnns.data.ogb_layout import write_ogb_layout
from gnnns.data.ogb_offline import _not_found_message, _offline, import_ogb
from gnnns.data.ogb_schema import _HeteroSchema, _HomoSchema, _max_id
from gnnns.data.ogb_splits import _read_split, _read_split_file
from gnnns.data.registry import DatasetNotFoundError, resolve_root

__all__ = ["OGB_DATASETS", "OGBDataset", "import_ogb", "load_ogb", "ogb_dataset", "write_ogb_layout"]


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
