"""The listener bus: scheduler events delivered to listeners off the scheduler loop.

``Context.addSparkListener(listener)`` registers an object with any of the ``on*`` methods
of ``SparkListener`` (plain or ``async def``); ``async for ev in sc.events()`` iterates
over them. As Spark's ``AsyncEventQueue``, every listener has its own bounded queue
(``spark.scheduler.listenerbus.eventqueue.capacity``, 10000) drained by its own coroutine:
posting never waits, a full queue drops the event (counted, logged once a minute, and
reported as ``SparkListenerEventsDropped``), so a slow listener never slows scheduling nor
the other listeners; an exception in a listener is logged and it keeps receiving events.
A plain (not ``async``) method runs on the event loop: keep it short, or make it
``async`` and hand slow work to a thread.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ListenerBus", "SparkListener", "SparkListenerApplicationEnd",
    "SparkListenerApplicationStart", "SparkListenerBlockUpdated",
    "SparkListenerEnvironmentUpdate", "SparkListenerEventsDropped",
    "SparkListenerExecutorAdded", "SparkListenerExecutorRemoved", "SparkListenerJobEnd",
    "SparkListenerJobStart", "SparkListenerStageCompleted", "SparkListenerStageSubmitted",
    "SparkListenerTaskEnd", "SparkListenerTaskStart", "SparkListenerUnpersistRDD",
    "event_from_json", "event_to_json",
]

log = logging.getLogger("asyncspark.listener")


@dataclass(slots=True)
class SparkListenerJobStart:
    jobId: int
    time: float
    stageIds: list[int]
    properties: dict = field(default_factory=dict)
    # Per stage: stageId, name, numTasks, parentIds, rddId (for the UI's stage graph)
    stageInfos: list = field(default_factory=list)


@dataclass(slots=True)
class SparkListenerJobEnd:
    jobId: int
    time: float
    jobResult: str  # "JobSucceeded" or "JobFailed: <message>"


@dataclass(slots=True)
class SparkListenerStageSubmitted:
    stageId: int
    attemptId: int
    numTasks: int
    time: float


@dataclass(slots=True)
class SparkListenerStageCompleted:
    stageId: int
    attemptId: int
    numTasks: int
    time: float
    failureReason: str | None = None
    accumulables: list = field(default_factory=list)  # [{id, name, value}]


@dataclass(slots=True)
class SparkListenerTaskStart:
    stageId: int
    stageAttemptId: int
    taskId: int
    index: int
    partition: int
    attemptNumber: int
    executorId: str
    time: float


@dataclass(slots=True)
class SparkListenerTaskEnd:
    stageId: int
    stageAttemptId: int
    taskId: int
    index: int
    partition: int
    executorId: str
    successful: bool
    reason: str  # "Success", or the failure kind and message
    duration: float
    time: float
    metrics: dict = field(default_factory=dict)  # e.g. shuffle_spill_bytes


@dataclass(slots=True)
class SparkListenerExecutorAdded:
    executorId: str
    host: str
    time: float
    logUrls: dict = field(default_factory=dict)  # {"stderr": path of its log file}


@dataclass(slots=True)
class SparkListenerExecutorRemoved:
    executorId: str
    reason: str
    time: float


@dataclass(slots=True)
class SparkListenerApplicationStart:
    appName: str
    appId: str
    time: float
    sparkUser: str


@dataclass(slots=True)
class SparkListenerApplicationEnd:
    time: float


@dataclass(slots=True)
class SparkListenerEnvironmentUpdate:
    environmentDetails: dict  # sparkProperties, systemProperties: [[k, v]], runtime


@dataclass(slots=True)
class SparkListenerBlockUpdated:
    blockId: str
    executorId: str
    storageLevel: str  # "memory", "disk", "offheap", "" (the block left the executor)
    size: int
    time: float


@dataclass(slots=True)
class SparkListenerUnpersistRDD:
    rddId: int
    time: float


@dataclass(slots=True)
class SparkListenerEventsDropped:
    """Delivered to a listener (its ``onOtherEvent``) once its queue has drained the events
    queued before it dropped ``count`` events."""

    count: int
    time: float


_METHODS = {
    SparkListenerJobStart: "onJobStart",
    SparkListenerJobEnd: "onJobEnd",
    SparkListenerStageSubmitted: "onStageSubmitted",
    SparkListenerStageCompleted: "onStageCompleted",
    SparkListenerTaskStart: "onTaskStart",
    SparkListenerTaskEnd: "onTaskEnd",
    SparkListenerExecutorAdded: "onExecutorAdded",
    SparkListenerExecutorRemoved: "onExecutorRemoved",
    SparkListenerApplicationStart: "onApplicationStart",
    SparkListenerApplicationEnd: "onApplicationEnd",
    SparkListenerEnvironmentUpdate: "onEnvironmentUpdate",
    SparkListenerBlockUpdated: "onBlockUpdated",
    SparkListenerUnpersistRDD: "onUnpersistRDD",
    SparkListenerEventsDropped: "onOtherEvent",
}
_BY_NAME = {cls.__name__: cls for cls in _METHODS}


def event_to_json(event: Any) -> dict:
    """An event as a JSON object with Spark's ``"Event"`` name (the event log's lines)."""
    d = dataclasses.asdict(event)
    d["Event"] = type(event).__name__
    return d


def event_from_json(d: dict) -> Any:
    """The event a line of the event log holds (unknown fields are ignored)."""
    d = dict(d)
    name = d.pop("Event", None)
    cls = _BY_NAME.get(name)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown listener event {name!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


class SparkListener:
    """Base class with a no-op method for every event; override what you need."""

    def onJobStart(self, event: SparkListenerJobStart) -> Any: ...
    def onJobEnd(self, event: SparkListenerJobEnd) -> Any: ...
    def onStageSubmitted(self, event: SparkListenerStageSubmitted) -> Any: ...
    def onStageCompleted(self, event: SparkListenerStageCompleted) -> Any: ...
    def onTaskStart(self, event: SparkListenerTaskStart) -> Any: ...
    def onTaskEnd(self, event: SparkListenerTaskEnd) -> Any: ...
    def onExecutorAdded(self, event: SparkListenerExecutorAdded) -> Any: ...
    def onExecutorRemoved(self, event: SparkListenerExecutorRemoved) -> Any: ...
    def onApplicationStart(self, event: SparkListenerApplicationStart) -> Any: ...
    def onApplicationEnd(self, event: SparkListenerApplicationEnd) -> Any: ...
    def onEnvironmentUpdate(self, event: SparkListenerEnvironmentUpdate) -> Any: ...
    def onBlockUpdated(self, event: SparkListenerBlockUpdated) -> Any: ...
    def onUnpersistRDD(self, event: SparkListenerUnpersistRDD) -> Any: ...
    def onOtherEvent(self, event: Any) -> Any: ...


_SLOW_LISTENER = 0.1  # a plain listener method taking longer than this is logged
_DROP_LOG_INTERVAL = 60.0


class _Queue:
    """One listener's bounded queue and the coroutine draining it."""

    __slots__ = ("buf", "capacity", "dropped", "dropped_total", "last_drop_log",
                 "listener", "name", "task", "wake")

    def __init__(self, listener: Any, capacity: int) -> None:
        self.listener = listener
        self.name = getattr(listener, "queue_name", None) or type(listener).__name__
        self.capacity = capacity
        self.buf: collections.deque = collections.deque()
        self.wake: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        self.dropped = 0  # since the last EventsDropped delivered
        self.dropped_total = 0
        self.last_drop_log = 0.0

    def put(self, event: Any) -> None:
        if len(self.buf) >= self.capacity:
            self.dropped += 1
            self.dropped_total += 1
            now = time.monotonic()
            if self.dropped_total == 1 or now - self.last_drop_log >= _DROP_LOG_INTERVAL:
                self.last_drop_log = now
                log.warning(
                    "dropping event %s: the queue of listener %s is full (%d events, "
                    "spark.scheduler.listenerbus.eventqueue.capacity); %d dropped so far",
                    type(event).__name__, self.name, self.capacity, self.dropped_total)
            return
        self.buf.append(event)
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def run(self) -> None:
        buf = self.buf
        listener = self.listener
        loop = asyncio.get_running_loop()
        while True:
            if not buf:
                self.wake = loop.create_future()
                await self.wake
                self.wake = None
                continue
            event = buf.popleft()
            if event is None:
                return
            await self._deliver(listener, event)
            if self.dropped and not buf:  # what was queued before the drops is delivered
                n, self.dropped = self.dropped, 0
                await self._deliver(listener, SparkListenerEventsDropped(n, time.time()))

    async def _deliver(self, listener: Any, event: Any) -> None:
        name = _METHODS.get(type(event), "onOtherEvent")
        method = getattr(listener, name, None)
        if method is None:
            return
        try:
            t0 = time.perf_counter()
            r = method(event)
            if inspect.isawaitable(r):
                await r
            elif time.perf_counter() - t0 > _SLOW_LISTENER:
                log.warning("listener %s took %.3fs on %s (a plain method runs on the "
                            "event loop: make it async or move slow work to a thread)",
                            self.name, time.perf_counter() - t0, name)
        except Exception:
            log.exception("listener %r failed on %s", listener, name)


class ListenerBus:
    """Per-listener bounded queues, each drained by its own coroutine (see the module
    docstring)."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("spark.scheduler.listenerbus.eventqueue.capacity must be > 0")
        self.capacity = capacity
        self._queues: list[_Queue] = []
        self._started = False
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> bool:
        """Whether anyone listens; the scheduler skips building events when not."""
        return bool(self._queues)

    @property
    def dropped(self) -> int:
        """Events dropped so far, all queues together."""
        return sum(q.dropped_total for q in self._queues)

    def add(self, listener: Any) -> None:
        """Register ``listener`` (callable from any thread)."""
        q = _Queue(listener, self.capacity)
        if not self._started or self._stopped:
            self._queues = [*self._queues, q]
            return
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._queues = [*self._queues, q]
            self._start(q)
        else:  # from another thread: the queue joins on the bus's loop
            loop.call_soon_threadsafe(self._add_on_loop, q)

    def _add_on_loop(self, q: _Queue) -> None:
        if not self._stopped:
            self._queues = [*self._queues, q]
            self._start(q)

    def remove(self, listener: Any) -> None:
        for q in self._queues:
            if q.listener is listener:
                self._queues = [x for x in self._queues if x is not q]
                if q.task is not None:
                    q.buf.append(None)  # what is queued is still delivered
                    if q.wake is not None and not q.wake.done():
                        q.wake.set_result(None)
                return
        raise ValueError(f"{listener!r} is not registered")

    def _start(self, q: _Queue) -> None:
        q.task = self._loop.create_task(  # type: ignore[union-attr]
            q.run(), name=f"asyncspark-listener-{q.name}")

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = True
        for q in self._queues:
            if q.task is None:
                self._start(q)

    def post(self, event: Any) -> None:
        for q in self._queues:
            q.put(event)

    async def events(self, capacity: int | None = None) -> AsyncIterator[Any]:
        """Every event posted from now on, until the bus stops (``sc.events()``)."""
        stream = _Stream()
        q = _Queue(stream, capacity or self.capacity)
        q.name = "events()"
        stream.queue = q
        self._queues = [*self._queues, q]
        try:
            while True:
                if not q.buf:
                    q.wake = asyncio.get_running_loop().create_future()
                    await q.wake
                    q.wake = None
                    continue
                event = q.buf.popleft()
                if event is None:
                    return
                yield event
                if q.dropped and not q.buf:
                    n, q.dropped = q.dropped, 0
                    yield SparkListenerEventsDropped(n, time.time())
        finally:
            self._queues = [x for x in self._queues if x is not q]

    async def stop(self) -> None:
        """Deliver what is queued (up to 5 s), then stop."""
        self._stopped = True
        queues = list(self._queues)
        for q in queues:
            q.buf.append(None)
            if q.wake is not None and not q.wake.done():
                q.wake.set_result(None)
        tasks = [q.task for q in queues if q.task is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=5.0)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for q in queues:
            q.task = None


class _Stream:
    """The listener an ``events()`` iterator stands for (its queue is read directly)."""

    queue: _Queue
