"""``RDD.toLocalIterator`` on real executor processes, against PySpark's documented behaviour.

PySpark's doctest (``list(rdd.toLocalIterator())``) and its unit tests
``test_to_local_iterator_failure`` / ``test_to_local_iterator_collects_single_partition``
(pyspark/tests/test_rdd.py), in async form; one job per partition, as Spark's
``RDD.toLocalIterator``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

import pytest

from asyncspark import JobFailedError

pytestmark = pytest.mark.asyncio(loop_scope="module")


class _Recorder:
    def __init__(self) -> None:
        self.jobs: list = []
        self.ends: list = []
        self.stage_tasks: list[int] = []

    def onJobStart(self, event) -> None:
        self.jobs.append(event)

    def onJobEnd(self, event) -> None:
        self.ends.append(event)

    def onStageSubmitted(self, event) -> None:
        self.stage_tasks.append(event.numTasks)

    async def settle(self) -> None:
        """Wait for the listener bus: a moment, then until every started job has ended."""
        await asyncio.sleep(0.05)
        for _ in range(200):
            if len(self.ends) == len(self.jobs):
                return
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def recording(sc):
    rec = _Recorder()
    sc.addSparkListener(rec)
    try:
        yield rec
        await rec.settle()
    finally:
        sc.removeSparkListener(rec)


async def consume(aiter) -> list:
    return [x async for x in aiter]


async def test_doctest(sc):
    # doctest of RDD.toLocalIterator
    rdd = sc.parallelize(range(10))
    assert [x async for x in rdd.toLocalIterator()] == list(range(10))


@pytest.mark.parametrize("prefetch", [False, True])
async def test_one_job_per_partition(sc, prefetch):
    rdd = sc.parallelize(range(23), 5).map(lambda x: x * 2)
    async with recording(sc) as rec:
        got = await consume(rdd.toLocalIterator(prefetchPartitions=prefetch))
    assert got == [x * 2 for x in range(23)]
    assert len(rec.jobs) == 5
    assert rec.stage_tasks == [1, 1, 1, 1, 1]
    assert all(e.jobResult == "JobSucceeded" for e in rec.ends)


async def test_empty(sc):
    async with recording(sc) as rec:
        assert await consume(sc.emptyRDD().toLocalIterator()) == []
    assert rec.jobs == []
    async with recording(sc) as rec:
        assert await consume(sc.parallelize([], 3).toLocalIterator()) == []
    assert len(rec.jobs) == 3
    # empty partitions in between are skipped over
    rdd = sc.parallelize(range(10), 5).filter(lambda x: x in (0, 9))
    assert await consume(rdd.toLocalIterator(prefetchPartitions=True)) == [0, 9]


async def test_collects_single_partitions_lazily(sc):
    # pyspark test_to_local_iterator_collects_single_partition: partitions are not
    # computed until iteration reaches them
    def fail_last(x):
        if x == 9:
            raise RuntimeError("This should not be hit")
        return x

    rdd = sc.range(12, numSlices=4).map(fail_last)
    async with recording(sc) as rec:
        it = rdd.toLocalIterator()
        try:
            for i in range(4):
                assert await anext(it) == i
        finally:
            await it.aclose()
    assert len(rec.jobs) == 2
    # nothing runs before the first element is asked for
    async with recording(sc) as rec:
        it = rdd.toLocalIterator()
        await asyncio.sleep(0.05)
        await it.aclose()
    assert rec.jobs == []


async def test_failure_propagates(sc):
    # pyspark test_to_local_iterator_failure
    def fail(_):
        raise RuntimeError("local iterator error")

    for prefetch in (False, True):
        with pytest.raises(JobFailedError, match="local iterator error"):
            await consume(sc.range(10).map(fail).toLocalIterator(prefetchPartitions=prefetch))
    # a failure in a later partition comes after the earlier partitions' elements
    def fail_at_7(x):
        if x == 7:
            raise ValueError("seven")
        return x

    got = []
    with pytest.raises(JobFailedError, match="seven"):
        async for x in sc.range(10, numSlices=5).map(fail_at_7).toLocalIterator():
            got.append(x)  # noqa: PERF401 (the elements before the failure are the point)
    assert got == [0, 1, 2, 3, 4, 5]


async def test_prefetch_runs_the_next_partition_ahead(sc):
    rdd = sc.parallelize(range(6), 3)
    async with recording(sc) as rec:
        it = rdd.toLocalIterator(prefetchPartitions=True)
        try:
            assert await anext(it) == 0
            await rec.settle()
            jobs_after_first = len(rec.jobs)
            assert await consume(it) == [1, 2, 3, 4, 5]
        finally:
            await it.aclose()
    assert jobs_after_first == 2  # partition 0, and partition 1 fetched ahead
    assert len(rec.jobs) == 3


async def test_early_close_with_prefetch_cancels_cleanly(sc):
    def slow(x):
        time.sleep(0.3 if x >= 2 else 0)
        return x

    rdd = sc.parallelize(range(4), 2).map(slow)
    async with recording(sc) as rec:
        async with contextlib.aclosing(rdd.toLocalIterator(prefetchPartitions=True)) as it:
            async for x in it:
                assert x == 0
                await asyncio.sleep(0.1)  # the prefetch of partition 1 is under way
                break
        # the prefetched job was cancelled rather than left to finish
        await asyncio.sleep(0.1)
    assert len(rec.jobs) == 2
    assert rec.ends[-1].jobResult.startswith("JobFailed")
    assert sc.statusTracker().getActiveJobsIds() == []
    # and the context is fine afterwards
    assert await sc.parallelize(range(4), 2).sum() == 6


async def test_closing_after_a_failed_prefetch_leaves_nothing_unretrieved(sc):
    def fail_odd_partition(i, it):
        if i % 2:
            raise ValueError("prefetched partition failed")
        return it

    rdd = sc.parallelize(range(4), 2).mapPartitionsWithIndex(fail_odd_partition)
    loop = asyncio.get_running_loop()
    errors: list = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        async with recording(sc) as rec:
            it = rdd.toLocalIterator(prefetchPartitions=True)
            assert await anext(it) == 0
            for _ in range(100):  # until partition 1's job has failed
                await asyncio.sleep(0.02)
                if len(rec.ends) == 2:
                    break
            assert rec.ends[-1].jobResult.startswith("JobFailed")
            await it.aclose()
        del it
        gc.collect()
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(old)
    assert errors == []  # no "Task exception was never retrieved"


async def test_early_break_without_aclose(sc):
    rdd = sc.parallelize(range(100), 10)
    async for x in rdd.toLocalIterator(prefetchPartitions=True):
        if x == 15:
            break
    # the abandoned generator is finalized by the loop; jobs still work
    await asyncio.sleep(0.05)
    assert await rdd.count() == 100


async def test_cancelling_the_consumer_cancels_the_job(sc):
    def slow(x):
        time.sleep(5)
        return x

    rdd = sc.parallelize([1, 2], 2).map(slow)
    task = asyncio.ensure_future(consume(rdd.toLocalIterator()))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2
    assert await sc.parallelize([1, 2], 2).count() == 2


async def test_interleaved_iterators(sc):
    rdd = sc.parallelize(range(20), 4)
    a = rdd.toLocalIterator()
    b = rdd.map(lambda x: -x).toLocalIterator(prefetchPartitions=True)
    got_a, got_b = [], []
    try:
        for _ in range(20):
            got_a.append(await anext(a))
            got_b.append(await anext(b))
    finally:
        await a.aclose()
        await b.aclose()
    assert got_a == list(range(20))
    assert got_b == [-x for x in range(20)]


async def test_zip_with_index_and_text(sc, tmp_path):
    rdd = sc.parallelize("abcdefg", 3).zipWithIndex()
    assert await consume(rdd.toLocalIterator()) == [(c, i) for i, c in enumerate("abcdefg")]
    path = tmp_path / "t.txt"
    path.write_text("l1\nl2\nl3\n")
    assert await consume(sc.textFile(str(path), 3).toLocalIterator()) == ["l1", "l2", "l3"]
