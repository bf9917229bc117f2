"""Named benchmark datasets: where they come from, where they live locally, and how to load them.

The data root is, in order: the ``root`` argument, the ``GNNNS_DATA`` environment variable, then
``$XDG_CACHE_HOME/gnnns`` (``~/.cache/gnnns`` without it). It holds one folder per dataset
(``fb15k-237/``, ``wn18rr/``, ...); CoDEx may also sit as ``codex/codex-s/`` with its type files
one level up, as upstream lays it out. Missing files are downloaded from pinned upstream commits
into a temporary file, checked against the sha256 of their content, then renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import tempfile
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gnnns.data.graph import KnowledgeGraph
from gnnns.data.readers import DataFormatError, read_folder, read_text_lines
from gnnns.data.synthetic import DEFAULT_STATS, synthetic_kg

logger = logging.getLogger(__name__)

ENV_VAR = "GNNNS_DATA"
ENTITY_TYPES_FILE = "entity2types.json"
TYPE_LABELS_FILE = "types.en.json"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither present under the data root nor downloadable; the message lists the
    expected files and folders."""


class ChecksumError(ValueError):
    """A downloaded file's sha256 differs from the recipe's; nothing was written."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded for which no checksum is known."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the dataset folder, where to get it, its content hash.

    ``sha256`` is of the uncompressed content (a local ``.gz`` copy has the same content hash);
    ``None`` means no checksum is known and a download is only warned about.
    """

    name: str
    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetRecipe:
    """How to find, fetch and check one named dataset.

    Attributes:
        name (str): registry name, also the default folder name under the data root.
        description (str): one line for listings.
        files (tuple[RemoteFile, ...]): files of the dataset folder.
        counts (dict): expected ``KnowledgeGraph.statistics()`` values; a mismatch warns.
        folders (tuple[str, ...]): other accepted folders relative to the root (upstream layouts).
        type_files (tuple[RemoteFile, ...]): entity-type files, found in the dataset folder or
            its parent.
    """

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    counts: Mapping[str, int] = field(default_factory=dict)
    folders: tuple[str, ...] = ()
    type_files: tuple[RemoteFile, ...] = ()

    def candidates(self, root: Path) -> list[Path]:
        """Folders under ``root`` that may hold the dataset, the download target first."""
        return [root / self.name, *(root / f for f in self.folders)]

    def missing(self, folder: Path) -> list[RemoteFile]:
        """Files of this recipe not present in ``folder`` (type files: nor in its parent)."""
        gone = [f for f in self.files if find_local(folder, f.name) is None]
        return gone + [f for f in self.type_files if find_local(folder, f.name, parent=True) is None]


def find_local(folder: Path, name: str, parent: bool = False) -> Path | None:
    """``folder/name`` or ``folder/name.gz`` (then the same in the parent folder if asked), or None."""
    for place in (folder, folder.parent) if parent else (folder,):
        for path in (place / name, place / f"{name}.gz"):
            if path.is_file():
                return path
    return None


# Pinned upstream commits (the ones the offline copy was taken from), so a URL always serves the
# bytes its checksum describes.
_RAW = "https://raw.githubusercontent.com"
_KGE = f"{_RAW}/DeepGraphLearning/KnowledgeGraphEmbedding/2e440e0f9c687314d5ff67ead68ce985dc446e3a/data"
_PYKEEN = f"{_RAW}/pykeen/pykeen/05c7bbb20c952f3e5e958e694344ace4005b1bbb/src/pykeen/datasets"
_CODEX = f"{_RAW}/tsafavi/codex/3132e426c2a6b643b70bad679905a3a6270be440/data"
_SPLITS = ("train.txt", "valid.txt", "test.txt")


def _files(base: str, names: tuple[str, ...], sha256: Mapping[str, str] | None = None) -> tuple[RemoteFile, ...]:
    sha256 = sha256 or {}
    return tuple(RemoteFile(n, f"{base}/{n}", sha256.get(n)) for n in names)


def _counts(entities: int, relations: int, train: int, valid: int, test: int, **extra: int) -> dict[str, int]:
    return {
        "entities": entities,
        "relations": relations,
        "train": train,
        "valid": valid,
        "test": test,
        **extra,
    }


_CODEX_TYPES = (
    RemoteFile(
        ENTITY_TYPES_FILE,
        f"{_CODEX}/types/entity2types.json",
        "9c3797961498fc312a6d62c798b250c3ad501578a8ac07c0829a2862c627a878",
    ),
    RemoteFile(
        TYPE_LABELS_FILE,
        f"{_CODEX}/types/en/types.json",
        "2934c3bac72fd9e7dc8a6452a84845e8fa232264aaa505c4b81cad2b0e7c5626",
    ),
)


def _codex(size: str, counts: dict[str, int], sha256: Mapping[str, str] | None = None) -> DatasetRecipe:
    name = f"codex-{size}"
    note = "" if sha256 else "; checksums unknown"
    return DatasetRecipe(
        name,
        f"CoDEx-{size.upper()} (Safavi & Koutra 2020), Wikidata, with entity types{note}",
        _files(f"{_CODEX}/triples/{name}", _SPLITS, sha256),
        counts,
        folders=(f"codex/{name}",),
        type_files=_CODEX_TYPES,
    )


DATASETS: dict[str, DatasetRecipe] = {
    "fb15k-237": DatasetRecipe(
        "fb15k-237",
        "FB15k-237 (Toutanova & Chen 2015), Freebase without inverse leakage",
        _files(
            f"{_KGE}/FB15k-237",
            ("entities.dict", "relations.dict", *_SPLITS),
            {
                "entities.dict": "55666c4fb9c2990ef809e41d3a0023503b1f927fd00a1c947f21a805608f50ac",
                "relations.dict": "e98ebcc621a217ca80d44992cdf0ef5f0eb355ff9aff0ba1a3e939f6ca8fb095",
                "train.txt": "6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae",
                "valid.txt": "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
                "test.txt": "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574",
            },
        ),
        _counts(14541, 237, 272115, 17535, 20466, unseen_entities=36),
    ),
    "wn18rr": DatasetRecipe(
        "wn18rr",
        "WN18RR (Dettmers et al. 2018), WordNet without inverse leakage",
        _files(
            f"{_KGE}/wn18rr",
            ("entities.dict", "relations.dict", *_SPLITS),
            {
                "entities.dict": "3dc41455a835d7523b68a2d449a8ae9429ba8cf8be7db7e29b4cbadf6fbc092f",
                "relations.dict": "0cf033f5ea243c938d86e8e5e89b43676df040b9196ce495b92382e54ad59916",
                "train.txt": "038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df",
                "valid.txt": "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab",
                "test.txt": "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5",
            },
        ),
        _counts(40943, 11, 86835, 3034, 3134, unseen_entities=384),
    ),
    "umls": DatasetRecipe(
        "umls",
        "UMLS (Kok & Domingos 2007), ConvE split",
        _files(
            f"{_PYKEEN}/umls",
            _SPLITS,
            {
                "train.txt": "873ef4925516b83e7f6f8cc02b4be51d848828710a7f65a956f0ac4a9e452f35",
                "valid.txt": "025c98f8a4891e2a6582ec5b40ee0d904031edad9c52554522f4b7904820c98e",
                "test.txt": "a7eb529a3d2810fcc96341ccc97c625a5e202f8389673aa6bd317eeebbb79014",
            },
        ),
        _counts(135, 46, 5216, 652, 661),
    ),
    "nations": DatasetRecipe(
        "nations",
        "Nations (Kok & Domingos 2007), ConvE split",
        _files(
            f"{_PYKEEN}/nations",
            _SPLITS,
            {
                "train.txt": "0830fa9da8e5bba2ccdaa45b7bdc9130451ba66b09ff2708f35fccaf82473e57",
                "valid.txt": "2b337a62e51a2f45c283eac98a70d21b7e0e102136be1539b2a52c652a7b0530",
                "test.txt": "3971085165b47b6aeaec68058c6d8d98b3005e929db81268410b95ae4db770ab",
            },
        ),
        _counts(14, 55, 1592, 199, 201),
    ),
    # No checksum known for Kinship: the offline copy does not include it; downloads warn.
    "kinship": DatasetRecipe(
        "kinship",
        "Kinship (Kemp et al. 2006), ConvE split; checksums unknown",
        _files(f"{_PYKEEN}/kinships", _SPLITS),
        _counts(104, 25, 8544, 1068, 1074),
    ),
    "codex-s": _codex(
        "s",
        _counts(2034, 42, 32888, 1827, 1828, types=502),
        {
            "train.txt": "64f93b7f314f3936a6f65739721429db3f6a7c8f5a1e1104ec3bb544f7434f59",
            "valid.txt": "3831c0e57daef03c3a18cdd1a72e370b496f696c5218883d35c7d2ab8a6a772c",
            "test.txt": "27127fcb34688c4778e88a39ef3c9b540807da846021e9d9685660ac1838aca1",
        },
    ),
    # CoDEx-M/L, YAGO3-10: counts from the papers, no checksums known (not in the offline copy).
    "codex-m": _codex("m", _counts(17050, 51, 185584, 10310, 10311)),
    "codex-l": _codex("l", _counts(77951, 69, 551193, 30622, 30622)),
    "yago3-10": DatasetRecipe(
        "yago3-10",
        "YAGO3-10 (Mahdisoltani et al. 2015; Dettmers et al. 2018); checksums unknown",
        _files(f"{_KGE}/YAGO3-10", ("entities.dict", "relations.dict", *_SPLITS)),
        _counts(123182, 37, 1079040, 5000, 5000),
    ),
}
"""Every downloadable dataset by name; ``"synthetic"`` is generated instead (see :func:`synthetic_kg`)."""

_ALIASES = {"fb15k237": "fb15k-237", "kinships": "kinship", "yago310": "yago3-10"}
_OGB_NAMES = ("ogbl-wikikg2", "ogbl-biokg")  # read by gnnns.data.ogb from OGB's own files, never downloaded


def resolve_root(root: str | Path | None = None) -> tuple[Path, str]:
    """The data root and where it came from.

    Returns:
        ``(path, source)``, source being ``"root argument"``, ``"GNNNS_DATA"`` or ``"default cache"``.
    """
    if root is not None:
        return Path(root).expanduser(), "root argument"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "gnnns", "default cache"


def locate(recipe: DatasetRecipe, root: Path) -> tuple[Path, list[RemoteFile]]:
    """The folder of ``recipe`` under ``root`` and the files missing there.

    The first complete candidate folder wins; else the first existing one; else the download target.
    """
    fallback = None
    for folder in recipe.candidates(root):
        missing = recipe.missing(folder)
        if not missing:
            return folder, []
        if fallback is None and folder.is_dir():
            fallback = folder, missing
    if fallback is not None:
        return fallback
    target = recipe.candidates(root)[0]
    return target, recipe.missing(target)


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
    if isinstance(name_or_path, str):
        key = name_or_path.strip().lower().replace("_", "-")
        key = _ALIASES.get(key.replace("-", ""), key)
        if key == "synthetic":
            return synthetic_kg()
        if key in _OGB_NAMES:
            # Imported here: gnnns.data.ogb builds on this module.
            from gnnns.data.ogb import load_ogb

            return load_ogb(key, root)
        if key in DATASETS:
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


def download_file(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verifying its sha256 when known.

    ``dest`` appears only once complete and verified (an atomic rename); on any failure no file is
    left behind.

    Raises:
        ChecksumError: the content's sha256 differs from ``sha256``.
        OSError: the download or the write failed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    logger.info("downloading %s -> %s", url, dest)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ChecksumError(f"{url}: sha256 {digest.hexdigest()} != expected {sha256}; {dest} not written")
        if sha256 is None:
            warnings.warn(
                f"{dest}: downloaded from {url}, but could not be verified (no sha256 known); "
                f"its sha256 is {digest.hexdigest()}",
                UnverifiedDownloadWarning,
                stacklevel=2,
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


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
        warnings.warn(f"{recipe.name}: {detail}; the files may be another version", stacklevel=3)


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


def recipe_table() -> str:
    """Every recipe file as tab-separated ``dataset  file  sha256  url`` lines (``datasets/sources.tsv``)."""
    lines = ["dataset\tfile\tsha256\turl"]
    for recipe in DATASETS.values():
        for f in (*recipe.files, *recipe.type_files):
            lines.append(f"{recipe.name}\t{f.name}\t{f.sha256 or 'unknown'}\t{f.url}")
    return "\n".join(lines) + "\n"
