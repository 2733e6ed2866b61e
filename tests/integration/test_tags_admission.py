"""Job tags (spark.job.tags) and admission control with real executor processes: tags
per coroutine and per facade thread, cancelJobsWithTag, a cancelled awaiting coroutine
killing its job's tasks, and maxActiveJobs / maxPendingTasks rejecting or waiting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from asyncspark import Context, JobCancelledError, JobRejectedError
from asyncspark.sync import SparkContext

ASYNC = pytest.mark.asyncio(loop_scope="function")


def spin(x):
    while True:  # pure Python: a kill interrupts it
        x += 1


def nap(x):
    time.sleep(0.8)
    return x


async def wait_until(predicate, limit: float = 10.0) -> float:
    """Seconds until ``predicate()`` holds (AssertionError after ``limit``)."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > limit:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def idle(sc: Context) -> bool:
    ts = sc._task_scheduler
    return not ts.tasks and all(e.free == e.slots for e in ts.executors.values())


@ASYNC
async def test_tags_are_per_coroutine_and_cancel_only_their_jobs():
    async with Context("local[2]") as sc:
        with pytest.raises(ValueError, match="cannot contain `,`"):
            sc.addJobTag("a,b")
        with pytest.raises(ValueError, match="cannot be an empty string"):
            sc.addJobTag("")

        async def tagged():
            sc.addJobTag("req-1")
            sc.addJobTag("spinning")
            sc.removeJobTag("spinning")
            assert sc.getJobTags() == {"req-1"}
            return await sc.parallelize([0], 1).map(spin).collect()

        async def other():
            sc.addJobTag("req-2")
            return await sc.parallelize(range(4), 1).map(nap).count()

        a = asyncio.ensure_future(tagged())
        b = asyncio.ensure_future(other())
        await wait_until(lambda: len(sc._task_scheduler.tasks) == 2)
        assert sc.getJobTags() == set()  # this coroutine's tags are its own
        sc.cancelJobsWithTag("req-1")
        with pytest.raises(JobCancelledError, match="job tag req-1"):
            await a
        assert await b == 4
        sc.addJobTag("x")
        sc.clearJobTags()
        assert sc.getJobTags() == set()
        sc.setInterruptOnCancel(True)
        assert sc.getLocalProperty("spark.job.interruptOnCancel") == "true"


@ASYNC
async def test_cancelling_the_awaiting_coroutine_kills_its_tasks():
    async with Context("local[2]") as sc:
        job = asyncio.ensure_future(sc.parallelize([0, 1], 2).map(spin).collect())
        await wait_until(lambda: len(sc._task_scheduler.tasks) == 2)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        # tasks killed and both executors free again well within 2 s
        assert await wait_until(lambda: idle(sc), limit=2.0) < 2.0
        assert await sc.parallelize(range(10), 2).sum() == 45


def test_facade_tags_are_per_thread():
    with SparkContext("local[2]", "tags") as ssc:
        errors: list[BaseException] = []
        started = threading.Event()

        def worker():
            ssc.addJobTag("worker")
            started.set()
            try:
                ssc.parallelize([0], 1).map(spin).collect()
            except JobCancelledError as exc:
                errors.append(exc)

        t = threading.Thread(target=worker)
        t.start()
        started.wait(5)
        deadline = time.monotonic() + 10
        while not ssc.statusTracker().getActiveJobsIds():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert ssc.getJobTags() == set()
        ssc.cancelJobsWithTag("worker")
        t.join(10)
        assert not t.is_alive()
        assert len(errors) == 1
        with pytest.raises(ValueError, match="cannot contain"):
            ssc.cancelJobsWithTag("a,b")
        assert ssc.parallelize([1, 2, 3]).count() == 3


@ASYNC
async def test_max_active_jobs_rejects_at_once_or_waits():
    async with Context("local[2]", conf={"asyncspark.scheduler.maxActiveJobs": 1}) as sc:
        first = asyncio.ensure_future(sc.parallelize([1], 1).map(nap).collect())
        await wait_until(lambda: sc._task_scheduler.tasks)
        t0 = time.monotonic()
        with pytest.raises(JobRejectedError, match="maxActiveJobs = 1") as info:
            await sc.parallelize([2], 1).collect()
        assert time.monotonic() - t0 < 0.5  # at once, not after the running job
        assert info.value.active_jobs == 1

        async def patient():
            sc.setLocalProperty("asyncspark.scheduler.admissionTimeout", "30s")
            return await sc.parallelize([3], 1).collect()

        assert await asyncio.ensure_future(patient()) == [3]  # waited for the first job
        assert first.done()
        assert await first == [1]
        # the local property applies to its own coroutine only
        assert sc.getLocalProperty("asyncspark.scheduler.admissionTimeout") is None


@ASYNC
async def test_max_pending_tasks_counts_result_and_map_tasks():
    conf = {"asyncspark.scheduler.maxPendingTasks": 4,
            "asyncspark.scheduler.admissionTimeout": "0"}
    async with Context("local[2]", conf=conf) as sc:
        pairs = sc.parallelize(range(100), 2).map(lambda x: (x % 3, 1))
        # 2 map + 2 reduce tasks: fits alone
        assert sorted(await pairs.reduceByKey(lambda a, b: a + b, 2).collect()) == [
            (0, 34), (1, 33), (2, 33)]
        with pytest.raises(JobRejectedError, match="it has 5 tasks, more than"):
            await sc.parallelize(range(5), 5).count()
        slow = asyncio.ensure_future(sc.parallelize(range(3), 3).map(nap).count())
        await wait_until(lambda: sc._task_scheduler.tasks)
        with pytest.raises(JobRejectedError, match="would make 5 unfinished tasks"):
            await sc.parallelize(range(2), 2).count()
        assert await sc.parallelize([1], 1).count() == 1  # 3 + 1 fits
        assert await slow == 3
