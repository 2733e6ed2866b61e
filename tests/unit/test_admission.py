"""Admission control (scheduler/admission.py) on its own: counts, immediate rejection,
waits in arrival order, timeouts, cancelled waiters, stop. No processes; the waits are
asyncio futures released by the test."""

from __future__ import annotations

import asyncio

import pytest

from asyncspark.errors import ContextStoppedError, JobRejectedError
from asyncspark.scheduler.admission import MAX_JOBS_KEY, MAX_TASKS_KEY, Admission

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_unlimited_by_zero():
    a = Admission(0, 0)
    for _ in range(1000):
        await a.acquire(10**6)
    assert (a.jobs, a.tasks) == (1000, 10**9)


async def test_max_jobs_rejects_at_once_and_frees_on_release():
    a = Admission(max_jobs=2)
    await a.acquire(1)
    await a.acquire(5)
    with pytest.raises(JobRejectedError, match=r"2 jobs are running \(asyncspark\.scheduler"
                                               r"\.maxActiveJobs = 2\)") as info:
        await a.acquire(1)
    assert (info.value.limit, info.value.active_jobs, info.value.pending_tasks) == (
        MAX_JOBS_KEY, 2, 6)
    a.release(5)
    await a.acquire(1)
    assert (a.jobs, a.tasks) == (2, 2)


async def test_max_tasks_counts_tasks_of_running_jobs():
    a = Admission(max_tasks=10)
    await a.acquire(6)
    await a.acquire(4)
    with pytest.raises(JobRejectedError, match="would make 11 unfinished tasks") as info:
        await a.acquire(1)
    assert info.value.limit == MAX_TASKS_KEY
    with pytest.raises(JobRejectedError, match="it has 11 tasks, more than"):
        await a.acquire(11)  # never fits: rejected even with a wait
    a.release(6)
    await a.acquire(6)


async def test_waiters_get_in_in_arrival_order_when_room_frees():
    a = Admission(max_jobs=1)
    await a.acquire(1)
    order: list[str] = []

    async def job(name: str) -> None:
        await a.acquire(1, wait=10)
        order.append(name)

    tasks = [asyncio.create_task(job(n)) for n in "abc"]
    await asyncio.sleep(0)
    assert a.waiting == 3
    assert order == []
    for expected in (["a"], ["a", "b"], ["a", "b", "c"]):
        a.release(1)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert order == expected
    await asyncio.gather(*tasks)
    # a newcomer does not overtake a waiter even when the limit is not the reason
    assert a.jobs == 1


async def test_newcomer_queues_behind_waiters():
    a = Admission(max_tasks=4)
    await a.acquire(3)
    big = asyncio.create_task(a.acquire(4, wait=10))
    await asyncio.sleep(0)
    with pytest.raises(JobRejectedError, match="1 earlier jobs are waiting"):
        await a.acquire(1)  # 3 + 1 fits, but the waiting job came first
    a.release(3)
    await big
    assert (a.jobs, a.tasks) == (1, 4)


async def test_wait_times_out_with_rejection_and_leaves_nothing_behind():
    a = Admission(max_jobs=1)
    await a.acquire(1)
    with pytest.raises(JobRejectedError, match=r"after waiting 0\.05s: 1 jobs are running"):
        await a.acquire(1, wait=0.05)
    assert a.waiting == 0
    a.release(1)
    assert (a.jobs, a.tasks) == (0, 0)


async def test_cancelled_waiter_is_removed_and_unblocks_the_next():
    a = Admission(max_tasks=4)
    await a.acquire(2)
    big = asyncio.create_task(a.acquire(4, wait=10))  # blocks the small one behind it
    await asyncio.sleep(0)
    small = asyncio.create_task(a.acquire(2, wait=10))
    await asyncio.sleep(0)
    assert a.waiting == 2
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big
    await small  # 2 + 2 fits once the big one is gone
    assert (a.jobs, a.tasks, a.waiting) == (2, 4, 0)


async def test_close_fails_waiters():
    a = Admission(max_jobs=1)
    await a.acquire(1)
    waiter = asyncio.create_task(a.acquire(1, wait=10))
    await asyncio.sleep(0)
    a.close(ContextStoppedError("the context was stopped"))
    with pytest.raises(ContextStoppedError):
        await waiter
    assert (a.jobs, a.waiting) == (1, 0)
