import gzip
import warnings
from pathlib import Path

import pytest
import torch

from gnnns.data import DataFormatError, DuplicateTriplesWarning, read_folder


def write(folder: Path, name: str, text: str, newline: str = "\n") -> Path:
    data = text.replace("\n", newline).encode()
    path = folder / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def make_folder(tmp_path: Path, train="a\tr\tb\nb\ts\tc\n", valid="c\tr\ta\n", test="a\ts\tc\n") -> Path:
    for name, text in (("train.txt", train), ("valid.txt", valid), ("test.txt", test)):
        write(tmp_path, name, text)
    return tmp_path


def test_reads_crlf_and_gzip_with_first_appearance_ids(tmp_path):
    write(tmp_path, "train.txt.gz", "x\tlikes\ty\n00012\tknows\tx\ny\tlikes\t00012\n", newline="\r\n")
    write(tmp_path, "valid.txt", "z\tknows\ty\n", newline="\r\n")
    write(tmp_path, "test.txt", "y\thates\tw\n\n\n")  # trailing blank lines are fine
    kg = read_folder(tmp_path, name="toy")
    # train first, line by line, head before tail; names stay strings (leading zeros kept)
    assert kg.entity_names == ["x", "y", "00012", "z", "w"]
    assert kg.relation_names == ["likes", "knows", "hates"]
    assert torch.equal(kg.train, torch.tensor([[0, 0, 1], [2, 1, 0], [1, 0, 2]]))
    assert torch.equal(kg.valid, torch.tensor([[3, 1, 1]]))
    assert torch.equal(kg.test, torch.tensor([[1, 2, 4]]))
    assert kg.name == "toy"
    assert kg.report["unseen_entities"] == 2  # z and w


def test_dict_files_fix_the_ids(tmp_path):
    make_folder(tmp_path)
    write(tmp_path, "entities.dict", "2\ta\n0\tb\n1\tc\n3\tunused\n")
    write(tmp_path, "relations.dict.gz", "0\ts\n1\tr\n")
    kg = read_folder(tmp_path)
    assert kg.entity_names == ["b", "c", "a", "unused"]
    assert kg.relation_names == ["s", "r"]
    assert kg.num_entities == 4
    assert torch.equal(kg.train, torch.tensor([[2, 1, 0], [0, 0, 1]]))


def test_entity_types_are_dense_over_used_types(tmp_path):
    make_folder(tmp_path)
    types = {"a": ["Q5", "Q9"], "c": ["Q9"], "nobody": ["Q77"]}
    kg = read_folder(tmp_path, entity_types=types, type_labels={"Q9": "nine"})
    assert kg.entity_names == ["a", "b", "c"]
    assert kg.entity_types.tolist() == [[0, 0], [0, 1], [2, 1]]
    assert kg.type_names == ["Q5", "nine"]


def test_duplicates_are_reported_and_kept(tmp_path):
    make_folder(tmp_path, train="a\tr\tb\na\tr\tb\na\tr\tb\nb\ts\tc\n", valid="a\tr\tb\nc\tr\ta\n", test="c\tr\ta\n")
    with pytest.warns(DuplicateTriplesWarning, match="duplicates") as record:
        kg = read_folder(tmp_path)
    message = str(record[0].message)
    assert "'train': 2" in message and "'train&valid': 1" in message and "'valid&test': 1" in message
    assert len(kg.train) == 4 and len(kg.valid) == 2  # nothing removed
    assert kg.report["duplicates"] == {"train": 2, "valid": 0, "test": 0}
    assert kg.report["overlaps"] == {"train&valid": 1, "train&test": 0, "valid&test": 1}


def test_clean_folder_does_not_warn(tmp_path):
    make_folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kg = read_folder(tmp_path)
    assert kg.report["duplicates"] == {"train": 0, "valid": 0, "test": 0}


@pytest.mark.parametrize(
    ("train", "line", "expected"),
    [
        (
            "a\tr\tb\na\tr\n",
            2,
            "found 2 field(s); expected 3 tab-separated fields head<TAB>relation<TAB>tail",
        ),
        ("a\tr\tb\tc\n", 1, "found 4 field(s); expected 3 tab-separated fields"),
        ("a\tr\tb\nb\t\tc\n", 2, "field 2 is empty; expected 3 tab-separated fields"),
        ("a\tr\tb\n \tr\tc\n", 2, "field 1 is empty"),
        ("a\tr\tb\n\nb\tr\tc\n", 2, "blank line; expected 3 tab-separated fields"),
        ("a r b\n", 1, "found 1 field(s); expected 3 tab-separated fields"),
    ],
)
def test_malformed_lines_name_file_line_and_expectation(tmp_path, train, line, expected):
    make_folder(tmp_path, train=train)
    with pytest.raises(DataFormatError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "train.txt") in message
    assert f"line {line}:" in message
    assert expected in message


def test_unknown_names_with_a_dict(tmp_path):
    make_folder(tmp_path, valid="c\tr\ta\nc\tr\tghost\n")
    write(tmp_path, "entities.dict", "0\ta\n1\tb\n2\tc\n")
    with pytest.raises(DataFormatError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "valid.txt") in message and "line 2:" in message
    assert "unknown entity 'ghost'" in message and "entities.dict" in message


def test_unknown_relation_with_a_dict(tmp_path):
    make_folder(tmp_path, test="a\ts\tc\nb\tnew\tc\n")
    write(tmp_path, "relations.dict", "0\tr\n1\ts\n")
    with pytest.raises(DataFormatError, match=r"test\.txt, line 2: unknown relation 'new'; expected a name listed in"):
        read_folder(tmp_path)


@pytest.mark.parametrize("name", ["train.txt", "train.txt.gz"])
def test_undecodable_bytes(tmp_path, name):
    make_folder(tmp_path)
    (tmp_path / "train.txt").unlink()
    data = b"a\tr\tb\nb\ts\t\xffc\n"
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(DataFormatError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / name) in message
    assert "line 2:" in message and "byte 0xff at column 5" in message and "expected UTF-8" in message


def test_undecodable_byte_after_a_byte_order_mark_is_placed_in_the_file(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "train.txt").write_bytes(b"\xef\xbb\xbfa\tr\tb\nc\tr\t\xff\n")
    with pytest.raises(DataFormatError, match=r"line 2: undecodable byte 0xff at column 5 \(byte offset 13\)"):
        read_folder(tmp_path)


def test_whitespace_around_fields_is_dropped(tmp_path):
    # "b " and "b" are one entity; a final line ending in a lone CR keeps no "\r" in its name.
    make_folder(tmp_path, train="a\tr\tb \nb\tr\tc d\r", valid="a\tr\t b\n", test="c d\tr\ta\n")
    kg = read_folder(tmp_path)
    assert kg.entity_names == ["a", "b", "c d"]
    assert kg.valid.tolist() == [[0, 0, 1]] and kg.test.tolist() == [[2, 0, 0]]
    write(tmp_path, "relations.dict", "0\tr \n")
    assert read_folder(tmp_path).relation_names == ["r"]


def test_missing_split_names_both_candidates(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "valid.txt").unlink()
    with pytest.raises(DataFormatError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "valid.txt") in message and str(tmp_path / "valid.txt.gz") in message


@pytest.mark.parametrize("text", ["", "\n\n", "\r\n"])
def test_empty_split(tmp_path, text):
    make_folder(tmp_path, test=text)
    with pytest.raises(DataFormatError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "test.txt") in message and "line 1:" in message and "expected at least one triple" in message


def test_plain_and_gzipped_copies_are_ambiguous(tmp_path):
    make_folder(tmp_path)
    write(tmp_path, "train.txt.gz", "a\tr\tb\n")
    with pytest.raises(DataFormatError, match="expected exactly one of them"):
        read_folder(tmp_path)


def test_corrupt_gzip(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "test.txt").unlink()
    (tmp_path / "test.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError, match=r"test\.txt\.gz: not a valid gzip file"):
        read_folder(tmp_path)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("0\ta\n2\tb\n", 2, "id 2 out of range; expected contiguous ids 0..1"),
        ("0\ta\n0\tb\n", 2, "id 0 repeated"),
        ("0\ta\n1\ta\n", 2, "name 'a' repeated (first on line 1)"),
        ("0\ta\nx\tb\n", 2, "id 'x' is not an integer; expected 2 tab-separated fields id<TAB>name"),
        ("0\ta\n1_0\tb\n", 2, "id '1_0' is not an integer"),
        ("0\ta\n1\n", 2, "found 1 field(s); expected 2 tab-separated fields id<TAB>name"),
    ],
)
def test_malformed_dict_files(tmp_path, text, line, expected):
    make_folder(tmp_path)
    write(tmp_path, "relations.dict", text)
    with pytest.raises(DataFormatError) as info:
        read_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "relations.dict") in message and f"line {line}:" in message and expected in message
