import builtins
import os
import sys
import urllib.request
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnns.data import (
    OGB_DATASETS,
    DataFormatError,
    DatasetNotFoundError,
    KnowledgeGraph,
    RandomEvalCandidates,
    StoredEvalCandidates,
    import_ogb,
    list_datasets,
    load_dataset,
    load_ogb,
    wikikg2_like,
    write_ogb_layout,
)

BIOKG_TYPES = {"disease": 7, "drug": 9, "function": 11, "protein": 13, "sideeffect": 5}
BIOKG_SCHEMA = [
    ("disease", "disease-protein", "protein"),
    ("drug", "drug-drug_interaction", "drug"),
    ("drug", "drug-protein", "protein"),
    ("drug", "drug-sideeffect", "sideeffect"),
    ("protein", "protein-function", "function"),
]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Fail the test if anything opens the network or asks on stdin; start from a clean data root."""

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"test tried to open {url}")

    def no_prompt(*args, **kwargs):
        raise AssertionError(f"test was prompted on stdin: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(builtins, "input", no_prompt)
    monkeypatch.delenv("GNNNS_DATA", raising=False)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture(scope="module")
def ogb():
    try:
        return import_ogb()
    except ImportError:
        pytest.skip("ogb is not installed")


def stored(kg: KnowledgeGraph) -> KnowledgeGraph:
    """``kg`` with its random candidates materialised as int32 tensors."""
    for split, cands in kg.eval_negatives.items():
        head, tail = cands.batch(0, len(cands))
        kg.eval_negatives[split] = StoredEvalCandidates(head.int(), tail.int())
    return kg


def wikikg() -> KnowledgeGraph:
    return stored(wikikg2_like(0.0002, seed=2, eval_negatives=9))


def biokg() -> KnowledgeGraph:
    """A typed graph shaped like ogbl-biokg: node types in sorted order, typed candidates."""
    g = torch.Generator().manual_seed(0)

    def hetero(n: int) -> HeteroData:
        data = HeteroData()
        for node_type, count in BIOKG_TYPES.items():
            data[node_type].num_nodes = count
        for src, rel, dst in BIOKG_SCHEMA:
            data[src, rel, dst].edge_index = torch.stack(
                [torch.randint(BIOKG_TYPES[src], (n,), generator=g), torch.randint(BIOKG_TYPES[dst], (n,), generator=g)]
            )
        return data

    kg = KnowledgeGraph.from_hetero(hetero(30), hetero(3), hetero(4), name="biokg-like")
    start = torch.tensor([0, *np.cumsum(list(BIOKG_TYPES.values()))[:-1]])
    size = torch.tensor(list(BIOKG_TYPES.values()))
    for split in ("valid", "test"):
        sides = []
        for column in (0, 2):
            t = kg.node_type[kg.split(split)[:, column]]
            local = (torch.rand(len(t), 6, generator=g) * size[t, None]).long()
            sides.append((start[t, None] + local).int())
        kg.eval_negatives[split] = StoredEvalCandidates(*sides)
    return kg


def candidates(kg: KnowledgeGraph, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    return kg.eval_negatives[split].batch(0, len(kg.split(split)))


def assert_same_graph(got: KnowledgeGraph, want: KnowledgeGraph) -> None:
    for split in ("train", "valid", "test"):
        assert got.split(split).dtype == torch.int64
        assert torch.equal(got.split(split), want.split(split)), split
    assert (got.num_entities, got.num_relations) == (want.num_entities, want.num_relations)
    assert sorted(got.eval_negatives) == ["test", "valid"]
    for split in ("valid", "test"):
        assert got.eval_negatives[split].head.dtype == torch.int32  # stored compactly
        for a, b in zip(candidates(got, split), candidates(want, split), strict=True):
            assert a.dtype == torch.int64 and torch.equal(a, b)


def ogb_reads(ogb, name: str, root, monkeypatch) -> tuple[dict, dict]:
    """ogb's own reading of the files: its graph and its split dicts."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        dataset = ogb.LinkPropPredDataset(name, root=str(root))
        split = dataset.get_edge_split()
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    return dataset[0], split


@pytest.mark.parametrize("processed", [False, True])
def test_wikikg2_layout_is_what_ogb_reads(ogb, tmp_path, monkeypatch, processed):
    kg = wikikg()
    folder = write_ogb_layout(kg, tmp_path, "ogbl-wikikg2", processed=processed)
    assert folder == tmp_path / "ogbl_wikikg2" and (folder / "RELEASE_v1.txt").is_file()
    graph, split = ogb_reads(ogb, "ogbl-wikikg2", tmp_path, monkeypatch)
    assert graph["num_nodes"] == kg.num_entities
    assert np.array_equal(graph["edge_index"], kg.train[:, [0, 2]].t().numpy())
    assert np.array_equal(graph["edge_reltype"][:, 0], kg.train[:, 1].numpy())
    assert sorted(split["train"]) == ["head", "relation", "tail"]
    for name in ("train", "valid", "test"):
        for column, key in enumerate(("head", "relation", "tail")):
            assert np.array_equal(split[name][key], kg.split(name)[:, column].numpy())
    for name in ("valid", "test"):
        head, tail = candidates(kg, name)
        assert split[name]["head_neg"].shape == (len(kg.split(name)), 9)
        assert np.array_equal(split[name]["head_neg"], head.numpy())
        assert np.array_equal(split[name]["tail_neg"], tail.numpy())


def test_wikikg2_loads_back_equal_offline_and_leaves_no_trace(ogb, tmp_path, monkeypatch):
    kg = wikikg()
    write_ogb_layout(kg, tmp_path, "ogbl-wikikg2")
    dataset_module = sys.modules[ogb.LinkPropPredDataset.__module__]
    helpers = dataset_module.decide_download, dataset_module.download_url
    got = load_ogb("ogbl-wikikg2", root=tmp_path)
    assert_same_graph(got, kg)
    assert got.name == "ogbl-wikikg2" and got.entity_types is None
    # The environment and ogb's download helpers are as they were.
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    assert (dataset_module.decide_download, dataset_module.download_url) == helpers
    # Second load reads the graph OGB saved; the registry routes the name, with the root from GNNNS_DATA.
    assert (tmp_path / "ogbl_wikikg2" / "processed" / "data_processed").is_file()
    monkeypatch.setenv("GNNNS_DATA", str(tmp_path))
    assert_same_graph(load_dataset("OGBL_WikiKG2"), kg)


def test_split_files_in_other_torch_encodings_load_the_same(ogb, tmp_path):
    kg = wikikg()
    split_dir = write_ogb_layout(kg, tmp_path) / "split" / "time"
    # The legacy (pre-zip) torch format, and tensors instead of numpy arrays, as other OGB releases may hold.
    valid = torch.load(split_dir / "valid.pt", weights_only=False)
    torch.save(valid, split_dir / "valid.pt", _use_new_zipfile_serialization=False)
    test = torch.load(split_dir / "test.pt", weights_only=False)
    torch.save({key: torch.from_numpy(value) for key, value in test.items()}, split_dir / "test.pt")
    assert_same_graph(load_ogb("ogbl-wikikg2", root=tmp_path), kg)


def test_biokg_layout_is_what_ogb_reads(ogb, tmp_path, monkeypatch):
    kg = biokg()
    write_ogb_layout(kg, tmp_path, "ogbl-biokg")
    graph, split = ogb_reads(ogb, "ogbl-biokg", tmp_path, monkeypatch)
    assert graph["num_nodes_dict"] == BIOKG_TYPES
    # from_hetero gave each type a contiguous range of global ids and each edge type its position as relation id.
    start = dict(zip(BIOKG_TYPES, np.cumsum([0, *BIOKG_TYPES.values()])[:-1].tolist(), strict=True))
    assert sorted(graph["edge_index_dict"]) == BIOKG_SCHEMA
    for r, (src, rel, dst) in enumerate(BIOKG_SCHEMA):
        mine = kg.train[kg.train[:, 1] == r]
        assert np.array_equal(graph["edge_index_dict"][src, rel, dst][0], mine[:, 0].numpy() - start[src])
        assert np.array_equal(graph["edge_index_dict"][src, rel, dst][1], mine[:, 2].numpy() - start[dst])
        assert set(graph["edge_reltype"][src, rel, dst][:, 0].tolist()) == {r}
    for name in ("train", "valid", "test"):
        triples = kg.split(name)
        offset_h = np.array([start[t] for t in split[name]["head_type"]])
        offset_t = np.array([start[t] for t in split[name]["tail_type"]])
        assert np.array_equal(split[name]["head"] + offset_h, triples[:, 0].numpy())
        assert np.array_equal(split[name]["tail"] + offset_t, triples[:, 2].numpy())
        assert np.array_equal(split[name]["relation"], triples[:, 1].numpy())
        if name != "train":
            head, tail = candidates(kg, name)  # local ids of the corrupted side's type
            assert np.array_equal(split[name]["head_neg"] + offset_h[:, None], head.numpy())
            assert np.array_equal(split[name]["tail_neg"] + offset_t[:, None], tail.numpy())


def test_biokg_loads_back_typed(ogb, tmp_path):
    kg = biokg()
    write_ogb_layout(kg, tmp_path, "ogbl-biokg")
    got = load_dataset("ogbl-biokg", root=tmp_path)
    assert_same_graph(got, kg)
    assert got.type_names == sorted(BIOKG_TYPES)
    assert torch.equal(got.entity_types, kg.entity_types)
    assert got.relation_names == ["__".join(edge_type) for edge_type in BIOKG_SCHEMA]
    hetero = got.to_hetero()
    assert hetero.node_types == list(BIOKG_TYPES)
    assert {t: hetero[t].num_nodes for t in hetero.node_types} == BIOKG_TYPES
    assert sorted(hetero.edge_types) == BIOKG_SCHEMA
    # Candidates of each side lie in the corrupted side's type range.
    for split in ("valid", "test"):
        for column, side in zip((0, 2), candidates(got, split), strict=True):
            assert torch.equal(got.node_type[side], got.node_type[got.split(split)[:, column]][:, None].expand_as(side))


def test_missing_files_are_named_with_how_to_get_them(ogb, tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("ogbl-wikikg2", root=tmp_path)
    message = str(error.value)
    folder = tmp_path / "ogbl_wikikg2"
    assert f"missing in {folder}/" in message
    for path in ("RELEASE_v1.txt", "raw/edge.csv.gz (or processed/data_processed)", "split/time/test.pt"):
        assert f"  {path}\n" in message
    assert "http://snap.stanford.edu/ogb/data/linkproppred/wikikg-v2.zip" in message
    assert "mv wikikg-v2 ogbl_wikikg2" in message and "GNNNS_DATA" in message

    # A folder without the release file would make ogb ask on stdin; gnnns refuses first.
    write_ogb_layout(wikikg(), tmp_path)
    (folder / "RELEASE_v1.txt").rename(folder / "RELEASE_v0.txt")
    (folder / "split" / "time" / "test.pt").unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load_ogb("ogbl-wikikg2", root=tmp_path)
    message = str(error.value)
    assert "  RELEASE_v1.txt\n" in message and "  split/time/test.pt\n" in message
    assert "split/time/valid.pt" not in message and "raw/edge.csv.gz" not in message
    assert "found RELEASE_v0.txt: another release" in message


def test_bad_split_file_is_named(ogb, tmp_path):
    kg = biokg()
    folder = write_ogb_layout(kg, tmp_path, "ogbl-biokg")
    path = folder / "split" / "random" / "valid.pt"
    part = torch.load(path, weights_only=False)
    part["tail_neg"][1, 2] = BIOKG_TYPES[part["tail_type"][1]]  # one past the type's last local id
    torch.save(part, path)
    with pytest.raises(DataFormatError, match=r"valid.pt: tail_neg row 1 holds local id \d+ of node type"):
        load_ogb("ogbl-biokg", root=tmp_path)


def test_ogb_imports_without_its_version_check(ogb, monkeypatch):
    # The first import of ogb went through import_ogb: ogb found no `outdated` and started no check.
    assert sys.modules["ogb.version"].check_outdated is None
    assert sys.modules.get("outdated", "absent") is not None
    monkeypatch.setitem(sys.modules, "ogb", None)
    monkeypatch.setitem(sys.modules, "ogb.linkproppred", None)
    with pytest.raises(ImportError, match=r'pip install "gnnns\[ogb\]"'):
        import_ogb()


def test_metadata_agrees_with_ogb_master_file(ogb):
    master = pd.read_csv(os.path.join(os.path.dirname(ogb.__file__), "master.csv"), index_col=0, keep_default_na=False)
    for name, meta in OGB_DATASETS.items():
        info = master[name]
        assert (meta.download_name, meta.split, meta.url) == (info["download_name"], info["split"], info["url"])
        assert (str(meta.version), str(meta.hetero)) == (info["version"], info["is hetero"])
        assert info["binary"] == "False" and info["additional edge files"] == "edge_reltype"


def test_listing_shows_ogb_datasets(tmp_path):
    write_ogb_layout(wikikg(), tmp_path)
    rows = {row["name"]: row for row in list_datasets(root=tmp_path)}
    assert rows["ogbl-wikikg2"]["present"] and rows["ogbl-wikikg2"]["path"] == str(tmp_path / "ogbl_wikikg2")
    assert rows["ogbl-wikikg2"]["counts"]["train"] == 16_109_182
    assert not rows["ogbl-biokg"]["present"] and rows["ogbl-biokg"]["path"] is None
    with pytest.raises(DatasetNotFoundError, match="ogbl-wikikg2, ogbl-biokg"):
        load_dataset("no-such-dataset")


def test_stored_candidates():
    head = torch.arange(12, dtype=torch.int32).view(4, 3)
    tail = torch.arange(8, dtype=torch.int32).view(4, 2) + 100
    cands = StoredEvalCandidates(head, tail)
    assert len(cands) == 4 and cands.nbytes == 20 * 4
    h, t = cands.batch(1, 3)
    assert h.dtype == t.dtype == torch.int64
    assert h.tolist() == [[3, 4, 5], [6, 7, 8]] and t.tolist() == [[102, 103], [104, 105]]
    h, t = cands.rows(torch.tensor([3, 0]))
    assert h.tolist() == [[9, 10, 11], [0, 1, 2]] and t.tolist() == [[106, 107], [100, 101]]
    with pytest.raises(IndexError, match="4 queries"):
        cands.rows(torch.tensor([4]))
    with pytest.raises(ValueError, match="head has 4 queries but tail has 3"):
        StoredEvalCandidates(head, tail[:3])
    with pytest.raises(ValueError, match=r"integer tensor of shape \[N, K\]"):
        StoredEvalCandidates(head.float(), tail)


def test_random_candidates_depend_only_on_the_query():
    cands = RandomEvalCandidates(5000, 37, num_negatives=11, seed=4, block_size=64)
    head, tail = cands.batch(0, 5000)
    assert head.shape == tail.shape == (5000, 11) and head.dtype == torch.int64
    assert int(torch.cat([head, tail]).min()) >= 0 and int(torch.cat([head, tail]).max()) == 36
    # Any batching, any order, any repetition gives the same rows.
    index = torch.tensor([4999, 3, 64, 63, 3])
    h, t = cands.rows(index)
    assert torch.equal(h, head[index]) and torch.equal(t, tail[index])
    assert torch.equal(cands.batch(60, 70)[0], head[60:70])
    # Roughly uniform: each of the 37 entities about 1/37 of the 110,000 draws.
    counts = torch.bincount(torch.cat([head, tail]).flatten(), minlength=37).double()
    assert float(counts.min()) > 0.9 * 110_000 / 37 and float(counts.max()) < 1.1 * 110_000 / 37
    other = RandomEvalCandidates(5000, 37, num_negatives=11, seed=5, block_size=64)
    assert not torch.equal(other.batch(0, 100)[0], head[:100])
    # A split of a billion queries costs nothing until read.
    huge = RandomEvalCandidates(10**9, 2_500_604, num_negatives=500)
    assert huge.batch(10**9 - 2, 10**9)[0].shape == (2, 500)
    with pytest.raises(IndexError):
        cands.rows(torch.tensor([5000]))


def test_graph_checks_candidate_rows(tmp_path):
    kg = wikikg2_like(0.0002, seed=2)
    assert kg.eval_negatives == {}
    with pytest.raises(ValueError, match=r"eval_negatives\['test'\] has 3 queries, but the test split has"):
        KnowledgeGraph(kg.train, kg.valid, kg.test, eval_negatives={"test": RandomEvalCandidates(3, 10)})
