"""Knowledge graphs and the datasets they come from: readers, a registry of benchmarks, a toy world."""

from gnnns.data.eval_candidates import EvalCandidates, RandomEvalCandidates, StoredEvalCandidates
from gnnns.data.graph import KnowledgeGraph
from gnnns.data.large_synthetic import wikikg2_like
from gnnns.data.ogb import OGB_DATASETS, OGBDataset, import_ogb, load_ogb, write_ogb_layout
from gnnns.data.readers import DataFormatError, DuplicateTriplesWarning, read_folder, split_report
from gnnns.data.registry import (
    DATASETS,
    ChecksumError,
    DatasetNotFoundError,
    DatasetRecipe,
    RemoteFile,
    UnverifiedDownloadWarning,
    list_datasets,
    load_dataset,
    resolve_root,
)
from gnnns.data.synthetic import synthetic_kg
from gnnns.data.triple_index import TripleIndex

__all__ = [
    "DATASETS",
    "OGB_DATASETS",
    "ChecksumError",
    "DataFormatError",
    "DatasetNotFoundError",
    "DatasetRecipe",
    "DuplicateTriplesWarning",
    "EvalCandidates",
    "KnowledgeGraph",
    "OGBDataset",
    "RandomEvalCandidates",
    "RemoteFile",
    "StoredEvalCandidates",
    "TripleIndex",
    "UnverifiedDownloadWarning",
    "import_ogb",
    "list_datasets",
    "load_dataset",
    "load_ogb",
    "read_folder",
    "resolve_root",
    "split_report",
    "synthetic_kg",
    "wikikg2_like",
    "write_ogb_layout",
]
