"""Loading a dataset by name or folder: the names resolved, missing files fetched, entity types read.

Registry names map to recipes (:data:`~gnnns.data.dataset_sources.DATASETS`), to the generated
toy world, or to OGB's datasets; a folder path is read as it is. CoDEx-style entity-type files in
or beside a dataset folder give the graph entity types.
"""

from __future__ import annotations

import http.client
import json
import warnings
from pathlib import Path

from gnnns.data.dataset_files import ENV_VAR, DatasetNotFoundError, download_file, locate, resolve_root
from gnnns.data.dataset_sources import DATASETS
from gnnns.data.graph import KnowledgeGraph
from gnnns.data.readers import DataFormatError, read_folder, read_text_lines
from gnnns.data.recipes import ENTITY_TYPES_FILE, TYPE_LABELS_FILE, DatasetRecipe, find_local
from gnnns.data.synthetic import synthetic_kg

_ALIASES = {"fb15k237": "fb15k-237", "kinships": "kinship", "yago310": "yago3-10"}
_OGB_NAMES = ("ogbl-wikikg2", "ogbl-biokg")  # read by gnnns.data.ogb from OGB's own files, never downloaded


def _registry_key(name: str) -> str | None:
    """The registry or OGB name ``name`` stands for (case and ``_``/``-`` insensitive), or None."""
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key.replace("-", ""), key)
    return key if key == "synthetic" or key in _OGB_NAMES or key in DATASETS else None


def dataset_reference(name_or_path: str) -> str:
    """``name_or_path`` as a run should record it: a dataset name as given, an existing folder as
    an absolute path, so that the run can be evaluated or resumed from another directory."""
    if _registry_key(name_or_path) is not None:
        return name_or_path
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.is_dir() else name_or_path


def load_dataset(name_or_path: str | Path, root: str | Path | None = None, download: bool = True) -> KnowledgeGraph:
    """Load a dataset by registry name (see :data:`DATASETS`, plus ``"synthetic"`` and the OGB
    datasets ``"ogbl-wikikg2"``, ``"ogbl-biokg"``) or folder path.

    Args:
        name_or_path (str or Path): a name such as ``"fb15k-237"`` (case and ``_``/``-``
            insensitive), ``"synthetic"`` (generated, never downloaded), ``"ogbl-wikikg2"`` or
            ``"ogbl-biokg"`` (OGB's files under the root, read offline by
            :func:`~gnnns.data.load_ogb`), or a folder in the standard layout
            (:func:`~gnnns.data.read_folder`); a folder with ``entity2types.json`` in it or
            beside it gets entity types.
        root (str or Path, optional): data root; see :func:`resolve_root`.
        download (bool): fetch missing files of a named dataset; OGB datasets are never
            downloaded. (default: ``True``)

    Raises:
        DatasetNotFoundError: unknown name, or files missing and not downloadable.
        ChecksumError: a downloaded file does not match its recipe.
        DataFormatError: a file is malformed.
    """
    if isinstance(name_or_path, str) and (key := _registry_key(name_or_path)) is not None:
        if key == "synthetic":
            return synthetic_kg()
        if key in _OGB_NAMES:
            # Imported here: gnnns.data.ogb builds on gnnns.data.registry, which imports this module.
            from gnnns.data.ogb import load_ogb

            return load_ogb(key, root)
        return _load_recipe(DATASETS[key], root, download)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _read_typed_folder(path, path.name, typed=None)
    raise DatasetNotFoundError(
        f"{str(name_or_path)!r} is neither a known dataset (synthetic, {', '.join((*DATASETS, *_OGB_NAMES))}) nor an "
        "existing folder with train.txt, valid.txt, test.txt"
    )


def _load_recipe(recipe: DatasetRecipe, root: str | Path | None, download: bool) -> KnowledgeGraph:
    root_path, source = resolve_root(root)
    folder, missing = locate(recipe, root_path)
    if missing and not download:
        raise DatasetNotFoundError(_not_found_message(recipe, root_path, source, "download=False"))
    if missing:
        try:
            for remote in missing:
                download_file(remote.url, folder / remote.name, remote.sha256)
        except (OSError, http.client.HTTPException) as e:
            raise DatasetNotFoundError(_not_found_message(recipe, root_path, source, f"download failed: {e}")) from e
    kg = _read_typed_folder(folder, recipe.name, typed=bool(recipe.type_files))
    _check_counts(recipe, kg)
    return kg


def _not_found_message(recipe: DatasetRecipe, root: Path, source: str, reason: str) -> str:
    lines = [f"dataset {recipe.name!r} is not complete under the data root {root} (from {source}); {reason}."]
    lines.append("Expected files (each may also be gzipped as NAME.gz):")
    for i, folder in enumerate(recipe.candidates(root)):
        lines.append(f"  {'or in' if i else 'in'} {folder}/:")
        lines += [f"    {f.name}{_presence(folder, f.name)}" for f in recipe.files]
        lines += [
            f"    {f.name} (or in {folder.parent}/){_presence(folder, f.name, parent=True)}" for f in recipe.type_files
        ]
    lines.append(
        f"Put the files there, or point {ENV_VAR} at a folder holding one folder per dataset "
        f"(e.g. `export {ENV_VAR}=/data` with /data/{recipe.name}/train.txt), or pass root=..., "
        "or load with download=True where the network is reachable."
    )
    return "\n".join(lines)


def _presence(folder: Path, name: str, parent: bool = False) -> str:
    return "  [present]" if find_local(folder, name, parent) else "  [missing]"


def _read_typed_folder(folder: Path, name: str, typed: bool | None) -> KnowledgeGraph:
    """:func:`read_folder`, plus CoDEx-style entity types from files in or beside ``folder``.

    With ``typed=None`` (a folder given by path) the type files are used when present and when
    they type at least one entity, so a type file beside unrelated datasets is ignored.
    """
    types_file = find_local(folder, ENTITY_TYPES_FILE, parent=True) if typed is not False else None
    if types_file is None:
        return read_folder(folder, name=name)
    entity_types = _read_json(types_file)
    if not all(isinstance(v, list) for v in entity_types.values()):
        raise DataFormatError(f"{types_file}: expected a JSON object mapping entity id -> list of type ids")
    labels_file = find_local(folder, TYPE_LABELS_FILE, parent=True)
    labels = _type_labels(_read_json(labels_file)) if labels_file else None
    kg = read_folder(folder, name=name, entity_types=entity_types, type_labels=labels)
    if typed is None and len(kg.entity_types) == 0:
        kg.entity_types = kg.type_names = None
    return kg


def _type_labels(content: dict) -> dict[str, str]:
    """``types.en.json`` maps type id -> ``{"label": ..., ...}``; ids without a label keep the id."""
    return {key: value["label"] for key, value in content.items() if isinstance(value, dict) and "label" in value}


def _read_json(path: Path) -> dict:
    text = "\n".join(read_text_lines(path))
    try:
        content = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}, line {e.lineno}: invalid JSON ({e.msg}); expected a JSON object") from None
    if not isinstance(content, dict):
        raise DataFormatError(f"{path}, line 1: expected a JSON object keyed by id, found {type(content).__name__}")
    return content


def _check_counts(recipe: DatasetRecipe, kg: KnowledgeGraph) -> None:
    found = kg.statistics()
    wrong = {key: (value, found[key]) for key, value in recipe.counts.items() if found[key] != value}
    if wrong:
        detail = ", ".join(f"{key} {got:,} (expected {want:,})" for key, (want, got) in wrong.items())
        warnings.warn(f"{recipe.name}: {detail}; the files may be another version", stacklevel=4)
