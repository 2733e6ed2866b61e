"""The DAGScheduler's event queue (scheduler/event_queue.py): FIFO order, a consumer
that waits for the next item, a cancelled wait that leaves the queue usable, and one
consumer only."""

from __future__ import annotations

import asyncio

import pytest

from asyncspark.scheduler.event_queue import EventQueue


async def test_fifo_and_waiting_consumer() -> None:
    q = EventQueue(asyncio.get_running_loop())
    for i in range(3):
        q.put_nowait(i)
    assert q.qsize() == 3
    assert [await q.get() for _ in range(3)] == [0, 1, 2]
    assert q.empty()
    got = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not got.done()  # nothing queued: it waits
    q.put_nowait("a")
    q.put_nowait("b")
    assert await got == "a"
    assert await q.get() == "b"


async def test_cancelled_get_leaves_the_queue_usable() -> None:
    q = EventQueue(asyncio.get_running_loop())
    got = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    got.cancel()
    with pytest.raises(asyncio.CancelledError):
        await got
    q.put_nowait(1)  # no waiter left to resolve
    assert await q.get() == 1


async def test_one_consumer_only() -> None:
    q = EventQueue(asyncio.get_running_loop())
    first = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one consumer"):
        await q.get()
    q.put_nowait(7)
    assert await first == 7
