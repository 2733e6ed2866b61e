"""The shuffle engine end to end: remote fetches through the transport, FetchFailed,
map stage reuse, spill accounting."""

from __future__ import annotations

import asyncio
import glob
import operator
import os

import pytest

import asyncspark
from asyncspark import Context, JobFailedError

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


async def test_missing_map_output_fails_the_job_cleanly(tmp_path):
    async with Context("local[2]", conf={"spark.local.dir": str(tmp_path)}) as sc:
        pairs = sc.parallelize(range(100), 4).map(lambda x: (x % 5, x))
        grouped = pairs.groupByKey(2)
        assert await grouped.count() == 5
        for f in glob.glob(str(tmp_path / "**" / "shuffle_*.data"), recursive=True):
            os.unlink(f)
        with pytest.raises(JobFailedError, match="could not fetch its input") as info:
            await asyncio.wait_for(grouped.mapValues(list).collect(), 20)
        assert "FetchFailedError" in str(info.value)


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
