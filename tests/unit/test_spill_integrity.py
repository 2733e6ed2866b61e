"""Spill files and disk blocks are checked on read (issue 11, item 2): a corrupt spill
fails with ``CorruptDataError`` naming the file (the task is then retried), leaving no
output behind; a corrupt cached block file is removed and reported missing."""

from __future__ import annotations

import glob
import operator
import os

import pytest

from asyncspark.errors import CorruptDataError
from asyncspark.functions import Aggregator, identity
from asyncspark.shuffle.sorter import ExternalMerger, ExternalSorter
from asyncspark.shuffle.writer import _Spill
from asyncspark.storage.disk_store import DiskStore

SUM = Aggregator(identity, operator.add, operator.add)


def _flip(path: str, at: int | None = None) -> None:
    size = os.path.getsize(path)
    at = size // 2 if at is None else at
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 1]))


def test_a_corrupt_map_spill_fails_the_task_naming_the_file(tmp_path):
    base = str(tmp_path / "shuffle_0_0_0")
    spill = _Spill(3, base + ".spill", budget=1000)
    for i in range(30):
        spill.add(i % 3, [(i, "x" * 50)] * 5)  # over the budget: spilled
    assert spill.spilled_bytes > 0
    _flip(base + ".spill")
    with pytest.raises(CorruptDataError, match=r"shuffle spill file .*shuffle_0_0_0\.spill: "
                                               r"checksum mismatch"):
        spill.finish(base + ".data", base + ".index")
    assert os.listdir(tmp_path) == []  # no output, no spill, no temporary file


def test_a_map_spill_that_is_intact_gives_the_same_bytes_as_no_spill(tmp_path):
    def write(budget: int, name: str) -> bytes:
        spill = _Spill(2, str(tmp_path / f"{name}.spill"), budget)
        for i in range(20):
            spill.add(i % 2, [(i, i)] * 10)
        spill.finish(str(tmp_path / f"{name}.data"), str(tmp_path / f"{name}.index"))
        return (tmp_path / f"{name}.data").read_bytes()

    assert write(200, "spilled") == write(1 << 30, "in_memory")


def test_a_corrupt_merger_spill_fails_naming_the_file(tmp_path):
    m = ExternalMerger(SUM, 2_000, str(tmp_path), 4)
    m.merge_values((i % 500, i) for i in range(20_000))
    assert m.spill_count > 0
    [path, *_] = sorted(p for p in glob.glob(str(tmp_path / "*" / "*"))
                        if os.path.getsize(p) > 100)
    _flip(path)
    with pytest.raises(CorruptDataError, match=f"{path}: checksum mismatch"):
        dict(m.items())
    m.close()
    assert os.listdir(tmp_path) == []


def test_a_truncated_sorter_run_fails_naming_the_file(tmp_path):
    s = ExternalSorter(20_000, str(tmp_path))
    it = s.sorted(range(50_000, 0, -1))
    assert s.spill_count > 1
    [path, *_] = sorted(glob.glob(str(tmp_path / "*" / "run*")))
    os.truncate(path, os.path.getsize(path) - 3)
    with pytest.raises(CorruptDataError, match=f"{path}: truncated"):
        list(it)
    s.close()
    assert os.listdir(tmp_path) == []


def test_a_corrupt_disk_block_is_removed_and_reported_missing(tmp_path):
    store = DiskStore(str(tmp_path / "blocks"))
    store.put("rdd_1_0", b"a" * 100)
    store.put("rdd_1_1", b"b" * 100)
    store.put("rdd_1_2", b"c" * 100)
    assert store.size("rdd_1_0") == 100
    _flip(store.path("rdd_1_0"))
    os.truncate(store.path("rdd_1_1"), 50)
    _flip(store.path("rdd_1_2"), at=0)  # the header's length
    assert store.get("rdd_1_0") is None
    assert store.get("rdd_1_1") is None
    assert store.get("rdd_1_2") is None
    assert store.corrupt == 3
    assert store.block_ids() == []  # removed: the next put stores it again
    store.put("rdd_1_0", b"a" * 100)
    assert store.get("rdd_1_0") == b"a" * 100
