"""Knowledge graphs and the datasets they come from: readers, a registry of benchmarks, a toy world."""

from gnnns.data.graph import KnowledgeGraph
from gnnns.data.large_synthetic import wikikg2_like
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
    "ChecksumError",
    "DataFormatError",
    "DatasetNotFoundError",
    "DatasetRecipe",
    "DuplicateTriplesWarning",
    "KnowledgeGraph",
    "RemoteFile",
    "TripleIndex",
    "UnverifiedDownloadWarning",
    "list_datasets",
    "load_dataset",
    "read_folder",
    "resolve_root",
    "split_report",
    "synthetic_kg",
    "wikikg2_like",
]
