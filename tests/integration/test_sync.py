"""The blocking facade: same API, blocking actions, its own loop thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from asyncspark import JobCancelledError
from asyncspark.sync import SparkContext


@pytest.fixture(scope="module")
def ssc():
    with SparkContext("local[2]", appName="sync-tests") as ctx:
        yield ctx


def test_blocking_actions(ssc):
    rdd = ssc.parallelize(range(10), 3)
    assert rdd.map(lambda x: x * 2).collect() == [x * 2 for x in range(10)]
    assert rdd.count() == 10
    assert rdd.sum() == 45
    assert rdd.take(3) == [0, 1, 2]
    assert (rdd + rdd).count() == 20
    assert rdd.zip(rdd).first() == (0, 0)
    assert ssc.union([rdd, rdd]).getNumPartitions() == 6
    assert list(rdd.toLocalIterator()) == list(range(10))
    assert ssc.defaultParallelism == 2
    assert ssc.master == "local[2]"
    assert ssc.appName == "sync-tests"


def test_job_group_is_per_thread_and_cancellable(ssc):
    errors = []

    def worker():
        ssc.setJobGroup("slow", "a job to cancel")
        try:
            ssc.parallelize(range(2), 2).map(lambda x: [x for _ in iter(int, 1)]).count()
        except JobCancelledError as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    deadline = time.monotonic() + 10
    while not ssc.statusTracker().getJobIdsForGroup("slow"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert ssc.getLocalProperty("spark.jobGroup.id") is None  # not this thread's group
    ssc.cancelJobGroup("slow")
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1
    assert ssc.parallelize([1, 2, 3]).count() == 3


def test_refuses_running_loop():
    async def inside():
        with pytest.raises(RuntimeError, match="inside a running event loop"):
            SparkContext("local[1]")

    asyncio.run(inside())


def test_one_facade_context_per_process(ssc):
    """As PySpark: a second SparkContext while one runs is refused, naming the first;
    getOrCreate returns the running one (tests/parity/test_facade.py: stop, then a new
    one)."""
    with pytest.raises(ValueError, match=r"Cannot run multiple SparkContexts at once; "
                                         r"existing SparkContext\(app=sync-tests"):
        SparkContext("local[1]")
    assert SparkContext.getOrCreate() is ssc
