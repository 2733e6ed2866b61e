"""Scheduler behaviour with real executor processes: retries, remote tracebacks,
cancellation, concurrency, executors killed mid-task."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
import time

import psutil
import pytest

import asyncspark
from asyncspark import Context, JobCancelledError, JobFailedError, SerializationError

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Recorder(asyncspark.SparkListener):
    def __init__(self):
        self.events = []
        self.started = asyncio.Event()

    def onJobStart(self, e):
        self.events.append(e)

    def onJobEnd(self, e):
        self.events.append(e)

    def onTaskStart(self, e):
        self.events.append(e)
        self.started.set()

    def onTaskEnd(self, e):
        self.events.append(e)

    def of(self, name):
        return [e for e in self.events if type(e).__name__ == name]


async def wait_for(predicate, limit=5.0):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def busy_forever(x):
    while True:  # pure Python: interruptible by the task kill
        x += 1


def blocked_forever(x):
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # blocked in C: the task kill cannot interrupt it; the executor is killed
    return x


class BoomError(Exception):
    pass


def boom(x):
    if x == 3:
        raise BoomError(f"bad record {x}")
    return x


async def test_user_exception_retried_then_fails_with_remote_traceback():
    async with Context("local[2]") as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        with pytest.raises(JobFailedError) as info:
            await sc.parallelize(range(6), 2).map(boom).collect()
        err = info.value
        assert "failed 4 times" in str(err)
        assert "BoomError: bad record 3" in str(err)
        assert "in boom" in str(err)  # the remote traceback names the user function
        assert 'raise BoomError(f"bad record {x}")' in err.remote_traceback
        assert isinstance(err.__cause__, BoomError)
        assert str(err.__cause__) == "bad record 3"
        await asyncio.sleep(0.1)
        failed = [e for e in rec.of("SparkListenerTaskEnd") if not e.successful
                  and e.partition == 1]
        assert len(failed) == 4
        # the first retry goes to the executor the task has not failed on yet
        execs = [e.executorId for e in failed]
        assert execs[1] != execs[0]
        # the context still works
        assert await sc.parallelize(range(6), 2).count() == 6


class Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def raise_unpicklable(x):
    raise Unpicklable(1, 2)


async def test_exception_that_cannot_be_unpickled_still_reports_traceback():
    async with Context("local[1]", conf={"spark.task.maxFailures": "1"}) as sc:
        with pytest.raises(JobFailedError) as info:
            await sc.parallelize([1], 1).map(raise_unpicklable).collect()
        assert "Unpicklable: 1/2" in str(info.value)
        assert "raise_unpicklable" in info.value.remote_traceback


async def test_flaky_task_succeeds_on_retry(tmp_path):
    marker = str(tmp_path / "failed-once")

    def flaky(x):
        if x == 5 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("transient")
        return x * 2

    async with Context("local[2]") as sc:
        assert await sc.parallelize(range(10), 5).map(flaky).collect() == [
            x * 2 for x in range(10)]
        assert os.path.exists(marker)  # noqa: ASYNC240


async def test_unpicklable_closure_fails_before_anything_is_sent():
    lock = threading.Lock()
    async with Context("local[1]") as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        rdd = sc.parallelize(range(3), 1).map(lambda x: (x, lock))
        with pytest.raises(SerializationError) as info:
            await rdd.collect()
        msg = str(info.value)
        assert "map()" in msg
        assert "'lock'" in msg
        assert "_thread.lock" in msg
        await asyncio.sleep(0.05)
        assert rec.of("SparkListenerJobStart") == []


@pytest.mark.parametrize("func", [busy_forever, blocked_forever], ids=["busy", "blocked"])
async def test_cancelling_the_awaiting_task_kills_the_job(func, tmp_path):
    started = tmp_path / "started"

    def run(x):
        with open(started, "a") as f:
            f.write(f"{x}\n")
        return func(x)

    async with Context("local[2]", conf={"asyncspark.task.killGracePeriod": "0.5s"}) as sc:
        pids_before = {e.pid for e in sc._task_scheduler.executors.values()}
        job = asyncio.ensure_future(sc.parallelize(range(2), 2).map(run).count())
        # both tasks are really running user code
        await wait_for(lambda: started.exists() and len(started.read_text().split()) == 2, 10)
        t0 = time.monotonic()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        # every killed task is accounted for (interrupted, or its executor killed) and
        # the context runs jobs again, within 2 s of the cancel
        await wait_for(lambda: sc._task_scheduler.tasks == {}, limit=5)
        assert await asyncio.wait_for(sc.parallelize(range(4), 2).count(), 5) == 4
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0, elapsed
        pids_after = {e.pid for e in sc._task_scheduler.executors.values()}
        if func is busy_forever:
            assert pids_after == pids_before  # interrupted in place, nobody killed
        else:
            assert not pids_after & pids_before  # stuck in C: killed and replaced
            await wait_for(lambda: len(sc._task_scheduler.executors) == 2)


async def test_asyncio_timeout_cancels_the_job():
    async with Context("local[2]") as sc:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await sc.parallelize(range(2), 2).map(busy_forever).count()
        assert await sc.parallelize(range(4), 2).count() == 4
        assert time.monotonic() - t0 < 2.5


async def test_cancel_job_group_and_all_jobs():
    async with Context("local[2]") as sc:
        rec = Recorder()
        sc.addSparkListener(rec)

        async def in_group(group):
            sc.setJobGroup(group, f"jobs of {group}")
            return await sc.parallelize(range(2), 2).map(busy_forever).count()

        a = asyncio.ensure_future(in_group("a"))
        b = asyncio.ensure_future(in_group("b"))
        await wait_for(lambda: len(sc.statusTracker().getActiveJobsIds()) == 2)
        assert sc.statusTracker().getJobIdsForGroup("a") != []
        sc.cancelJobGroup("a")
        with pytest.raises(JobCancelledError, match="job group a"):
            await a
        assert not b.done()
        sc.cancelAllJobs()
        with pytest.raises(JobCancelledError):
            await b
        assert sc.getLocalProperty("spark.jobGroup.id") is None  # set only inside the tasks


async def test_cancel_job_by_id():
    async with Context("local[1]") as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        job = asyncio.ensure_future(sc.parallelize([1], 1).map(busy_forever).count())
        await asyncio.wait_for(rec.started.wait(), 10)
        (job_id,) = sc.statusTracker().getActiveJobsIds()
        sc.cancelJob(job_id)
        with pytest.raises(JobCancelledError, match=f"Job {job_id} cancelled"):
            await job
        assert await sc.parallelize([1, 2], 1).count() == 2


async def test_many_concurrent_jobs():
    async with Context("local[2]") as sc:
        async def job(i):
            rdd = sc.parallelize(range(i * 10), max(1, i % 4 + 1))
            return await rdd.map(lambda x, i=i: x * i).sum()

        results = await asyncio.gather(*(job(i) for i in range(40)))
        assert results == [sum(x * i for x in range(i * 10)) for i in range(40)]


def slow_identity(x):
    time.sleep(0.05)
    return x


async def test_executor_sigkilled_mid_task_reruns_elsewhere():
    async with Context("local[2]") as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        job = asyncio.ensure_future(sc.parallelize(range(40), 8).map(slow_identity).collect())
        await asyncio.wait_for(rec.started.wait(), 10)
        await asyncio.sleep(0.1)
        victim = next(iter(sc._task_scheduler.executors.values()))
        os.kill(victim.pid, signal.SIGKILL)
        assert await asyncio.wait_for(job, 30) == list(range(40))
        await asyncio.sleep(0.05)
        lost = [e for e in rec.of("SparkListenerTaskEnd") if "executor_lost" in e.reason]
        assert lost, "the killed executor's running task was not reported lost"
        assert "SIGKILL" in lost[0].reason
        await wait_for(lambda: len(sc._task_scheduler.executors) == 2)
        assert victim.id not in sc._task_scheduler.executors


async def test_listener_sees_job_stage_and_task_events():
    async with Context("local[2]") as sc:
        rec = Recorder()
        sc.addSparkListener(rec)
        assert await sc.parallelize(range(10), 4).count() == 10
        await asyncio.sleep(0.1)
        names = [type(e).__name__ for e in rec.events]
        assert names[0] == "SparkListenerJobStart"
        assert names[-1] == "SparkListenerJobEnd"
        assert names.count("SparkListenerTaskStart") == 4
        assert names.count("SparkListenerTaskEnd") == 4
        assert rec.of("SparkListenerJobEnd")[0].jobResult == "JobSucceeded"


async def test_context_refuses_use_after_stop():
    sc = Context("local[1]")
    async with sc:
        rdd = sc.parallelize([1, 2])
    with pytest.raises(asyncspark.ContextStoppedError):
        await rdd.count()


async def test_bad_master_is_a_clear_error():
    with pytest.raises(asyncspark.ConfigError, match="unsupported master URL 'yarn'"):
        Context("yarn")


async def test_executor_start_failure_is_reported(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/nonexistent")
    monkeypatch.setattr("sys.executable", "/bin/false")
    # Retried with a backoff (asyncspark.executor.startBackoff), then reported.
    with pytest.raises(asyncspark.ExecutorLostError,
                       match=r"4 executor starts failed in a row .*exited with code 1"):
        async with Context("local[1]", conf={"asyncspark.executor.startBackoff": "50ms"}):
            pass


async def test_unauthenticated_connection_is_rejected():
    async with Context("local[1]") as sc:
        host, port = sc._backend.address
        reader, writer = await asyncio.open_connection(host, port)
        from asyncspark.transport.codec import FrameCodec
        from asyncspark.transport.messages.control import Register

        codec = FrameCodec()
        writer.write(codec.send(Register("0", b"x" * 32, b"n" * 32, os.getpid(), "evil")))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)  # challenge, then EOF: closed
        assert data  # the challenge
        writer.close()
        # the real executor is unaffected
        assert await sc.parallelize(range(5), 1).count() == 5


async def test_task_channel_needs_authentication_and_a_registered_executor():
    from asyncspark.transport import handshake
    from asyncspark.transport.codec import NEED_DATA, FrameCodec
    from asyncspark.transport.messages.control import Challenge, TaskChannel

    async with Context("local[1]") as sc:
        host, port = sc._backend.address
        secret = sc._backend.secret

        async def attempt(executor_id: str, good_mac: bool) -> bytes:
            reader, writer = await asyncio.open_connection(host, port)
            codec = FrameCodec()
            while (msg := codec.next_event()) is NEED_DATA:
                codec.receive_data(await asyncio.wait_for(reader.read(4096), 5))
            assert type(msg) is Challenge
            mac = handshake.prove(secret, msg.nonce, handshake.EXECUTOR) if good_mac else b"x" * 32
            writer.write(codec.send(TaskChannel(executor_id, mac, b"n" * 32)))
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 5)  # EOF: the driver closed it
            writer.close()
            return rest

        assert await attempt("0", good_mac=False) == b""
        # Authenticated, but executor 0 has its task channel already, and 7 is unknown.
        assert await attempt("0", good_mac=True) == b""
        assert await attempt("7", good_mac=True) == b""
        assert set(sc._backend.channels) == {"0"}
        assert await sc.parallelize(range(5), 2).count() == 5


DRIVER_SCRIPT = """
import asyncio, os, sys, asyncspark
async def main():
    sc = asyncspark.Context("local[2]", conf={"spark.local.dir": sys.argv[1]})
    await sc.start()
    print(sc._block_master.offheap_dir, flush=True)
    print(" ".join(str(e.pid) for e in sc._task_scheduler.executors.values()), flush=True)
    await asyncio.sleep(60)
asyncspark.run(main())
"""


async def test_executors_exit_when_the_driver_dies(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        os.sys.executable, "-c", DRIVER_SCRIPT, str(tmp_path), stdout=asyncio.subprocess.PIPE)
    offheap = ""
    try:
        offheap = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2
        proc.kill()
        await proc.wait()
        t0 = time.monotonic()
        _, alive = await asyncio.to_thread(
            psutil.wait_procs, [psutil.Process(p) for p in pids], timeout=5)
        assert not alive, f"executors outlived their driver: {alive}"
        assert time.monotonic() - t0 < 5
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if offheap:  # what the killed driver could not remove (spark.local.dir is tmp_path)
            shutil.rmtree(offheap, ignore_errors=True)


async def test_crash_loop_fails_the_job_instead_of_spinning():
    conf = {"asyncspark.executor.maxReplacementsPerMinute": "1"}
    async with Context("local[1]", conf=conf) as sc:
        with pytest.raises(JobFailedError, match="maxReplacementsPerMinute"):
            await asyncio.wait_for(
                sc.parallelize([1], 1).map(lambda x: os._exit(7)).count(), 30)
        # later jobs fail at once too, naming the cause, rather than waiting forever
        with pytest.raises(JobFailedError, match="exited with code 7"):
            await asyncio.wait_for(sc.parallelize([1], 1).count(), 5)


async def test_stop_cancels_running_jobs():
    sc = Context("local[1]")
    await sc.start()
    job = asyncio.ensure_future(sc.parallelize([1], 1).map(busy_forever).count())
    await wait_for(lambda: sc.statusTracker().getActiveJobsIds() != [])
    await sc.stop()
    with pytest.raises(JobCancelledError, match="stopped"):
        await job


async def test_oversized_frame_closes_only_that_connection():
    async with Context("local[1]", conf={"asyncspark.rpc.maxFrameSize": "1m"}) as sc:
        host, port = sc._backend.address
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((10).to_bytes(4, "big") + (2 << 20).to_bytes(4, "big"))
        await writer.drain()
        await asyncio.wait_for(reader.read(), 5)  # the challenge, then closed
        assert reader.at_eof()
        writer.close()
        assert await sc.parallelize(range(5), 1).count() == 5


async def test_frame_limits_give_clear_errors_not_hangs():
    conf = {"asyncspark.rpc.maxFrameSize": "64k", "spark.task.maxFailures": "1"}
    async with Context("local[1]", conf=conf) as sc:
        big = b"y" * 200_000
        with pytest.raises(SerializationError, match="maxFrameSize"):
            await sc.parallelize([1], 1).map(lambda x: len(big)).collect()
        # a result bigger than a frame travels as a file (scheduler/results.py)
        assert await asyncio.wait_for(
            sc.parallelize([1], 1).map(lambda x: b"x" * 200_000).collect(), 10) == [
                b"x" * 200_000]
        # many small results that together exceed one frame travel in several frames
        out = await sc.parallelize(range(40), 8).map(lambda x: b"z" * 20_000).count()
        assert out == 40
        rows = await sc.parallelize(range(8), 8).map(lambda x: b"z" * 30_000).collect()
        assert len(rows) == 8
