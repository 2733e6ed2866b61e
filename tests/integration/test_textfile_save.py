"""``textFile`` and ``saveAsTextFile`` on real executor processes, against PySpark/Hadoop.

Doctest inputs are PySpark's (``SparkContext.textFile``, ``SparkContext.union``,
``RDD.saveAsTextFile``); split counts follow Hadoop's ``FileInputFormat.getSplits``.
"""

from __future__ import annotations

import glob
import gzip
import os
import random
from fileinput import hook_compressed
from fileinput import input as finput

import pytest

from asyncspark import JobFailedError

pytestmark = pytest.mark.asyncio(loop_scope="module")


def write(path, data: str | bytes) -> str:
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode, **({} if mode == "wb" else {"newline": ""})) as f:
        f.write(data)
    return str(path)


def read_bytes(*path: str) -> bytes:
    with open(os.path.join(*path), "rb") as f:
        return f.read()


def exists(*path: str) -> bool:
    return os.path.exists(os.path.join(*path))


def hadoop_splits(size: int, min_partitions: int, block: int = 32 << 20) -> int:
    """Number of splits Hadoop's FileInputFormat makes of one splittable file."""
    if size == 0:
        return 1
    split = max(1, min(size // max(min_partitions, 1), block))
    n, remaining = 0, size
    while remaining / split > 1.1:
        n += 1
        remaining -= split
    return n + (1 if remaining else 0)


def hadoop_lines(data: bytes) -> list[str]:
    """Hadoop's LineRecordReader records for '\\n' and '\\r\\n' terminated text."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:-1].decode() if line.endswith(b"\r") else line.decode() for line in lines]


# -- textFile ------------------------------------------------------------------------------


async def test_text_file_single_file(sc, tmp_path):
    # doctest of SparkContext.textFile (PySpark < 3.4)
    path = write(tmp_path / "sample-text.txt", "Hello world!")
    assert await sc.textFile(path).collect() == ["Hello world!"]
    assert await sc.textFile("file://" + path).collect() == ["Hello world!"]
    assert sc.textFile(path).getNumPartitions() == 2  # min(defaultParallelism, 2) splits


async def test_text_file_doctest_round_trip_and_comma_list(sc, tmp_path):
    # doctest of SparkContext.textFile (PySpark >= 3.4)
    path1 = str(tmp_path / "text1")
    path2 = str(tmp_path / "text2")
    await sc.parallelize(["x", "y", "z"]).saveAsTextFile(path1)
    await sc.parallelize(["aa", "bb", "cc"]).saveAsTextFile(path2)
    assert sorted(await sc.textFile(path1, 3).collect()) == ["x", "y", "z"]
    assert sorted(await sc.textFile(path2, 4).collect()) == ["aa", "bb", "cc"]
    assert sorted(await sc.textFile(f"{path1},{path2}", 5).collect()) == [
        "aa", "bb", "cc", "x", "y", "z"]


async def test_union_with_text_file(sc, tmp_path):
    # doctest of SparkContext.union
    path = write(tmp_path / "union-text.txt", "Hello")
    text_file = sc.textFile(path)
    assert await text_file.collect() == ["Hello"]
    parallelized = sc.parallelize(["World!"])
    assert sorted(await sc.union([text_file, parallelized]).collect()) == ["Hello", "World!"]


async def test_text_file_directory_skips_hidden_files(sc, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    write(d / "b.txt", "b1\nb2\n")
    write(d / "a.txt", "a1\na2")
    write(d / "_SUCCESS", "")
    write(d / "_ignored", "no\n")
    write(d / ".hidden.crc", "no\n")
    (d / "sub").mkdir()
    # files in name order, each file's lines in order
    assert await sc.textFile(str(d)).collect() == ["a1", "a2", "b1", "b2"]
    assert await sc.textFile(str(d) + "/").collect() == ["a1", "a2", "b1", "b2"]


async def test_text_file_globs(sc, tmp_path):
    for name, text in [("log-1.txt", "one\n"), ("log-2.txt", "two\n"), ("log-10.txt", "ten\n"),
                       ("other.csv", "csv\n")]:
        write(tmp_path / name, text)
    assert await sc.textFile(str(tmp_path / "log-?.txt")).collect() == ["one", "two"]
    assert sorted(await sc.textFile(str(tmp_path / "log-*.txt")).collect()) == [
        "one", "ten", "two"]
    assert await sc.textFile(str(tmp_path / "*.csv")).collect() == ["csv"]
    both = f"{tmp_path / 'log-1*'},{tmp_path / 'other.csv'}"
    assert sorted(await sc.textFile(both).collect()) == ["csv", "one", "ten"]
    with pytest.raises(FileNotFoundError):
        await sc.textFile(str(tmp_path / "nothing-*.txt")).collect()
    with pytest.raises(FileNotFoundError):
        await sc.textFile(str(tmp_path / "missing.txt")).collect()


async def test_text_file_gzip(sc, tmp_path):
    lines = [f"line {i} \u00e9" for i in range(1000)]
    path = tmp_path / "data.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    rdd = sc.textFile(str(path), 8)
    assert rdd.getNumPartitions() == 1  # gzip is not splittable
    assert await rdd.collect() == lines
    # a plain file next to it is split; the .gz one is not
    write(tmp_path / "plain.txt", "\n".join(lines) + "\n")
    both = sc.textFile(f"{path},{tmp_path / 'plain.txt'}", 8)
    assert both.getNumPartitions() > 2
    assert await both.collect() == lines + lines


async def test_text_file_split_counts_follow_hadoop(sc, tmp_path):
    path = write(tmp_path / "hundred.txt", "x" * 99 + "\n")
    for n in (1, 2, 3, 7, 10, 50):
        assert sc.textFile(path, n).getNumPartitions() == hadoop_splits(100, n), n
    # an empty file is one (empty) split
    empty = write(tmp_path / "empty.txt", "")
    assert sc.textFile(empty, 4).getNumPartitions() == 1
    assert await sc.textFile(empty, 4).collect() == []


async def test_text_file_lines_are_read_exactly_once_across_splits(sc, tmp_path):
    rng = random.Random(7)
    words = ["", "a", "bb", "ccc dd", "\u00e9\u00e8", "\u6d4b\u8bd5\u6d4b", "x" * 40]
    contents = [
        b"".join(rng.choice(words).encode() + rng.choice([b"\n", b"\r\n"]) for _ in range(300)),
        "\n".join(rng.choice(words) for _ in range(200)).encode(),  # no final newline
        b"\n\n\n" + b"only\n" + b"\n" * 5,
        b"no newline at all",
    ]
    for i, data in enumerate(contents):
        path = write(tmp_path / f"f{i}.txt", data)
        expected = hadoop_lines(data)
        for n in (1, 2, 3, 5, 8, 13, 40):
            rdd = sc.textFile(path, n)
            assert rdd.getNumPartitions() == hadoop_splits(len(data), n)
            assert await rdd.collect() == expected, (i, n)


async def test_text_file_use_unicode_false(sc, tmp_path):
    path = write(tmp_path / "u.txt", "caf\u00e9\nb\r\n")
    assert await sc.textFile(path, use_unicode=False).collect() == ["caf\u00e9".encode(), b"b"]
    assert await sc.textFile(path).collect() == ["caf\u00e9", "b"]


async def test_text_file_pipeline(sc, tmp_path):
    # a word count without a shuffle
    path = write(tmp_path / "words.txt", "a b a\nc a\n\nb\n")
    counts = await sc.textFile(path, 3).flatMap(str.split).countByValue()
    assert dict(counts) == {"a": 3, "b": 2, "c": 1}


# -- saveAsTextFile ------------------------------------------------------------------------


def read_parts(path: str, pattern: str = "/part-0000*") -> str:
    files = glob.glob(path + pattern)
    if not files:
        return ""
    with finput(files, openhook=hook_compressed) as f:
        rows = [r.decode("utf-8") if isinstance(r, bytes) else r for r in f]
    return "".join(sorted(rows))


async def test_save_as_text_file_doctests(sc, tmp_path):
    # doctests of RDD.saveAsTextFile
    name = str(tmp_path / "out1")
    await sc.parallelize(range(10)).saveAsTextFile(name)
    assert read_parts(name) == "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"
    # empty lines are tolerated
    name2 = str(tmp_path / "out2")
    await sc.parallelize(["", "foo", "", "bar", ""]).saveAsTextFile(name2)
    assert read_parts(name2) == "\n\n\nbar\nfoo\n"
    # compressionCodecClass
    name3 = str(tmp_path / "out3")
    await sc.parallelize(["foo", "bar"]).saveAsTextFile(
        name3, "org.apache.hadoop.io.compress.GzipCodec")
    assert read_parts(name3, "/part*.gz") == "bar\nfoo\n"


async def test_save_as_text_file_layout(sc, tmp_path):
    out = str(tmp_path / "layout")
    await sc.parallelize(range(7), 4).filter(lambda x: x != 0 and x < 4).saveAsTextFile(out)
    # one part file per partition, empty partitions included, and an empty _SUCCESS
    assert sorted(os.listdir(out)) == [
        "_SUCCESS", "part-00000", "part-00001", "part-00002", "part-00003"]
    assert read_bytes(out, "_SUCCESS") == b""
    assert [read_bytes(out, f"part-{i:05d}") for i in range(4)] == [b"", b"1\n2\n", b"3\n", b""]


async def test_save_as_text_file_converts_elements(sc, tmp_path):
    out = str(tmp_path / "conv")
    await sc.parallelize([1, 2.5, None, ("a", 1), b"raw\xffbytes", "\u00e9t\u00e9"], 1
                         ).saveAsTextFile(out)
    assert read_bytes(out, "part-00000") == (b"1\n2.5\nNone\n('a', 1)\nraw\xffbytes\n"
                                             + "\u00e9t\u00e9\n".encode())


async def test_save_as_text_file_refuses_an_existing_directory(sc, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    write(out / "keep.txt", "keep\n")
    with pytest.raises(FileExistsError, match="already exists"):
        await sc.parallelize([1, 2]).saveAsTextFile(str(out))
    assert os.listdir(out) == ["keep.txt"]
    # the same for a directory written by an earlier save
    done = str(tmp_path / "done")
    await sc.parallelize([1]).saveAsTextFile(done)
    with pytest.raises(FileExistsError):
        await sc.parallelize([2]).saveAsTextFile(done)
    assert await sc.textFile(done).collect() == ["1"]


async def test_save_as_text_file_bad_codec(sc, tmp_path):
    out = str(tmp_path / "codec")
    with pytest.raises(ValueError, match="compressionCodecClass"):
        await sc.parallelize([1]).saveAsTextFile(out, "org.example.NoSuchCodec")
    assert not exists(out)


async def test_save_as_text_file_failed_job_leaves_no_success_marker(sc, tmp_path):
    out = str(tmp_path / "failed")

    def boom(x):
        if x == 7:
            raise ValueError("bad record")
        return x

    with pytest.raises(JobFailedError, match="bad record"):
        await sc.parallelize(range(10), 3).map(boom).saveAsTextFile(out)
    assert exists(out)  # as Hadoop's committer: the directory stays, without _SUCCESS
    assert not exists(out, "_SUCCESS")
    assert not exists(out, "_temporary")


@pytest.mark.parametrize("codec", [None, "org.apache.hadoop.io.compress.GzipCodec"])
async def test_save_and_read_back(sc, tmp_path, codec):
    data = [f"{i}:{'x' * (i % 17)}" for i in range(10000)] + ["", "\u00e9", "tab\there"]
    out = str(tmp_path / "roundtrip")
    await sc.parallelize(data, 3).saveAsTextFile(out, codec)
    ext = ".gz" if codec else ""
    assert sorted(f for f in os.listdir(out) if f.startswith("part-")) == [
        f"part-0000{i}{ext}" for i in range(3)]
    back = sc.textFile(out)
    assert await back.collect() == data  # part files in order, lines in order
    if codec:
        assert back.getNumPartitions() == 3  # one per .gz file
        with gzip.open(os.path.join(out, "part-00000.gz"), "rt", encoding="utf-8") as f:
            assert f.readline() == "0:\n"
    assert await sc.textFile(out + "/part-*").count() == len(data)


async def test_glob_skips_hidden_files_like_hadoop(sc, tmp_path):
    out = str(tmp_path / "saved")
    await sc.parallelize(["a", "b", "c"], 2).saveAsTextFile(out)
    rdd = sc.textFile(out + "/*", 1)
    assert rdd.getNumPartitions() == 2  # one per part file: _SUCCESS is not an input
    assert sorted(await rdd.collect()) == ["a", "b", "c"]


async def test_min_partitions_zero_means_default(sc, tmp_path):
    path = write(tmp_path / "f.txt", "x\n" * 1000)
    assert sc.textFile(path, 0).getNumPartitions() == sc.textFile(path).getNumPartitions()
