"""Read knowledge graphs stored as tab-separated triple files (the RotatE / ConvE folder layout).

A dataset folder holds ``train.txt``, ``valid.txt`` and ``test.txt`` (each may be gzipped as
``train.txt.gz`` ...), one ``head<TAB>relation<TAB>tail`` triple per line, LF or CRLF line endings,
UTF-8. Optional ``entities.dict`` / ``relations.dict`` files (``id<TAB>name``, ids ``0..n-1``) fix
the ids; without them ids are given in order of first appearance. Names stay strings, so WN18RR's
synset offsets keep their leading zeros. Whitespace around a field (a trailing space, a stray
carriage return) is dropped, so ``"b "`` and ``"b"`` name one entity; spaces inside a name stay.

Blank lines are allowed only at the end of a file; a blank line anywhere else is reported as a
malformed line, because in practice it means two files were concatenated or one was truncated.
"""

from __future__ import annotations

import codecs
import gzip
import itertools
import logging
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from gnnns.data.graph import SPLITS, KnowledgeGraph

logger = logging.getLogger(__name__)

TRIPLE_FIELDS = "3 tab-separated fields head<TAB>relation<TAB>tail"
DICT_FIELDS = "2 tab-separated fields id<TAB>name"


class DataFormatError(ValueError):
    """A dataset file is missing, malformed or inconsistent; the message names file and line."""


class DuplicateTriplesWarning(UserWarning):
    """Triples repeat inside a split or occur in several splits; they are kept as they are."""


def read_folder(
    path: str | Path,
    name: str | None = None,
    entity_types: Mapping[str, Sequence[str]] | None = None,
    type_labels: Mapping[str, str] | None = None,
) -> KnowledgeGraph:
    r"""Read a dataset folder in the standard layout into a :class:`KnowledgeGraph`.

    Without ``entities.dict`` / ``relations.dict`` the vocabulary is every name of
    :math:`\text{train} \cup \text{valid} \cup \text{test}` in order of first appearance, reading
    train, then valid, then test, line by line, head before tail; ids are therefore deterministic.

    Duplicate triples and triples shared by several splits are kept (the benchmark is what it is)
    but reported through a :class:`DuplicateTriplesWarning`; the counts are in the ``report``
    attribute of the result (see :func:`split_report`).

    Args:
        path (str or Path): the dataset folder.
        name (str, optional): dataset name for logs; the folder name by default.
        entity_types (Mapping[str, Sequence[str]], optional): entity name :math:`\to` its type keys.
            Only types used by the dataset's entities get ids, dense in order of first use.
        type_labels (Mapping[str, str], optional): type key :math:`\to` readable label, used as
            ``type_names`` where present.

    Returns:
        KnowledgeGraph with ``train [N_train, 3]``, ``valid``, ``test``, entity/relation names,
        optional ``entity_types [M, 2]``, and a ``report`` dict.

    Raises:
        DataFormatError: a split file is missing, empty or malformed, or a dict file is invalid.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: not a folder; expected a folder with train.txt, valid.txt, test.txt")
    columns = {split: _read_triple_file(find_split_file(folder, split)) for split in SPLITS}
    entities = _vocabulary(folder, "entities.dict", columns, "entity")
    relations = _vocabulary(folder, "relations.dict", columns, "relation")
    triples = {split: _encode(cols, entities, relations) for split, cols in columns.items()}
    pairs, type_names = _type_pairs(entities.names, entity_types, type_labels)
    kg = KnowledgeGraph(
        triples["train"],
        triples["valid"],
        triples["test"],
        num_entities=len(entities.names),
        num_relations=len(relations.names),
        entity_names=entities.names,
        relation_names=relations.names,
        entity_types=pairs,
        type_names=type_names,
        name=name or folder.name,
    )
    kg.report = split_report(kg)
    _warn_about_report(kg.report, kg.name)
    return kg


def find_split_file(folder: Path, split: str) -> Path:
    """The file of ``split`` in ``folder``: ``{split}.txt`` or ``{split}.txt.gz``, exactly one."""
    return _find_one(folder, f"{split}.txt", required=True)


def _find_one(folder: Path, filename: str, required: bool) -> Path | None:
    plain, packed = folder / filename, folder / f"{filename}.gz"
    found = [p for p in (plain, packed) if p.is_file()]
    if len(found) == 2:
        raise DataFormatError(f"both {plain} and {packed} exist; expected exactly one of them (remove one)")
    if not found and required:
        raise DataFormatError(f"{folder}: missing {filename}; expected the file {plain} or {packed}")
    return found[0] if found else None


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 (optionally gzipped) text file, without line endings.

    CRLF and LF both end a line; trailing blank lines are dropped.

    Raises:
        DataFormatError: the bytes are not UTF-8 (file, line and byte named) or not valid gzip.
    """
    data = path.read_bytes()
    try:
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataFormatError(f"{path}: not a valid gzip file ({e}); expected gzip-compressed text") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        # utf-8-sig counts e.start after a byte-order mark; the message counts from the file's start.
        at = e.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        number = data.count(b"\n", 0, at) + 1
        column = at - data.rfind(b"\n", 0, at)
        raise DataFormatError(
            f"{path}, line {number}: undecodable byte 0x{data[at]:02x} at column {column} "
            f"(byte offset {at}); expected UTF-8 text"
        ) from None
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


class _TripleColumns(NamedTuple):
    """The names in one triple file, column by column; row ``i`` is line ``i + 1`` of ``path``."""

    path: Path
    heads: list[str]
    relations: list[str]
    tails: list[str]


def _read_triple_file(path: Path) -> _TripleColumns:
    lines = read_text_lines(path)
    if not lines:
        raise DataFormatError(f"{path}, line 1: empty file; expected at least one triple ({TRIPLE_FIELDS})")
    # Fast path: validate with whole-list C-level passes; walk line by line only to explain a failure.
    if not all(line.count("\t") == 2 for line in lines):
        _raise_first_bad_line(path, lines, 3, TRIPLE_FIELDS)
    fields = list(map(str.strip, "\t".join(lines).split("\t")))
    if not all(fields):
        _raise_first_bad_line(path, lines, 3, TRIPLE_FIELDS)
    return _TripleColumns(path, fields[0::3], fields[1::3], fields[2::3])


def _raise_first_bad_line(path: Path, lines: list[str], width: int, expected: str) -> None:
    for number, line in enumerate(lines, start=1):
        _check_line(path, number, line, width, expected)
    raise AssertionError("no malformed line found")  # pragma: no cover - callers checked first


def _check_line(path: Path, number: int, line: str, width: int, expected: str) -> list[str]:
    """The fields of one line, or a :class:`DataFormatError` saying what is wrong with it."""
    parts = line.split("\t")
    if not line.strip():
        raise DataFormatError(
            f"{path}, line {number}: blank line; expected {expected} "
            "(blank lines are allowed only at the end of the file)"
        )
    if len(parts) != width:
        raise DataFormatError(
            f"{path}, line {number}: found {len(parts)} field(s); expected {expected}: {line[:120]!r}"
        )
    empty = [i + 1 for i, part in enumerate(parts) if not part.strip()]
    if empty:
        raise DataFormatError(
            f"{path}, line {number}: field {empty[0]} is empty; expected {expected}, each non-empty: {line[:120]!r}"
        )
    return [part.strip() for part in parts]


class _Vocabulary:
    """Names in id order, their ids, and the dict file they came from (None: built from data)."""

    def __init__(self, names: list[str], source: Path | None, kind: str):
        self.names = names
        self.ids = {name: i for i, name in enumerate(names)}
        self.source = source
        self.kind = kind


def _vocabulary(folder: Path, filename: str, columns: dict[str, _TripleColumns], kind: str) -> _Vocabulary:
    source = _find_one(folder, filename, required=False)
    if source is not None:
        return _Vocabulary(read_dict_file(source), source, kind)
    if kind == "entity":
        # Interleaving head and tail gives "first appearance, line by line, head before tail".
        streams = (itertools.chain.from_iterable(zip(c.heads, c.tails, strict=True)) for c in columns.values())
    else:
        streams = (c.relations for c in columns.values())
    return _Vocabulary(list(dict.fromkeys(itertools.chain.from_iterable(streams))), None, kind)


def read_dict_file(path: Path) -> list[str]:
    """Names in id order from an ``id<TAB>name`` file whose ids are exactly ``0..n-1``.

    Raises:
        DataFormatError: a malformed line, a non-integer, repeated or out-of-range id, or a
            repeated name (file and line named).
    """
    lines = read_text_lines(path)
    names: list[str | None] = [None] * len(lines)
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        parts = _check_line(path, number, line, 2, DICT_FIELDS)
        idx = _dict_id(path, number, parts[0], len(lines))
        if names[idx] is not None:
            raise DataFormatError(
                f"{path}, line {number}: id {idx} repeated; expected each id 0..{len(lines) - 1} once"
            )
        if parts[1] in seen:
            raise DataFormatError(
                f"{path}, line {number}: name {parts[1]!r} repeated (first on line {seen[parts[1]]}); "
                "expected each name once"
            )
        names[idx], seen[parts[1]] = parts[1], number
    return names  # every slot is filled: n distinct ids, all in 0..n-1


def _dict_id(path: Path, number: int, text: str, n: int) -> int:
    if not (text.isascii() and text.isdigit()):  # int() would also take "1_0", "+3" or "٣"
        raise DataFormatError(f"{path}, line {number}: id {text!r} is not an integer; expected {DICT_FIELDS}")
    idx = int(text)
    if not 0 <= idx < n:
        raise DataFormatError(
            f"{path}, line {number}: id {idx} out of range; expected contiguous ids 0..{n - 1} ({n} lines)"
        )
    return idx


def _encode(columns: _TripleColumns, entities: _Vocabulary, relations: _Vocabulary) -> Tensor:
    ids = [
        _lookup(columns.heads, entities, columns.path),
        _lookup(columns.relations, relations, columns.path),
        _lookup(columns.tails, entities, columns.path),
    ]
    return torch.tensor(ids, dtype=torch.long).t().contiguous()


def _lookup(names: list[str], vocab: _Vocabulary, path: Path) -> list[int]:
    try:
        return list(map(vocab.ids.__getitem__, names))
    except KeyError as e:
        # Only a dict file can lack a name: a vocabulary built from the data holds all of them.
        name = e.args[0]
        raise DataFormatError(
            f"{path}, line {names.index(name) + 1}: unknown {vocab.kind} {name!r}; "
            f"expected a name listed in {vocab.source}"
        ) from None


def _type_pairs(
    entity_names: list[str],
    entity_types: Mapping[str, Sequence[str]] | None,
    type_labels: Mapping[str, str] | None,
) -> tuple[Tensor | None, list[str] | None]:
    """``(entity, type)`` pairs ``[M, 2]`` over dense ids of the types actually used."""
    if entity_types is None:
        return None, None
    type_ids: dict[str, int] = {}
    pairs = [
        (entity, type_ids.setdefault(key, len(type_ids)))
        for entity, name in enumerate(entity_names)
        for key in dict.fromkeys(entity_types.get(name, ()))
    ]
    labels = type_labels or {}
    tensor = torch.tensor(pairs, dtype=torch.long).view(-1, 2)
    return tensor, [labels.get(key, key) for key in type_ids]


def split_report(kg: KnowledgeGraph) -> dict:
    """Data-quality counts of a knowledge graph's splits.

    Returns:
        ``{"duplicates": {split: repeated rows}, "overlaps": {"train&valid": distinct triples
        in both, ...}, "unseen_entities": int, "unseen_relations": int}``, where unseen means
        occurring in valid/test but in no training triple.
    """
    keys = {split: _triple_keys(kg.split(split), kg.num_entities, kg.num_relations) for split in SPLITS}
    unique = {split: torch.unique(k) for split, k in keys.items()}
    overlaps = {f"{a}&{b}": _count_common(unique[a], unique[b]) for a, b in itertools.combinations(SPLITS, 2)}
    held_out = torch.unique(torch.cat([kg.valid[:, 1], kg.test[:, 1]]))
    return {
        "duplicates": {split: keys[split].numel() - unique[split].numel() for split in SPLITS},
        "overlaps": overlaps,
        "unseen_entities": int(kg.unseen_entities.numel()),
        "unseen_relations": held_out.numel() - _count_common(held_out, torch.unique(kg.train[:, 1])),
    }


def _triple_keys(triples: Tensor, num_entities: int, num_relations: int) -> Tensor:
    """One int64 key per triple, :math:`(h R + r) E + t`; equal keys iff equal triples."""
    h, r, t = triples.unbind(1)
    return (h * num_relations + r) * num_entities + t


def _count_common(a: Tensor, b: Tensor) -> int:
    """Number of values of sorted, distinct ``a`` that also occur in sorted, distinct ``b``."""
    if b.numel() == 0:
        return 0
    pos = torch.searchsorted(b, a).clamp_(max=b.numel() - 1)
    return int((b[pos] == a).sum())


def _warn_about_report(report: dict, name: str) -> None:
    """Warn about duplicates and cross-split overlaps; log unseen entities (normal in benchmarks)."""
    duplicates = {k: v for k, v in report["duplicates"].items() if v}
    overlaps = {k: v for k, v in report["overlaps"].items() if v}
    if duplicates or overlaps:
        warnings.warn(
            f"{name}: triples kept as given, but duplicates within splits {duplicates or 'none'} "
            f"and triples shared between splits {overlaps or 'none'}",
            DuplicateTriplesWarning,
            stacklevel=3,
        )
    if report["unseen_entities"] or report["unseen_relations"]:
        logger.info(
            "%s: %d entities and %d relations occur only in valid/test",
            name,
            report["unseen_entities"],
            report["unseen_relations"],
        )
