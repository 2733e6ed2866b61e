"""The shuffle engine end to end: remote fetches through the transport, FetchFailed,
map stage reuse, spill accounting."""

from __future__ import annotations

import asyncio
import glob
import operator
import os

import pytest

import asyncspark
from asyncspark import Context

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Stages(asyncspark.SparkListener):
    def __init__(self):
        self.submitted = []
        self.task_ends = []

    def onStageSubmitted(self, e):
        self.submitted.append(e)

    def onTaskEnd(self, e):
        self.task_ends.append(e)


def words(i):
    return [f"w{(i * 7 + j) % 97}" for j in range(2000)]


async def test_remote_fetch_through_the_transport_gives_the_same_answer():
    conf = {"asyncspark.shuffle.localRead": "false", "spark.reducer.maxSizeInFlight": "4k"}
    async with Context("local[2]", conf=conf) as sc:
        rdd = sc.parallelize(range(8), 8).flatMap(words).map(lambda w: (w, 1))
        got = dict(await rdd.reduceByKey(operator.add, 4).collect())
    expected: dict = {}
    for i in range(8):
        for w in words(i):
            expected[w] = expected.get(w, 0) + 1
    assert got == expected


async def test_map_stage_is_reused_across_jobs():
    async with Context("local[2]") as sc:
        rec = Stages()
        sc.addSparkListener(rec)
        counts = sc.parallelize(range(100), 4).map(lambda x: (x % 5, 1)).reduceByKey(
            operator.add, 3)
        assert sorted(await counts.collect()) == [(k, 20) for k in range(5)]
        await asyncio.sleep(0.05)
        first = len(rec.submitted)
        assert first == 2  # map stage + result stage
        assert await counts.count() == 5
        await asyncio.sleep(0.05)
        assert len(rec.submitted) == first + 1  # only the result stage ran again


async def test_missing_map_output_is_recomputed(tmp_path):
    """A reducer that cannot read a map output fails with FetchFailed; the map stage runs
    again for the lost outputs and the job still gives the exact answer."""
    async with Context("local[2]", conf={"spark.local.dir": str(tmp_path)}) as sc:
        rec = Stages()
        sc.addSparkListener(rec)
        pairs = sc.parallelize(range(100), 4).map(lambda x: (x % 5, x))
        grouped = pairs.groupByKey(2)
        assert await grouped.count() == 5
        for f in glob.glob(str(tmp_path / "**" / "shuffle_*.data"), recursive=True):
            os.unlink(f)
        got = await asyncio.wait_for(grouped.mapValues(sorted).collect(), 20)
        assert sorted(got) == [(k, list(range(k, 100, 5))) for k in range(5)]
        assert sc._dag.fetch_failures >= 1
        assert sc._dag.resubmissions >= 2  # the map stage, then the result stage


async def test_spill_is_reported():
    conf = {"asyncspark.shuffle.memoryBudget": "256k"}
    async with Context("local[2]", conf=conf) as sc:
        rec = Stages()
        sc.addSparkListener(rec)
        data = sc.parallelize(range(4), 4).flatMap(lambda i: ((k, i) for k in range(50_000)))
        assert await data.reduceByKey(operator.add, 4).count() == 50_000
        await asyncio.sleep(0.1)
        spilled = sum(e.metrics.get("shuffle_spill_bytes", 0) for e in rec.task_ends)
        assert spilled > 0


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("op", ["reduceByKey", "groupByKey", "sortByKey"])
@pytest.mark.asyncio(loop_factories=["uvloop"])  # executors are the same on either loop
async def test_shuffle_4x_the_budget_stays_within_2x_budget_plus_overhead(op):
    budget = 3 << 20
    n = 150_000  # 4 x 150k records, ~13.7 MB pickled: > 4 x budget
    async with Context("local[2]", conf={"asyncspark.shuffle.memoryBudget": str(budget)}) as sc:
        rec = Stages()
        sc.addSparkListener(rec)
        assert await sc.parallelize(range(8), 2).map(lambda x: (x, x)).reduceByKey(
            operator.add).count() == 8  # warm-up: imports and a first shuffle
        pids = [e.pid for e in sc._task_scheduler.executors.values()]
        base = max(_rss(p) for p in pids)
        data = sc.parallelize(range(4), 4).flatMap(
            lambda i: ((f"key-{k:09d}", k) for k in range(i * n, (i + 1) * n)))
        if op == "reduceByKey":
            out = data.reduceByKey(operator.add, 4)
        elif op == "groupByKey":
            out = data.groupByKey(4).mapValues(len)
        else:
            out = data.sortByKey(True, 4)
        assert await out.count() == 4 * n
        if op == "sortByKey":
            first = await out.take(3)
            assert first == [("key-000000000", 0), ("key-000000001", 1), ("key-000000002", 2)]
        peak = max(_peak_rss(p) for p in pids)
        await asyncio.sleep(0.1)
        spilled = sum(e.metrics.get("shuffle_spill_bytes", 0) for e in rec.task_ends)
        written = sum(e.metrics.get("shuffle_write_bytes", 0) for e in rec.task_ends)
    assert written >= 4 * budget  # the shuffled data is at least 4x the budget
    assert spilled > 0
    overhead = 64 << 20
    assert peak - base <= 2 * budget + overhead, (
        f"{op}: executor peak RSS grew by {(peak - base) >> 20} MiB with a "
        f"{budget >> 20} MiB budget")


async def test_reduce_by_key_with_nearly_unique_keys_skips_map_side_combine_correctly():
    # > 65536 records per map task with few repeats: the writer ships them uncombined
    # (and combines when keys repeat: the first partition's keys repeat 10 times).
    async with Context("local[2]") as sc:
        def gen(i):
            if i == 0:
                return ((k % 10_000, 1) for k in range(100_000))
            return ((k, k) for k in range(100_000))

        got = dict(await sc.parallelize(range(2), 2).flatMap(gen).reduceByKey(
            operator.add, 3).collect())
    expected = {k: k for k in range(100_000)}
    for k in range(10_000):
        expected[k] += 10
    assert got == expected
