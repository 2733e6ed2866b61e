"""Task results with real executors: spark.driver.maxResultSize fails the job (and only
that job), results bigger than a frame travel as files the driver reads and deletes, a
result file lost before the driver reads it fails the task, which is retried."""

from __future__ import annotations

import asyncio
import glob
import os

import pytest

from asyncspark import Context, JobFailedError
from asyncspark.errors import ResultTooLargeError, TaskResultLostError
from asyncspark.scheduler import task_scheduler

SMALL_FRAMES = {"asyncspark.rpc.maxFrameSize": "256k",
                "asyncspark.task.maxDirectResultSize": "64k"}


def blob(size: int):
    return lambda i: bytes([i % 256]) * size


def result_files(sc: Context) -> list[str]:
    return glob.glob(os.path.join(sc._backend.local_root, "executor-*", "results", "*"))


async def test_results_over_max_result_size_fail_the_job_and_the_context_stays_usable():
    conf = {"spark.driver.maxResultSize": "1m"}
    async with Context("local[2]", conf=conf) as sc:
        with pytest.raises(JobFailedError) as info:  # 8 x 200k, each sent in its status
            await asyncio.wait_for(sc.parallelize(range(8), 8).map(blob(200_000)).collect(),
                                   30)
        message = str(info.value)
        assert "spark.driver.maxResultSize (1.0 MiB, 1048576 bytes)" in message
        assert "Total size of serialized results of" in message
        assert "job 0 (stage 0.0)" in message
        assert isinstance(info.value.__cause__, ResultTooLargeError)
        assert sc._task_scheduler.tsms == {}  # the task set is gone, nothing runs
        assert await asyncio.wait_for(sc.parallelize(range(10), 4).sum(), 30) == 45


async def test_one_result_over_max_result_size_is_refused_by_its_executor():
    conf = {"spark.driver.maxResultSize": "1m", "spark.task.maxFailures": "4"}
    async with Context("local[2]", conf=conf) as sc:
        with pytest.raises(JobFailedError) as info:
            await asyncio.wait_for(sc.parallelize([0], 1).map(blob(2 << 20)).collect(), 30)
        message = str(info.value)
        assert "bigger than spark.driver.maxResultSize" in message
        assert "it was not sent to the driver" in message
        assert "failed 4 times" not in message  # not retried: it would only do it again
        assert result_files(sc) == []
        assert await asyncio.wait_for(sc.parallelize([1, 2], 2).collect(), 30) == [1, 2]


async def test_indirect_results_count_against_max_result_size():
    conf = {**SMALL_FRAMES, "spark.driver.maxResultSize": "1m"}
    async with Context("local[2]", conf=conf) as sc:
        with pytest.raises(JobFailedError) as info:  # 4 x 400k, each sent as a file
            await asyncio.wait_for(sc.parallelize(range(4), 4).map(blob(400_000)).collect(),
                                   30)
        assert "spark.driver.maxResultSize" in str(info.value)
        assert isinstance(info.value.__cause__, ResultTooLargeError)
        assert await asyncio.wait_for(sc.parallelize(range(4), 4).map(blob(100_000))
                                      .map(len).sum(), 30) == 400_000
        # A task of the failed job that finished as it was being killed still sends its
        # result file, possibly after the second job: the driver deletes it on arrival.
        for _ in range(200):  # at most 10 s
            if not result_files(sc):
                break
            await asyncio.sleep(0.05)
        assert result_files(sc) == []


async def test_results_bigger_than_a_frame_travel_as_files_and_leave_none_behind():
    async with Context("local[2]", conf=SMALL_FRAMES) as sc:
        got = await asyncio.wait_for(
            sc.parallelize(range(3), 3).map(blob(3 << 20)).collect(), 60)
        assert [len(b) for b in got] == [3 << 20] * 3
        assert [b[:1] for b in got] == [b"\x00", b"\x01", b"\x02"]
        assert got[1] == bytes([1]) * (3 << 20)
        assert result_files(sc) == []
        # small results still go in the status message, on the same context
        assert await asyncio.wait_for(sc.parallelize(range(100), 4).sum(), 30) == 4950


def _losing_first_reads(monkeypatch, count: int) -> list[str]:
    """Make the driver find the first ``count`` result files gone (deleted just before
    it reads them, as if the executor's disk lost them)."""
    real = task_scheduler.read_result_file
    lost: list[str] = []

    def read(path: str, size: int) -> bytes:
        if len(lost) < count:
            lost.append(path)
            os.unlink(path)
        return real(path, size)

    monkeypatch.setattr(task_scheduler, "read_result_file", read)
    return lost


async def test_a_lost_result_file_fails_the_task_which_is_retried(monkeypatch):
    lost = _losing_first_reads(monkeypatch, 1)
    async with Context("local[2]", conf=SMALL_FRAMES) as sc:
        got = await asyncio.wait_for(
            sc.parallelize(range(2), 2).map(blob(300_000)).collect(), 30)
        assert got == [b"\x00" * 300_000, b"\x01" * 300_000]
        assert len(lost) == 1
        assert result_files(sc) == []


async def test_a_lost_result_file_fails_the_job_once_retries_run_out(monkeypatch):
    lost = _losing_first_reads(monkeypatch, 1)
    conf = {**SMALL_FRAMES, "spark.task.maxFailures": "1"}
    async with Context("local[2]", conf=conf) as sc:
        with pytest.raises(JobFailedError) as info:
            await asyncio.wait_for(sc.parallelize([0], 1).map(blob(300_000)).collect(), 30)
        message = str(info.value)
        assert f"cannot read the task result file {lost[0]}" in message
        assert "TaskResultLostError" in message
        assert isinstance(info.value.__cause__, TaskResultLostError)
        assert result_files(sc) == []
