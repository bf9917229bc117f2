"""OGB's split files read into triples and provided negatives, with bounded memory.

The pickle is streamed out of torch's zip container (:func:`_read_split_file`), and the candidates
are converted to int32 global ids a chunk of rows at a time (:func:`_candidates`).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gnnns.data.eval_candidates import EvalCandidates, StoredEvalCandidates
from gnnns.data.ogb_schema import _int_array
from gnnns.data.readers import DataFormatError

_CHUNK_ROWS = 1 << 16  # candidate rows converted at a time: 64k x 500 x 8 B = 256 MB of int64 at most
_INT32_MAX = 2**31 - 1


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
