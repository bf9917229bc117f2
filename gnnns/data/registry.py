"""Named benchmark datasets: where they come from, where they live locally, and how to load them.

The data root is, in order: the ``root`` argument, the ``GNNNS_DATA`` environment variable, then
``$XDG_CACHE_HOME/gnnns`` (``~/.cache/gnnns`` without it). It holds one folder per dataset
(``fb15k-237/``, ``wn18rr/``, ...); CoDEx may also sit as ``codex/codex-s/`` with its type files
one level up, as upstream lays it out. Missing files are downloaded from pinned upstream commits
into a temporary file, checked against the sha256 of their content, then renamed into place.

This module gathers the registry's names and lists the datasets; the parts live in
:mod:`~gnnns.data.recipes` (what a dataset is made of), :mod:`~gnnns.data.dataset_sources` (the
table of datasets), :mod:`~gnnns.data.dataset_files` (the data root and downloads) and
:mod:`~gnnns.data.loading` (:func:`load_dataset`).
"""

from __future__ import annotations

from pathlib import Path

from gnnns.data.dataset_files import (
    ENV_VAR,
    ChecksumError,
    DatasetNotFoundError,
    UnverifiedDownloadWarning,
    download_file,
    locate,
    resolve_root,
)
from gnnns.data.dataset_sources import DATASETS, recipe_table
from gnnns.data.loading import load_dataset
from gnnns.data.recipes import ENTITY_TYPES_FILE, TYPE_LABELS_FILE, DatasetRecipe, RemoteFile, find_local
from gnnns.data.synthetic import DEFAULT_STATS

__all__ = [
    "DATASETS",
    "ENTITY_TYPES_FILE",
    "ENV_VAR",
    "TYPE_LABELS_FILE",
    "ChecksumError",
    "DatasetNotFoundError",
    "DatasetRecipe",
    "RemoteFile",
    "UnverifiedDownloadWarning",
    "download_file",
    "find_local",
    "list_datasets",
    "load_dataset",
    "locate",
    "recipe_table",
    "resolve_root",
]


def list_datasets(root: str | Path | None = None) -> list[dict]:
    """One row per known dataset for ``gnnns datasets``, the OGB datasets last.

    Returns:
        dicts with ``name``, ``description``, ``present`` (complete under the root),
        ``path`` (its folder, or None), ``counts`` (expected statistics) and ``verified``
        (every file has a known checksum).
    """
    root_path, _ = resolve_root(root)
    rows = [
        {
            "name": "synthetic",
            "description": "embedded toy world of families, places and organisations (generated)",
            "present": True,
            "path": None,
            "counts": dict(DEFAULT_STATS),
            "verified": True,
        }
    ]
    for recipe in DATASETS.values():
        folder, missing = locate(recipe, root_path)
        rows.append(
            {
                "name": recipe.name,
                "description": recipe.description,
                "present": not missing,
                "path": None if missing else str(folder),
                "counts": dict(recipe.counts),
                "verified": all(f.sha256 for f in (*recipe.files, *recipe.type_files)),
            }
        )
    from gnnns.data.ogb import OGB_DATASETS  # here: gnnns.data.ogb builds on this module

    for meta in OGB_DATASETS.values():
        folder = root_path / meta.folder_name
        present = not meta.missing(folder)
        rows.append(
            {
                "name": meta.name,
                "description": f"{meta.description}; files from {meta.url}, never downloaded",
                "present": present,
                "path": str(folder) if present else None,
                "counts": dict(meta.counts),
                "verified": False,
            }
        )
    return rows
