"""Speculative execution and the output commit coordinator on real executors: a task
that is slow on its first attempt only (it sleeps while a marker file is absent, after
creating it) is overtaken by a speculative copy, which wins; the slow attempt is killed.
With speculation off the job waits for the slow attempt."""

from __future__ import annotations

import asyncio
import glob
import os
import time

import pytest

from asyncspark import Context

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLOW = 3.0
SPECULATION = {"spark.speculation": "true", "spark.speculation.interval": "50ms",
               "spark.task.maxFailures": "1"}


class TaskEnds:
    def __init__(self) -> None:
        self.ends: list = []
        self.changed = asyncio.Event()

    def onTaskEnd(self, ev) -> None:
        self.ends.append(ev)
        self.changed.set()


def slow_first_attempt(marker: str, slow_value: int):
    """``x -> x * 10``, sleeping SLOW seconds for ``slow_value`` the first time only
    (in small steps, so a kill interrupts it at once)."""

    def f(x):
        if x == slow_value and not os.path.exists(marker):
            with open(marker, "w"):
                pass
            deadline = time.monotonic() + SLOW
            while time.monotonic() < deadline:
                time.sleep(0.02)
        return x * 10

    return f


async def wait_for_ends(rec: TaskEnds, n: int) -> None:
    async with asyncio.timeout(10):
        while len(rec.ends) < n:
            rec.changed.clear()
            await rec.changed.wait()


async def test_speculative_copy_wins_and_the_slow_attempt_is_killed(tmp_path):
    async with Context("local[2]", conf=SPECULATION) as sc:
        rec = TaskEnds()
        sc.addSparkListener(rec)
        rdd = sc.parallelize(range(8), 8).map(slow_first_attempt(str(tmp_path / "m"), 5))
        start = time.monotonic()
        got = await rdd.collect()
        elapsed = time.monotonic() - start
        assert got == [x * 10 for x in range(8)]  # exact, one result per partition
        assert elapsed < SLOW - 1.0, f"took {elapsed:.2f}s: the slow attempt was awaited"
        await wait_for_ends(rec, 9)  # 8 winners and the killed slow attempt
        wins = [e for e in rec.ends if e.successful]
        assert sorted(e.partition for e in wins) == list(range(8))
        (lost,) = [e for e in rec.ends if not e.successful]
        assert lost.partition == 5
        assert lost.reason.startswith("killed: task killed: another attempt succeeded")
        assert "lost to the speculative copy" in lost.reason
        (win5,) = [e for e in wins if e.partition == 5]
        assert win5.executorId != lost.executorId
        assert win5.taskId > lost.taskId
        # the executors are still there and serve the next job
        assert await sc.parallelize(range(4), 4).map(lambda x: x + 1).collect() == [1, 2, 3, 4]


async def test_a_straggler_among_short_tasks_on_warm_executors_is_overtaken(tmp_path):
    """Once a stage's tasks are known to be short, tasks are queued behind a running one
    (short-task pipelining), unless the task set speculates: queued behind the slow
    attempt, they would never finish and the stage never reach the quantile."""
    async with Context("local[2]", conf=SPECULATION) as sc:
        warm = sc.parallelize(range(8), 8).map(slow_first_attempt(str(tmp_path / "w"), -1))
        assert await warm.collect() == [x * 10 for x in range(8)]  # nothing is slow
        rdd = sc.parallelize(range(8), 8).map(slow_first_attempt(str(tmp_path / "m"), 5))
        start = time.monotonic()
        assert await rdd.collect() == [x * 10 for x in range(8)]
        elapsed = time.monotonic() - start
        assert elapsed < SLOW - 1.0, f"took {elapsed:.2f}s: the slow attempt was awaited"


async def test_without_speculation_the_slow_attempt_is_awaited(tmp_path):
    async with Context("local[2]") as sc:
        rec = TaskEnds()
        sc.addSparkListener(rec)
        rdd = sc.parallelize(range(8), 8).map(slow_first_attempt(str(tmp_path / "m"), 5))
        start = time.monotonic()
        assert await rdd.collect() == [x * 10 for x in range(8)]
        assert time.monotonic() - start >= SLOW
        await wait_for_ends(rec, 8)
        assert all(e.successful for e in rec.ends)
        assert len(rec.ends) == 8


async def test_save_as_text_file_commits_one_attempt_per_partition(tmp_path):
    out = str(tmp_path / "out")
    async with Context("local[2]", conf=SPECULATION) as sc:
        rec = TaskEnds()
        sc.addSparkListener(rec)
        rdd = sc.parallelize(range(8), 8).map(slow_first_attempt(str(tmp_path / "m"), 2))
        start = time.monotonic()
        await rdd.saveAsTextFile(out)
        assert time.monotonic() - start < SLOW - 1.0
        await wait_for_ends(rec, 9)
    check_output(out)


def check_output(out: str) -> None:
    parts = sorted(os.listdir(out))
    assert parts == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(8)]
    for i in range(8):
        with open(os.path.join(out, f"part-{i:05d}")) as f:
            assert f.read() == f"{i * 10}\n"
    # no temporary or attempt files left anywhere under the output
    assert glob.glob(os.path.join(out, "**", "*attempt*"), recursive=True) == []
    assert not os.path.exists(os.path.join(out, "_temporary"))
