"""Counts and checksums of the offline dataset copies (``../shared/datasets`` or ``$GNNNS_DATA``)."""

import functools
import gzip
import hashlib
import os
import warnings
from pathlib import Path

import pytest
import torch

from gnnns.data import DATASETS, load_dataset
from gnnns.data.registry import find_local, locate


def shared_root() -> Path | None:
    beside_repo = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    if beside_repo.is_dir():
        return beside_repo
    env = os.environ.get("GNNNS_DATA")
    return Path(env) if env and Path(env).is_dir() else None


ROOT = shared_root()


def load_shared(name: str):
    if ROOT is None:
        pytest.skip("no offline datasets: neither ../shared/datasets beside the repository nor $GNNNS_DATA exists")
    if locate(DATASETS[name], ROOT)[1]:
        pytest.skip(f"{name} is not (completely) present under {ROOT}")
    return _load(name)


@functools.cache
def _load(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right files give no count mismatch and no duplicates
        return load_dataset(name, root=ROOT, download=False)


@pytest.mark.parametrize(
    ("name", "entities", "relations", "train", "valid", "test", "unseen"),
    [
        ("fb15k-237", 14541, 237, 272115, 17535, 20466, 36),
        ("wn18rr", 40943, 11, 86835, 3034, 3134, 384),
        ("umls", 135, 46, 5216, 652, 661, 0),
        ("nations", 14, 55, 1592, 199, 201, 0),
        ("codex-s", 2034, 42, 32888, 1827, 1828, 0),
    ],
)
def test_counts(name, entities, relations, train, valid, test, unseen):
    kg = load_shared(name)
    stats = kg.statistics()
    assert (stats["entities"], stats["relations"]) == (entities, relations)
    assert (stats["train"], stats["valid"], stats["test"]) == (train, valid, test)
    assert stats["unseen_entities"] == unseen
    assert kg.report["duplicates"] == {"train": 0, "valid": 0, "test": 0}
    assert set(kg.report["overlaps"].values()) == {0}


def test_fb15k_237_ids_follow_the_dict_files():
    kg = load_shared("fb15k-237")
    assert kg.entity_names[:2] == ["/m/0vm5t", "/m/07fb6"]
    assert kg.relation_names[0].startswith("/")
    first = kg.train[0].tolist()  # /m/027rn  /location/country/form_of_government  /m/06cx9 (CRLF file)
    assert kg.entity_names[first[0]] == "/m/027rn" and kg.entity_names[first[2]] == "/m/06cx9"
    assert kg.relation_names[first[1]] == "/location/country/form_of_government"


def test_wn18rr_keeps_leading_zeros():
    kg = load_shared("wn18rr")
    assert all(len(name) == 8 and name.isdigit() for name in kg.entity_names)
    assert any(name.startswith("0") for name in kg.entity_names)


def test_codex_s_every_entity_typed():
    kg = load_shared("codex-s")
    assert torch.unique(kg.entity_types[:, 0]).numel() == kg.num_entities
    assert kg.num_types == 502
    assert int(kg.entity_types[:, 1].max()) == 501
    assert "human" in kg.type_names


def test_recipe_checksums_match_the_offline_copies():
    if ROOT is None:
        pytest.skip("no offline datasets: neither ../shared/datasets beside the repository nor $GNNNS_DATA exists")
    checked = 0
    for recipe in DATASETS.values():
        folder, _ = locate(recipe, ROOT)
        for remote in recipe.files + recipe.type_files:
            path = find_local(folder, remote.name, parent=remote in recipe.type_files)
            if path is None or remote.sha256 is None:
                continue
            data = path.read_bytes()
            content = gzip.decompress(data) if path.suffix == ".gz" else data
            assert hashlib.sha256(content).hexdigest() == remote.sha256, path
            checked += 1
    assert checked > 0
