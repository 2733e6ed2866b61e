"""Dynamic allocation with real executor processes (local[3], spark.dynamicAllocation.*):
one executor at start; a backlog of map tasks grows it to three; while the one reduce
task runs, the idle executors holding its shuffle's map outputs are kept past their idle
timeout; once the job has ended they are removed down to minExecutors (removed, not lost:
no replacement starts); the result is exact, and so is a second action on the same
shuffle after its outputs went with the removed executors (recomputed)."""

from __future__ import annotations

import asyncio
import os
import time
from operator import add

import pytest

import asyncspark
from asyncspark import Context

pytestmark = pytest.mark.asyncio(loop_scope="module", loop_factories=["asyncio"])

CONF = {"spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.minExecutors": "1",
        "spark.dynamicAllocation.schedulerBacklogTimeout": "100ms",
        "spark.dynamicAllocation.executorIdleTimeout": "1s",
        # Executors holding outputs no active job needs may go at once.
        "spark.dynamicAllocation.shuffleTracking.timeout": "0",
        "asyncspark.executor.registrationTimeout": "60s"}


class Removals(asyncspark.SparkListener):
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def onExecutorRemoved(self, event) -> None:
        self.reasons.append(event.reason)


def wait_file(path: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.02)


async def until(cond, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)


def touch(path: str) -> None:
    with open(path, "w"):
        pass


def registered(sc) -> set[str]:
    return set(sc._task_scheduler.executors)


async def test_scales_up_keeps_shuffle_holders_then_scales_down(tmp_path):
    go, reducing, release = (str(tmp_path / n) for n in ("go", "reducing", "release"))

    def mapper(it):
        wait_file(go)  # held until three executors have each taken a map task
        return [(x % 10, x) for x in it]

    def reducer(it):
        open(reducing, "w").close()
        wait_file(release)
        return list(it)

    async with Context("local[3]", app_name="dynalloc", conf=CONF) as sc:
        removals = Removals()
        sc.addSparkListener(removals)
        alloc = sc._backend.allocation
        assert alloc is not None
        assert alloc.policy.conf.max_executors == 3
        assert len(registered(sc)) == 1  # initial = minExecutors
        pairs = sc.parallelize(range(600), 6).mapPartitions(mapper).reduceByKey(add, 1)
        job = asyncio.ensure_future(pairs.mapPartitions(reducer).collect())
        # Six map tasks wait for a slot: the target grows 1 -> 2 -> 3 (the maximum).
        await until(lambda: len(registered(sc)) == 3, 60, "three executors")
        await until(lambda: len(sc._task_scheduler.tasks) == 3, 30, "a map task on each")
        touch(go)
        await until(lambda: os.path.exists(reducing), 60, "the reduce task running")
        holders = {s[0] for s in sc._task_scheduler.core.map_outputs.statuses(
            next(iter(sc._dag.shuffle_stages)))}
        assert holders == registered(sc)  # every executor holds map outputs
        # Two executors are idle, past their 1 s idle timeout, and stay: the running
        # job still needs the map outputs they hold.
        await asyncio.sleep(3.0)
        assert registered(sc) == holders
        assert alloc.policy.removed == 0
        assert not removals.reasons
        touch(release)
        result = dict(await asyncio.wait_for(job, 60))
        expected = {k: sum(x for x in range(600) if x % 10 == k) for k in range(10)}
        assert result == expected
        # The job is done: idle executors go, down to minExecutors.
        await until(lambda: len(registered(sc)) == 1, 30, "back to one executor")
        await until(lambda: len(removals.reasons) == 2, 10, "two removals reported")
        assert all("removed by dynamic allocation" in r for r in removals.reasons)
        left = registered(sc)
        await asyncio.sleep(1.0)  # removed, not lost: nothing replaces them
        assert registered(sc) == left
        assert not sc._backend.launched.keys() - left
        assert sc._backend.cluster.target == 1
        # The removed executors' map outputs are gone with them: recomputed, exact.
        assert dict(await pairs.collect()) == expected
