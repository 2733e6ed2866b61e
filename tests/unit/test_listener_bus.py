"""The listener bus: per-listener bounded queues (drops counted, logged and reported),
raising and slow listeners isolated, events() iteration, listeners added from threads."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from asyncspark.listener import (
    ListenerBus,
    SparkListenerEventsDropped,
    SparkListenerJobEnd,
    SparkListenerJobStart,
    SparkListenerTaskEnd,
    event_from_json,
    event_to_json,
)


def job_start(i: int) -> SparkListenerJobStart:
    return SparkListenerJobStart(i, 1.0, [i])


async def settle(bus: ListenerBus) -> None:
    await bus.stop()


async def test_a_full_queue_drops_counts_logs_and_reports(caplog):
    bus = ListenerBus(capacity=3)
    got: list = []

    class L:
        def onJobStart(self, ev):
            got.append(ev.jobId)

        def onOtherEvent(self, ev):
            got.append(ev)

    bus.add(L())
    bus.start()
    with caplog.at_level(logging.WARNING, "asyncspark.listener"):
        for i in range(10):  # posted with no chance to drain: 3 fit, 7 dropped
            bus.post(job_start(i))
    assert bus.dropped == 7
    assert "queue of listener L is full" in caplog.text
    assert caplog.text.count("dropping event") == 1  # logged once, not per event
    bus.post(job_start(99))  # room again once drained
    await asyncio.sleep(0.05)
    bus.post(job_start(100))
    await settle(bus)
    assert got[:3] == [0, 1, 2]
    dropped = [e for e in got if isinstance(e, SparkListenerEventsDropped)]
    assert [d.count for d in dropped] == [8]  # the 7, and 99 (the queue was still full)
    assert got[-1] == 100


async def test_raising_listener_keeps_receiving_and_others_unaffected(caplog):
    bus = ListenerBus()
    seen: list = []

    class Bad:
        def onJobStart(self, ev):
            raise RuntimeError("listener bug")

        def onJobEnd(self, ev):
            seen.append(("bad", ev.jobId))

    class Good:
        def onJobStart(self, ev):
            seen.append(("good", ev.jobId))

    bus.add(Bad())
    bus.add(Good())
    bus.start()
    with caplog.at_level(logging.ERROR, "asyncspark.listener"):
        bus.post(job_start(1))
        bus.post(SparkListenerJobEnd(1, 2.0, "JobSucceeded"))
        await settle(bus)
    assert ("good", 1) in seen
    assert ("bad", 1) in seen
    assert "listener bug" in caplog.text


async def test_a_slow_async_listener_does_not_hold_back_the_others():
    bus = ListenerBus()
    release = asyncio.Event()
    fast: list = []

    class Slow:
        async def onJobStart(self, ev):
            await release.wait()

    class Fast:
        def onJobStart(self, ev):
            fast.append(ev.jobId)

    bus.add(Slow())
    bus.add(Fast())
    bus.start()
    for i in range(5):
        bus.post(job_start(i))  # post never waits
    for _ in range(100):
        if len(fast) == 5:
            break
        await asyncio.sleep(0.01)
    assert fast == [0, 1, 2, 3, 4]
    release.set()
    await settle(bus)


async def test_events_iterates_until_the_bus_stops():
    bus = ListenerBus()
    bus.start()
    got: list = []

    async def consume():
        got.extend([ev async for ev in bus.events()])

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    assert bus.active
    bus.post(job_start(1))
    bus.post(SparkListenerJobEnd(1, 2.0, "JobSucceeded"))
    await asyncio.sleep(0.01)
    await bus.stop()
    await asyncio.wait_for(task, 2)
    assert [type(e).__name__ for e in got] == ["SparkListenerJobStart", "SparkListenerJobEnd"]
    assert not bus.active


async def test_add_from_another_thread_joins_on_the_loop():
    bus = ListenerBus()
    bus.start()
    seen: list = []

    class L:
        def onJobStart(self, ev):
            seen.append(threading.current_thread())

    t = threading.Thread(target=bus.add, args=(L(),))
    t.start()
    t.join()
    await asyncio.sleep(0.01)
    bus.post(job_start(1))
    await settle(bus)
    assert seen == [threading.current_thread()]


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match=r"eventqueue\.capacity"):
        ListenerBus(capacity=0)


def test_events_round_trip_through_json():
    ev = SparkListenerTaskEnd(1, 0, 7, 2, 2, "0", True, "Success", 0.5, 3.0,
                              {"executorRunTime": 4})
    d = event_to_json(ev)
    assert d["Event"] == "SparkListenerTaskEnd"
    assert event_from_json(d) == ev
    with pytest.raises(ValueError, match="unknown listener event"):
        event_from_json({"Event": "Nope"})


def started_bus(capacity: int) -> tuple[ListenerBus, list]:
    """A started bus whose batches wait a minute, and the job ids its listener got."""
    bus = ListenerBus(capacity=capacity)
    bus.drain_delay = 60.0
    got: list = []

    class L:
        def onJobStart(self, ev):
            got.append(ev.jobId)

    bus.add(L())
    bus.start()
    return bus, got


async def test_a_batch_waits_for_drain_delay_unless_the_bus_is_half_full():
    bus, got = started_bus(10)  # only the half-full rule can deliver within this test
    for i in range(4):
        bus.post(job_start(i))
    await asyncio.sleep(0)
    assert got == []  # a batch: waiting for its time
    bus.post(job_start(4))
    bus.post(job_start(5))  # the 6th pending: 5 = half of the capacity were waiting
    await asyncio.sleep(0)
    assert got == [0, 1, 2, 3, 4, 5]
    assert bus.dropped == 0
    bus.post(job_start(6))
    bus.flush()  # delivered now, on the loop
    assert got[-1] == 6
    await settle(bus)


async def test_a_batch_is_delivered_in_slices_with_the_loop_polled_between():
    """A batch whose delivery outlasts ``slice_time`` is handed out in slices, one per
    loop iteration, in order, and what is posted meanwhile comes after it; ``flush``
    still delivers everything at once. The clock is a fake: each look advances it."""
    bus, got = started_bus(1000)
    ticks = iter(range(10_000))
    bus.clock = lambda: next(ticks) * 1.0  # every slice "takes" a second
    bus.slice_time = 0.5
    for i in range(100):
        bus.post(job_start(i))
    bus._timed_drain()  # the batch's time has come
    first = len(got)
    assert 0 < first < 100  # one slice, the rest left for the next iteration
    bus.post(job_start(100))  # posted between two slices
    loop_turns = 0
    while len(got) < 101 and loop_turns < 20:
        await asyncio.sleep(0)  # the loop polls its I/O between slices
        loop_turns += 1
    assert got == list(range(101))
    assert loop_turns >= 2  # more than one slice after the first
    for i in range(101, 200):
        bus.post(job_start(i))
    bus.flush()  # statusTracker()'s exactness: all of it, now
    assert got == list(range(200))
    await settle(bus)
