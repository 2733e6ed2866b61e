"""sortByKey's sorted runs (``asyncspark.shuffle.sorted_runs``): the chunked reservoir
samples uniformly, the runs written by the sampling pass cut into the same partitions as
bucketing the records does, and a damaged file is refused before it is used."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest

from asyncspark.errors import CorruptDataError
from asyncspark.partitioner import RangePartitioner
from asyncspark.shuffle import sorted_runs
from asyncspark.shuffle.batch import decode_batches
from asyncspark.shuffle.sorted_runs import Reservoir, cut_sorted_runs, write_sorted_runs


def test_the_chunked_reservoir_counts_everything_and_samples_uniformly():
    for n in (0, 5, 20, 21, 1000):
        r = Reservoir(20, random.Random(1))
        for i in range(0, n, 7):
            r.offer(list(range(i, min(n, i + 7))))
        assert r.seen == n
        assert len(r.items) == min(n, 20) == len(set(r.items))
    hits: Counter = Counter()
    runs, k, n = 1000, 20, 500
    for seed in range(runs):
        r = Reservoir(k, random.Random(seed))
        for i in range(0, n, 33):
            r.offer(list(range(i, min(n, i + 33))))
        hits.update(r.items)
    tenths = [sum(hits[i] for i in range(j * n // 10, (j + 1) * n // 10)) for j in range(10)]
    assert all(abs(t - runs * k / 10) < 250 for t in tenths), tenths


def _cut(path, partitioner):
    parts: dict[int, list] = {}
    frames = []

    def add_frame(p, frame, count):
        got = [r for b in decode_batches([frame]) for r in b]
        assert len(got) == count
        frames.append(p)
        parts.setdefault(p, []).extend(got)

    def add_records(records):
        for r in records:
            parts.setdefault(partitioner.getPartition(r[0]), []).append(r)

    cut_sorted_runs(path, partitioner, add_frame, add_records)
    return parts, frames


@pytest.mark.parametrize("ascending", [True, False])
def test_sorted_runs_cut_into_the_partitions_of_their_keys(tmp_path, monkeypatch, ascending):
    monkeypatch.setattr(sorted_runs, "PRESORT_BATCH", 50)
    monkeypatch.setattr(sorted_runs, "_FIRST_CHUNK", 300)
    rng = random.Random(5)
    records = [(rng.randrange(-10**12, 10**12) if i % 5 else rng.randrange(100),
                (None, 1.5, True, i)[i % 4]) for i in range(2000)]
    path = str(tmp_path / "runs")
    res = Reservoir(30, random.Random(0))
    # a budget so small that the records go in several chunks (several sorted runs)
    assert write_sorted_runs(iter(records), path, 1, res) is True
    assert res.seen == len(records)
    assert len(res.items) == 30
    part = RangePartitioner(4, sorted(k for k, _ in rng.sample(records, 3)), ascending)
    parts, frames = _cut(path, part)
    expected: dict[int, list] = {}
    for r in records:
        expected.setdefault(part.getPartition(r[0]), []).append(r)
    assert {p: sorted(rs, key=repr) for p, rs in parts.items()} == {
        p: sorted(rs, key=repr) for p, rs in expected.items()}
    assert len(frames) >= 15  # most of the ~40 batches were passed on whole
    assert sorted(os.listdir(tmp_path)) == ["runs", "runs.index"]


def test_other_records_write_no_runs_but_are_all_sampled(tmp_path):
    path = str(tmp_path / "runs")
    records = [(i, None) for i in range(5000)] + [("a", None)] + [(i, "x") for i in range(99)]
    res = Reservoir(10, random.Random(0))
    assert write_sorted_runs(iter(records), path, 1 << 20, res) is False
    assert res.seen == len(records)
    assert os.listdir(tmp_path) == []
    assert write_sorted_runs(iter([]), path, 1 << 20, res) is False


def test_a_damaged_run_file_is_refused(tmp_path):
    path = str(tmp_path / "runs")
    records = [(i * 7919 % 10007, None) for i in range(10_000)]
    assert write_sorted_runs(iter(records), path, 1 << 20, Reservoir(5, random.Random(0)))
    part = RangePartitioner(3, [3000, 6000])
    with open(path, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(CorruptDataError):
        _cut(path, part)
    with open(path, "r+b") as f:
        f.truncate(50)
    with pytest.raises(CorruptDataError):
        _cut(path, part)
    with open(path + ".index", "wb") as f:
        f.write(b"junk")
    with pytest.raises(CorruptDataError):
        _cut(path, part)
    os.unlink(path + ".index")
    with pytest.raises(OSError):
        _cut(path, part)
