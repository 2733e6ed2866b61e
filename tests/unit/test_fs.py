"""fsspec paths (fs.py) and Hadoop's line rules: ``memory://`` and local files, every
compression, and a split at every byte offset of small files with ``\\n``, ``\\r\\n`` and
lone ``\\r`` terminators."""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import uuid

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark import fs
from asyncspark.rdds import textfile
from asyncspark.rdds.textfile import list_input_files, plan_splits, read_split

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
line = st.text(st.sampled_from("ab\u00e9 "), max_size=4)
docs = st.lists(st.tuples(line, st.sampled_from(["\n", "\r\n", "\r"])), max_size=6)


def reference_lines(data: bytes) -> list[bytes]:
    """Hadoop's LineReader, by regex: \\r\\n, \\r and \\n end lines; no empty last line
    after a final terminator."""
    if not data:
        return []
    lines = re.split(rb"\r\n|\r|\n", data)
    if re.search(rb"(\r\n|\r|\n)\Z", data):
        lines.pop()
    return lines


def render(doc, trailing: bool) -> bytes:
    text = "".join(t + eol for t, eol in doc)
    if doc and not trailing:
        text = text[: -len(doc[-1][1])]
        if doc[-1][0] == "":  # "a\n" + "" reads as ["a"]: keep the terminator
            text += doc[-1][1]
    return text.encode()


@SETTINGS
@given(doc=docs, trailing=st.booleans(), chunk=st.sampled_from([1, 2, 3, 1 << 20]))
def test_two_splits_at_every_byte_offset(tmp_path_factory, monkeypatch, doc, trailing, chunk):
    monkeypatch.setattr(textfile, "_READ_CHUNK", chunk)
    data = render(doc, trailing)
    path = tmp_path_factory.mktemp("offsets") / "f.txt"
    path.write_bytes(data)
    want = reference_lines(data)
    assert [*read_split(str(path), 0, len(data), use_unicode=False)] == want
    for k in range(1, len(data)):  # two non-empty splits, as plan_splits makes
        got = [*read_split(str(path), 0, k, use_unicode=False),
               *read_split(str(path), k, len(data) - k, use_unicode=False)]
        assert got == want, (data, k)


def test_lone_carriage_returns_end_lines(tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"a\rb\r\rc\r\nd\re")
    for n in (1, 2, 3, 13):
        splits = plan_splits([str(path)], n)
        assert [x for s in splits for x in read_split(*s)] == ["a", "b", "", "c", "d", "e"]


@pytest.fixture
def mem():
    root = f"memory:///asyncspark-test-{uuid.uuid4().hex}"
    yield root
    memory = fsspec.filesystem("memory")
    if memory.exists(root.removeprefix("memory://")):
        memory.rm(root.removeprefix("memory://"), recursive=True)


def _put(url: str, data: bytes) -> None:
    with fsspec.open(url, "wb") as f:
        f.write(data)


def test_memory_filesystem_listing_and_splits(mem):
    _put(f"{mem}/d/b.txt", b"3\n4\r5")
    _put(f"{mem}/d/a.txt", b"1\r\n2\n")
    _put(f"{mem}/d/_SUCCESS", b"")
    _put(f"{mem}/d/.hidden", b"x")
    files = list_input_files(f"{mem}/d")
    assert files == [f"{mem}/d/a.txt", f"{mem}/d/b.txt"]
    assert list_input_files(f"{mem}/d/b*") == [f"{mem}/d/b.txt"]
    for n in (1, 2, 5):
        splits = plan_splits(files, n)
        assert [x for s in splits for x in read_split(*s)] == ["1", "2", "3", "4", "5"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_input_files(f"{mem}/missing.txt")
    with pytest.raises(FileNotFoundError, match="does not match"):
        list_input_files(f"{mem}/d/*.csv")


COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": None, ".lz4": None}  # the optional codecs (the test extra has them)


@pytest.mark.parametrize("ext", sorted(COMPRESSORS))
@pytest.mark.parametrize("where", ["local", "memory"])
def test_each_compression_reads_and_writes(tmp_path, mem, ext, where):
    if ext == ".zst":
        pytest.importorskip("zstandard", reason="the zstandard package (test extra)")
    if ext == ".lz4":
        pytest.importorskip("lz4.frame", reason="the lz4 package (test extra)")
    base = str(tmp_path) if where == "local" else mem
    path = fs.join(base, f"data.txt{ext}")
    payload = b"x\r\ny\rz\n" * 50
    with fs.open_write(path) as f:
        f.write(payload)
    with fs.open_file(path) as raw:
        stored = raw.read()
    assert len(stored) < len(payload)  # compressed on disk
    if ext in (".bz2", ".xz"):
        assert stored == COMPRESSORS[ext](payload)
    with fs.open_read(path) as f:
        assert f.read() == payload
    splits = plan_splits([path], 7)
    assert splits == [(path, 0, fs.size(path))]  # compressed: not splittable
    assert list(read_split(*splits[0])) == ["x", "y", "z"] * 50


def test_optional_codecs_say_what_is_missing(tmp_path, monkeypatch):
    import sys

    for ext, package in ((".zst", "zstandard"), (".lz4", "lz4.frame")):
        monkeypatch.setitem(sys.modules, package, None)  # import fails: not installed
        path = tmp_path / f"f{ext}"
        path.write_bytes(b"")
        with pytest.raises(ImportError, match=package.split(".")[0]):
            fs.open_read(str(path))


def test_local_paths_and_file_urls(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"1\n")
    assert fs.is_local(str(tmp_path))
    assert fs.is_local(f"file://{tmp_path}")
    assert not fs.is_local("memory://x")
    assert list_input_files(f"file://{tmp_path}") == [str(tmp_path / "a.txt")]
    fs.makedirs(str(tmp_path / "n" / "m"))
    fs.rename(str(tmp_path / "a.txt"), str(tmp_path / "n" / "b.txt"))
    assert fs.exists(str(tmp_path / "n" / "b.txt"))
    fs.remove(str(tmp_path / "n"), recursive=True)
    assert not fs.exists(str(tmp_path / "n"))


def test_add_file_from_a_url(tmp_path, mem):
    from asyncspark.files import AddedFiles

    _put(f"{mem}/conf/settings.ini", b"k=v")
    _put(f"{mem}/tree/a/b.txt", b"b")
    files = AddedFiles(str(tmp_path))
    assert files.add_file(f"{mem}/conf/settings.ini") == "settings.ini"
    assert (tmp_path / "files" / "settings.ini").read_bytes() == b"k=v"
    with pytest.raises(ValueError, match="recursive=True"):
        files.add_file(f"{mem}/tree")
    files.add_file(f"{mem}/tree", recursive=True)
    assert (tmp_path / "files" / "tree" / "a" / "b.txt").read_bytes() == b"b"
    with pytest.raises(FileNotFoundError):
        files.add_file(f"{mem}/missing")


def test_reliable_checkpoint_files_on_an_fsspec_filesystem(mem):
    import pickle

    from asyncspark.rdds import checkpoint

    directory = f"{mem}/ckpt/rdd-3"
    fs.makedirs(directory)
    for split, batch in enumerate([[1, 2], ["x"]]):
        path = fs.join(directory, f"part-{split:05d}")
        with checkpoint._remote_atomic(path, f"{path}.tmp-9") as f:
            f.write(pickle.dumps(batch))
    with pytest.raises(RuntimeError, match="torn"):  # a failed write leaves nothing
        with checkpoint._remote_atomic(fs.join(directory, "part-00002"),
                                       fs.join(directory, "part-00002.tmp-1")) as f:
            f.write(b"partial")
            raise RuntimeError("torn")
    assert checkpoint._count_parts(directory) == 2
    rdd = checkpoint.ReliableCheckpointRDD.__new__(checkpoint.ReliableCheckpointRDD)
    rdd.path, rdd.checkpointed_id = directory, 3
    assert list(rdd.compute(0, None)) == [1, 2]
    assert list(rdd.compute(1, None)) == ["x"]
    with pytest.raises(FileNotFoundError, match="partition 2"):
        rdd.compute(2, None)
