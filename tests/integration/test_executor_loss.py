"""Executor loss with real processes: a hung (SIGSTOPped) executor is declared lost after
the heartbeat timeout, killed and replaced; a task that kills its executor (a crash
signal, os._exit) counts against spark.task.maxFailures and the error says how it died;
an executor killed from outside does not count."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import asyncspark
from asyncspark import Context, JobFailedError

FAST_HEARTBEAT = {"spark.executor.heartbeatInterval": "100ms",
                  "asyncspark.executor.heartbeatTimeout": "1s"}


class Recorder(asyncspark.SparkListener):
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.removed: list = []
        self.task_ends: list = []
        self.added = asyncio.Event()

    def onExecutorAdded(self, event) -> None:
        self.added.set()

    def onTaskStart(self, event) -> None:
        self.started.set()

    def onTaskEnd(self, event) -> None:
        self.task_ends.append(event)

    def onExecutorRemoved(self, event) -> None:
        self.removed.append(event)


def slow_identity(x):
    time.sleep(0.05)
    return x


def _release(pid: int) -> None:
    """SIGCONT then SIGKILL ``pid`` if it still exists (a test must not leave it)."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


async def test_a_stopped_executor_is_declared_lost_after_the_heartbeat_timeout():
    async with Context("local[2]", conf=FAST_HEARTBEAT) as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        job = asyncio.ensure_future(sc.parallelize(range(60), 12).map(slow_identity).collect())
        await asyncio.wait_for(rec.started.wait(), 10)
        victim = next(iter(sc._task_scheduler.executors.values()))
        t0 = time.monotonic()
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            assert await asyncio.wait_for(job, 30) == list(range(60))
        finally:
            _release(victim.pid)
        assert sc._backend.heartbeat_losses == 1
        await asyncio.sleep(0.05)  # the listener bus delivers after the job's end
        (removed,) = [e for e in rec.removed if e.executorId == victim.id]
        assert "no heartbeat" in removed.reason
        assert "asyncspark.executor.heartbeatTimeout" in removed.reason
        assert time.monotonic() - t0 >= 1.0
        # its replacement registers (the listener came after the first two did)
        await asyncio.wait_for(rec.added.wait(), 10)
        assert len(sc._task_scheduler.executors) == 2
        assert victim.id not in sc._task_scheduler.executors


def segfault(x):
    # Directed at this thread, so it lands before the function returns (os.kill of the
    # process may be delivered to another thread while this one reports a result).
    signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)


def exit_nine(x):
    os._exit(9)


@pytest.mark.parametrize(("func", "how"), [(segfault, "killed by signal SIGSEGV"),
                                           (exit_nine, "exited with code 9")])
async def test_a_task_that_kills_its_executor_counts_and_says_how(func, how):
    conf = {"spark.task.maxFailures": "2"}
    async with Context("local[2]", conf=conf) as sc:
        with pytest.raises(JobFailedError) as info:
            await asyncio.wait_for(sc.parallelize([1], 1).map(func).collect(), 30)
        message = str(info.value)
        assert how in message
        assert "failed 2 times" in message
        assert "while running this task" in message
        # the other executors were not blamed: the context still works
        assert await asyncio.wait_for(sc.parallelize(range(10), 2).sum(), 30) == 45


async def test_an_executor_killed_from_outside_does_not_count():
    async with Context("local[2]", conf={"spark.task.maxFailures": "1"}) as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        job = asyncio.ensure_future(sc.parallelize(range(40), 8).map(slow_identity).collect())
        await asyncio.wait_for(rec.started.wait(), 10)
        victim = next(iter(sc._task_scheduler.executors.values()))
        os.kill(victim.pid, signal.SIGKILL)
        assert await asyncio.wait_for(job, 30) == list(range(40))
