import gzip
import hashlib
import json
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gnnns.data import (
    DATASETS,
    ChecksumError,
    DatasetNotFoundError,
    DatasetRecipe,
    RemoteFile,
    UnverifiedDownloadWarning,
    list_datasets,
    load_dataset,
    resolve_root,
    synthetic_kg,
)
from gnnns.data.registry import recipe_table

REPO = Path(__file__).resolve().parents[2]
SPLITS = {"train.txt": "a\tr\tb\nb\tr\tc\n", "valid.txt": "c\tr\ta\n", "test.txt": "a\tr\tc\n"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Only file:// URLs may be opened: tests must never reach the network."""
    real = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file://"):
            raise AssertionError(f"test tried to open {url}")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("GNNNS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def write_dataset(folder: Path, splits: dict[str, str] = SPLITS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in splits.items():
        (folder / name).write_text(text)
    return folder


def toy_recipe(source: Path, sha256: dict[str, str | None] | None = None) -> DatasetRecipe:
    """A recipe whose URLs are file:// paths into ``source``."""
    sha256 = sha256 or {name: hashlib.sha256(text.encode()).hexdigest() for name, text in SPLITS.items()}
    files = tuple(RemoteFile(name, (source / name).as_uri(), sha256[name]) for name in SPLITS)
    return DatasetRecipe("toy", "toy graph", files, {"entities": 3, "relations": 1, "train": 2})


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GNNNS_DATA", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == (tmp_path / "arg", "root argument")
    assert resolve_root() == (tmp_path / "env", "GNNNS_DATA")
    monkeypatch.delenv("GNNNS_DATA")
    assert resolve_root() == (tmp_path / "xdg" / "gnnns", "default cache")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_root() == (tmp_path / "home" / ".cache" / "gnnns", "default cache")


def test_load_dataset_follows_the_root_order(monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "nowhere"))
    one = {**SPLITS, "train.txt": "a\tr\tb\n"}
    three = {**SPLITS, "train.txt": "a\tr\tb\nb\tr\tc\nc\tr\tb\n"}
    write_dataset(tmp_path / "arg" / "toy", one)
    write_dataset(tmp_path / "env" / "toy", SPLITS)
    write_dataset(tmp_path / "xdg" / "gnnns" / "toy", three)
    monkeypatch.setenv("GNNNS_DATA", str(tmp_path / "env"))
    with pytest.warns(UserWarning, match="train 1 .expected 2."):  # counts are checked against the recipe
        assert len(load_dataset("toy", root=tmp_path / "arg", download=False).train) == 1
    assert len(load_dataset("toy", download=False).train) == 2
    monkeypatch.delenv("GNNNS_DATA")
    with pytest.warns(UserWarning, match="train 3 .expected 2."):
        assert len(load_dataset("toy", download=False).train) == 3


def test_offline_error_lists_expected_files(monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "nowhere"))
    write_dataset(tmp_path / "root" / "toy", {"train.txt": SPLITS["train.txt"]})
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("toy", root=tmp_path / "root", download=False)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert f"in {tmp_path / 'root' / 'toy'}/:" in message
    assert "train.txt  [present]" in message
    assert "valid.txt  [missing]" in message and "test.txt  [missing]" in message
    assert "GNNNS_DATA" in message and "download=False" in message


def test_failed_download_is_a_not_found_error(monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "nowhere"))  # file:// URLs that do not exist
    with pytest.raises(DatasetNotFoundError, match="download failed") as info:
        load_dataset("toy", root=tmp_path / "root")
    assert "valid.txt  [missing]" in str(info.value)
    assert not list((tmp_path / "root" / "toy").iterdir())  # no partial files


def test_download_verifies_and_loads(monkeypatch, tmp_path):
    write_dataset(tmp_path / "upstream")
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "upstream"))
    kg = load_dataset("toy", root=tmp_path / "root")
    assert kg.statistics()["train"] == 2 and kg.entity_names == ["a", "b", "c"]
    assert sorted(p.name for p in (tmp_path / "root" / "toy").iterdir()) == sorted(SPLITS)
    (tmp_path / "upstream" / "train.txt").unlink()  # now present locally: no second download
    assert load_dataset("toy", root=tmp_path / "root").statistics()["train"] == 2


def test_checksum_mismatch_leaves_no_file(monkeypatch, tmp_path):
    write_dataset(tmp_path / "upstream")
    sha = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in SPLITS.items()}
    sha["valid.txt"] = "0" * 64
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "upstream", sha))
    with pytest.raises(ChecksumError, match=r"valid\.txt: sha256 \w+ != expected 0000"):
        load_dataset("toy", root=tmp_path / "root")
    left = sorted(p.name for p in (tmp_path / "root" / "toy").iterdir())
    assert "valid.txt" not in left and not [name for name in left if name.endswith(".part")]


def test_unknown_checksum_warns(monkeypatch, tmp_path):
    write_dataset(tmp_path / "upstream")
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "upstream", dict.fromkeys(SPLITS)))
    with pytest.warns(UnverifiedDownloadWarning, match="could not be verified"):
        load_dataset("toy", root=tmp_path / "root")


def write_codex(dataset: Path, types_folder: Path) -> None:
    write_dataset(dataset, {"train.txt": "Q1\tP1\tQ2\n", "valid.txt": "Q2\tP1\tQ3\n", "test.txt": "Q3\tP1\tQ1\n"})
    types_folder.mkdir(parents=True, exist_ok=True)
    entity_types = {"Q1": ["T5"], "Q2": ["T5", "T7"], "Q3": ["T9"], "Q4": ["T8"]}
    (types_folder / "entity2types.json.gz").write_bytes(gzip.compress(json.dumps(entity_types).encode()))
    labels = {"T5": {"label": "human"}, "T7": {"label": "writer"}, "T8": {"label": "unused"}}
    (types_folder / "types.en.json").write_text(json.dumps(labels))


@pytest.mark.parametrize("layout", ["upstream", "flat", "beside"])
def test_codex_layouts_and_types(tmp_path, layout):
    root = tmp_path / "root"
    dataset = root / "codex" / "codex-s" if layout == "upstream" else root / "codex-s"
    write_codex(dataset, {"upstream": root / "codex", "flat": dataset, "beside": root}[layout])
    with pytest.warns(UserWarning, match="another version") as caught:  # toy counts differ from CoDEx-S
        kg = load_dataset("codex-s", root=root, download=False)
    assert caught[0].filename == __file__  # the warning names the line that called load_dataset
    assert kg.entity_names == ["Q1", "Q2", "Q3"]
    assert kg.entity_types.tolist() == [[0, 0], [1, 0], [1, 1], [2, 2]]
    assert kg.type_names == ["human", "writer", "T9"]  # only used types; id where no label


def test_codex_types_missing_is_reported(tmp_path):
    root = tmp_path / "root"
    write_dataset(root / "codex" / "codex-s")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("codex-s", root=root, download=False)
    message = str(info.value)
    assert f"or in {root / 'codex' / 'codex-s'}/:" in message
    assert f"entity2types.json (or in {root / 'codex'}/)  [missing]" in message


def test_paths_load_like_names(tmp_path):
    folder = write_dataset(tmp_path / "mine")
    kg = load_dataset(str(folder))
    assert kg.name == "mine" and kg.entity_types is None
    write_codex(tmp_path / "codex" / "codex-s", tmp_path / "codex")
    assert load_dataset(tmp_path / "codex" / "codex-s").num_types == 3


def test_path_beside_unrelated_type_file_stays_untyped(tmp_path):
    write_codex(tmp_path / "codex-s", tmp_path)
    assert load_dataset(write_dataset(tmp_path / "other")).entity_types is None


def test_names_are_case_and_separator_insensitive(monkeypatch, tmp_path):
    write_dataset(tmp_path / "fb15k-237")
    monkeypatch.setitem(DATASETS, "fb15k-237", replace(toy_recipe(tmp_path / "nowhere"), name="fb15k-237"))
    for name in ("FB15k-237", "fb15k_237", "fb15k237"):
        assert load_dataset(name, root=tmp_path, download=False).statistics()["train"] == 2


def test_unknown_name(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="neither a known dataset"):
        load_dataset("no-such-dataset", root=tmp_path)


def test_synthetic_needs_no_root(tmp_path):
    kg = load_dataset("synthetic", root=tmp_path / "does-not-exist")
    assert torch.equal(kg.train, synthetic_kg().train)
    assert not (tmp_path / "does-not-exist").exists()


def test_list_datasets(monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "toy", toy_recipe(tmp_path / "nowhere"))
    write_dataset(tmp_path / "toy")
    rows = {row["name"]: row for row in list_datasets(root=tmp_path)}
    expected = "synthetic fb15k-237 wn18rr umls nations kinship codex-s codex-m codex-l yago3-10 toy"
    expected += " ogbl-wikikg2 ogbl-biokg"
    assert set(expected.split()) == set(rows)
    assert rows["toy"]["present"] and rows["toy"]["path"] == str(tmp_path / "toy")
    assert not rows["umls"]["present"] and rows["umls"]["path"] is None
    assert rows["fb15k-237"]["counts"]["entities"] == 14541
    assert rows["umls"]["verified"] and not rows["kinship"]["verified"] and not rows["yago3-10"]["verified"]
    assert rows["synthetic"]["present"]


def test_recipe_file_matches_the_registry():
    path = REPO / "datasets" / "sources.tsv"
    assert path.read_text() == recipe_table(), f"regenerate {path} from gnnns.data.registry.recipe_table()"


def test_recipes_pin_upstream_commits_and_known_checksums():
    for recipe in DATASETS.values():
        for remote in (*recipe.files, *recipe.type_files):
            assert remote.url.startswith("https://raw.githubusercontent.com/")
            assert remote.sha256 is None or len(remote.sha256) == 64
    assert all(f.sha256 for f in DATASETS["fb15k-237"].files)
    assert all(f.sha256 is None for f in DATASETS["kinship"].files)
