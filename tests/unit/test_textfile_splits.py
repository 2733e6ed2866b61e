"""textFile splitting: every line of every file is read exactly once, whatever the splits."""

from __future__ import annotations

import gzip
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark.rdds import textfile
from asyncspark.rdds.textfile import list_input_files, plan_splits, read_split

# Lines never contain the terminators themselves; unicode makes byte offsets differ from
# character offsets.
line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                    max_size=30)
documents = st.fixed_dictionaries({
    "lines": st.lists(st.one_of(st.just(""), line_text), max_size=40),
    "eol": st.sampled_from(["\n", "\r\n"]),
    "mixed": st.booleans(),
    "trailing": st.booleans(),
})


def render(doc) -> bytes:
    lines = doc["lines"]
    if not lines:
        return b""
    parts = []
    for i, line in enumerate(lines):
        eol = ("\r\n" if i % 2 else "\n") if doc["mixed"] else doc["eol"]
        last = i == len(lines) - 1
        parts.append(line + ("" if last and not doc["trailing"] else eol))
    data = "".join(parts).encode()
    if lines[-1] == "" and not doc["trailing"]:
        # "a\n" + "" reads as ["a"]: an empty last line needs its terminator to exist.
        data += doc["eol"].encode()
    return data


def read_all(files, min_partitions, use_unicode=True) -> list:
    splits = plan_splits(files, min_partitions)
    return [line for s in splits for line in read_split(*s, use_unicode=use_unicode)]


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(docs=st.lists(documents, min_size=1, max_size=3), min_partitions=st.integers(1, 60),
       chunk=st.sampled_from([1, 2, 3, 7, 1 << 20]))
def test_every_line_exactly_once(tmp_path_factory, monkeypatch, docs, min_partitions, chunk):
    monkeypatch.setattr(textfile, "_READ_CHUNK", chunk)  # chunk boundaries anywhere
    d = tmp_path_factory.mktemp("splits")
    files, expected = [], []
    for i, doc in enumerate(docs):
        path = d / f"part-{i}.txt"
        path.write_bytes(render(doc))
        files.append(str(path))
        expected.extend(doc["lines"])
    assert read_all(files, min_partitions) == expected
    raw = read_all(files, min_partitions, use_unicode=False)
    assert raw == [line.encode() for line in expected]


@SETTINGS
@given(doc=documents, min_partitions=st.integers(1, 100))
def test_splits_tile_each_file(tmp_path_factory, doc, min_partitions):
    path = tmp_path_factory.mktemp("tile") / "f.txt"
    data = render(doc)
    path.write_bytes(data)
    splits = plan_splits([str(path)], min_partitions)
    assert splits
    pos = 0
    for p, start, length in splits:
        assert p == str(path)
        assert start == pos
        assert length > 0 or len(data) == 0
        pos += length
    assert pos == len(data)
    if data:
        # Hadoop's rule: at least min_partitions splits unless that would go below 1 byte
        # (the last split may absorb up to 10% slop).
        assert len(splits) >= min(min_partitions, len(data)) - 1


def test_split_sizes_follow_hadoop(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"x" * 1000)
    assert plan_splits([str(path)], 4) == [
        (str(path), 0, 250), (str(path), 250, 250), (str(path), 500, 250),
        (str(path), 750, 250)]
    # 1000 // 3 = 333: the remainder 334 is within the 10% slop, so no fourth split.
    assert plan_splits([str(path)], 3) == [
        (str(path), 0, 333), (str(path), 333, 333), (str(path), 666, 334)]
    assert plan_splits([str(path)], 0) == [(str(path), 0, 1000)]


def test_block_size_caps_split_size(tmp_path, monkeypatch):
    monkeypatch.setattr(textfile, "LOCAL_BLOCK_SIZE", 100)
    path = tmp_path / "f.txt"
    path.write_bytes(b"abcdefghi\n" * 50)
    splits = plan_splits([str(path)], 1)
    assert [length for _, _, length in splits] == [100] * 5
    assert read_all([str(path)], 1) == ["abcdefghi"] * 50


@pytest.mark.parametrize("min_partitions", [1, 3, 50])
def test_gzip_file_is_one_split(tmp_path, min_partitions):
    lines = [f"line {i}" for i in range(200)] + ["", "last"]
    gz = tmp_path / "data.gz"
    with gzip.open(gz, "wb") as f:
        f.write("\r\n".join(lines).encode())
    plain = tmp_path / "plain.txt"
    plain.write_text("a\nb\n")
    splits = plan_splits([str(gz), str(plain)], min_partitions)
    gz_splits = [s for s in splits if s[0] == str(gz)]
    assert gz_splits == [(str(gz), 0, os.path.getsize(gz))]
    assert list(read_split(*gz_splits[0])) == lines
    assert read_all([str(gz), str(plain)], min_partitions) == [*lines, "a", "b"]


def test_empty_file_is_one_empty_split(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert plan_splits([str(path)], 5) == [(str(path), 0, 0)]
    assert list(read_split(str(path), 0, 0)) == []


@pytest.mark.parametrize(("data", "lines"), [
    (b"a", ["a"]),
    (b"a\n", ["a"]),
    (b"a\n\n", ["a", ""]),
    (b"\n", [""]),
    (b"\r\n\r\n", ["", ""]),
    (b"a\r\nb", ["a", "b"]),
    (b"a\nb\r\n", ["a", "b"]),
])
@pytest.mark.parametrize("min_partitions", [1, 2, 5, 20])
def test_small_files(tmp_path, data, lines, min_partitions):
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    assert read_all([str(path)], min_partitions) == lines


def test_list_input_files(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    for name in ("b.txt", "a.txt", "_SUCCESS", ".hidden", "c.gz"):
        (d / name).write_text("x\n")
    (d / "sub").mkdir()
    one = tmp_path / "one.txt"
    one.write_text("y\n")
    assert list_input_files(str(d)) == [str(d / "a.txt"), str(d / "b.txt"), str(d / "c.gz")]
    assert list_input_files(f"file://{one}") == [str(one)]
    assert list_input_files(f"{d}/*.txt, {one}") == [
        str(d / "a.txt"), str(d / "b.txt"), str(one)]
    with pytest.raises(FileNotFoundError, match="does not match"):
        list_input_files(f"{d}/*.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_input_files(str(tmp_path / "missing.txt"))
