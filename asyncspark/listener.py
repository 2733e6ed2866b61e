"""The listener bus: scheduler events delivered to listeners off the scheduler's path.

``Context.addSparkListener(listener)`` registers an object with any of the ``on*`` methods
of ``SparkListener`` (plain or ``async def``); ``async for ev in sc.events()`` iterates
over them. Posting (the scheduler's side) only appends the event to one pending list and
never waits: a batch is handed to the listeners by one callback, ``ListenerBus.drain_delay``
(25 ms) after its first event, so the work of many short jobs' events is done at once, after
their results were delivered. The bus is bounded as Spark's ``AsyncEventQueue``
(``spark.scheduler.listenerbus.eventqueue.capacity``, 10000): past that many events
waiting for delivery, and past that many in the queue of an async listener or of an
``events()`` iterator, events are dropped (counted, logged once a minute, and reported to
the listener as ``SparkListenerEventsDropped``), so a slow listener never holds back
scheduling nor the other listeners; an exception in a listener is logged and it keeps
receiving events. A plain method runs on the event loop: keep it short, or make it
``async`` and hand slow work to a thread (an async listener has a coroutine of its own).
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

from .transport.messages.tasks import UPDATES_KEY

__all__ = [
    "TASK_TIMES_KEY",
    "ListenerBus",
    "SparkListener",
    "SparkListenerApplicationEnd",
    "SparkListenerApplicationStart",
    "SparkListenerBlockUpdated",
    "SparkListenerEnvironmentUpdate",
    "SparkListenerEventsDropped",
    "SparkListenerExecutorAdded",
    "SparkListenerExecutorRemoved",
    "SparkListenerJobEnd",
    "SparkListenerJobStart",
    "SparkListenerStageCompleted",
    "SparkListenerStageSubmitted",
    "SparkListenerTaskEnd",
    "SparkListenerTaskStart",
    "SparkListenerUnpersistRDD",
    "event_from_json",
    "event_to_json",
    "task_metrics",
]

log: logging.Logger = logging.getLogger("asyncspark.listener")


@dataclass(slots=True)
class SparkListenerJobStart:
    jobId: int
    time: float
    stageIds: list[int]
    properties: dict[str, str] = field(default_factory=dict)
    # Per stage: stageId, name, numTasks, parentIds, rddId (for the UI's stage graph)
    stageInfos: list[dict[str, Any]] = field(default_factory=list)
    # Per RDD of the lineage: id, name, numPartitions, parentIds (narrow), shuffleParentIds
    rddInfos: list[dict[str, Any]] = field(default_factory=list)


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
    accumulables: list[dict[str, Any]] = field(default_factory=list)  # [{id, name, value}]


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
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. shuffle_spill_bytes


@dataclass(slots=True)
class SparkListenerExecutorAdded:
    executorId: str
    host: str
    time: float
    logUrls: dict[str, str] = field(default_factory=dict)  # {"stderr": path of its log file}


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
    environmentDetails: dict[str, Any]  # sparkProperties, systemProperties: [[k, v]], runtime


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


# A task's own metrics travel as one list under this key (executor/executor.py):
# [run time us, CPU time ns, result size, executor peak RSS bytes].
TASK_TIMES_KEY = "t"


def task_metrics(m: dict[str, Any] | None) -> dict[str, Any]:
    """A task's metrics as listeners get them: Spark's names (``executorRunTime`` ms,
    ``executorCpuTime`` ns, ``resultSize``, ``executorRss``; deserialization excluded
    from run and CPU time, as Spark's)."""
    if not m:
        return {}
    times = m.get(TASK_TIMES_KEY)
    if times is None:
        return m
    out = {k: v for k, v in m.items() if k != TASK_TIMES_KEY and k != UPDATES_KEY}
    run_us, cpu_ns, size, rss = times
    out["executorRunTime"] = max(0, run_us // 1000 - out.get("executorDeserializeTime", 0))
    out["executorCpuTime"] = max(0, cpu_ns - out.get("executorDeserializeCpuTime", 0))
    out["resultSize"] = size
    out["executorRss"] = rss
    return out


_METHODS = {  # event type -> the listener method receiving it (SparkListenerJobStart: onJobStart)
    cls: "on" + cls.__name__.removeprefix("SparkListener") for cls in (
        SparkListenerJobStart, SparkListenerJobEnd, SparkListenerStageSubmitted,
        SparkListenerStageCompleted, SparkListenerTaskStart, SparkListenerTaskEnd,
        SparkListenerExecutorAdded, SparkListenerExecutorRemoved,
        SparkListenerApplicationStart, SparkListenerApplicationEnd,
        SparkListenerEnvironmentUpdate, SparkListenerBlockUpdated, SparkListenerUnpersistRDD)}
_METHODS[SparkListenerEventsDropped] = "onOtherEvent"
_BY_NAME = {cls.__name__: cls for cls in _METHODS}


_FIELDS: dict[type, tuple[str, ...]] = {}


def event_to_json(event: Any) -> dict[str, Any]:
    """An event as a JSON object with Spark's ``"Event"`` name (the event log's lines);
    its values are shared, not copied (events are not changed once posted)."""
    cls = type(event)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    d = {"Event": cls.__name__}
    for name in names:
        d[name] = getattr(event, name)
    return d


def event_from_json(d: dict[str, Any]) -> Any:
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


_SLOW_LISTENER = 0.1  # a plain listener taking longer than this on a batch is logged
_DROP_LOG_INTERVAL = 60.0
_UNRESOLVED = object()


def _is_async(listener: Any) -> bool:
    return any(inspect.iscoroutinefunction(getattr(listener, name, None))
               for name in set(_METHODS.values()))


def _prepare_task_end(ev: SparkListenerTaskEnd) -> None:
    # The scheduler posts the executor's metrics as they came; Spark's names are made
    # here, in the batch, off the path of the task's completion (idempotent).
    m = ev.metrics
    if m is None:
        ev.metrics = {}
    elif TASK_TIMES_KEY in m:
        ev.metrics = task_metrics(m)


def _prepare_job_start(ev: SparkListenerJobStart) -> None:
    # The scheduler may post the stages' description as a callable returning (stage ids,
    # stage infos), called here, in the batch.
    infos = ev.stageInfos
    if callable(infos):
        ev.stageIds, ev.stageInfos = infos()


# What the bus does to an event of a type, once, before any listener sees it
# (``ListenerBus.prepare`` starts as a copy of this).
_PREPARE: dict[type, Any] = {SparkListenerTaskEnd: _prepare_task_end,
                             SparkListenerJobStart: _prepare_job_start}


class _Queue:
    """One listener's place on the bus. A plain listener gets each batch at once, from
    the bus's drain callback (``deliver_batch``); a listener with ``async def`` methods
    (and each ``events()`` iterator) has a bounded buffer and its own coroutine."""

    __slots__ = ("batch", "buf", "capacity", "dropped", "dropped_total", "is_async",
                 "last_drop_log", "listener", "methods", "name", "task", "wake")

    def __init__(self, listener: Any, capacity: int, is_async: bool | None = None) -> None:
        self.listener = listener
        self.name = getattr(listener, "queue_name", None) or type(listener).__name__
        self.capacity = capacity
        self.is_async = _is_async(listener) if is_async is None else is_async
        # A plain listener may take a whole batch in one call (the event log does).
        batch = None if self.is_async else getattr(listener, "_on_event_batch", None)
        self.batch = batch if callable(batch) else None
        self.methods: dict[type, Any] = {}  # event type -> bound method (or None)
        self.buf: collections.deque = collections.deque()
        self.wake: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        self.dropped = 0  # since the last EventsDropped delivered
        self.dropped_total = 0
        self.last_drop_log = 0.0

    def count_drop(self, event: Any, why: str) -> None:
        self.dropped += 1
        self.dropped_total += 1
        now = time.monotonic()
        if self.dropped_total == 1 or now - self.last_drop_log >= _DROP_LOG_INTERVAL:
            self.last_drop_log = now
            log.warning(
                "dropping event %s: the queue of listener %s is full (%d events, "
                "spark.scheduler.listenerbus.eventqueue.capacity%s); %d dropped so far",
                type(event).__name__, self.name, self.capacity, why, self.dropped_total)

    def put_many(self, events: list) -> None:
        """Queue a batch for an async listener or an ``events()`` iterator."""
        buf = self.buf
        room = self.capacity - len(buf)
        if room >= len(events):
            buf.extend(events)
        else:
            if room > 0:
                buf.extend(events[:room])
            for ev in events[max(room, 0):]:
                self.count_drop(ev, "")
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def method(self, cls: type) -> Any:
        m = self.methods.get(cls, _UNRESOLVED)
        if m is _UNRESOLVED:
            m = self.methods[cls] = getattr(self.listener, _METHODS.get(cls, "onOtherEvent"),
                                            None)
        return m

    def deliver_batch(self, events: list) -> None:
        """Deliver a batch to a plain listener (the bus's drain callback)."""
        t0 = time.perf_counter()
        if self.batch is not None:
            try:
                self.batch(events)
            except Exception:
                log.exception("listener %r failed on a batch of %d events", self.listener,
                              len(events))
        else:
            method = self.method
            for ev in events:
                m = method(type(ev))
                if m is None:
                    continue
                try:
                    m(ev)
                except Exception:
                    log.exception("listener %r failed on %s", self.listener,
                                  _METHODS.get(type(ev), "onOtherEvent"))
        took = time.perf_counter() - t0
        if took > _SLOW_LISTENER:
            log.warning("listener %s took %.3fs on %d events (a plain method runs on the "
                        "event loop: make it async or move slow work to a thread)",
                        self.name, took, len(events))
        if self.dropped:
            n, self.dropped = self.dropped, 0
            self.deliver(SparkListenerEventsDropped(n, time.time()))

    def deliver(self, event: Any) -> Any:
        m = self.method(type(event))
        if m is None:
            return None
        try:
            return m(event)
        except Exception:
            log.exception("listener %r failed on %s", self.listener,
                          _METHODS.get(type(event), "onOtherEvent"))
            return None

    async def run(self) -> None:
        """The coroutine of an async listener's queue."""
        buf = self.buf
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
            await self._await(event)
            if self.dropped and not buf:  # what was queued before the drops is delivered
                n, self.dropped = self.dropped, 0
                await self._await(SparkListenerEventsDropped(n, time.time()))

    async def _await(self, event: Any) -> None:
        r = self.deliver(event)
        if inspect.isawaitable(r):
            try:
                await r
            except Exception:
                log.exception("listener %r failed on %s", self.listener,
                              _METHODS.get(type(event), "onOtherEvent"))


_SLICE = 32  # events handed to the listeners between two looks at the clock


class ListenerBus:
    """See the module docstring. ``post`` appends the event to one pending list (at most
    ``capacity`` events; past it the event is dropped for every listener) and, once per
    batch, arms one callback (``drain_delay`` later) that hands the batch to every
    listener: a plain one gets it at once, an async one in its own bounded queue."""

    # Listeners get the events in batches, this long after the first is posted: one
    # callback for the events of many short jobs, off the path of each job's result
    # (trivial jobs back to back, UI + event log + progress bar on: p50 +21% over none
    # with 2 ms batches, +7% with 25 ms; the mean +55% and +9%).
    drain_delay: float = 0.025
    # A batch goes out in slices until this long has gone, the rest after the loop's next
    # poll: a whole batch through the UI's listeners held the loop for milliseconds.
    slice_time: float = 0.002

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("spark.scheduler.listenerbus.eventqueue.capacity must be > 0")
        self.capacity = capacity
        self._queues: list[_Queue] = []
        self._pending: list = []
        self._started = False
        self._stopped = False
        self._scheduled = False  # the batch's timer is armed
        self._early = max(1, capacity // 2)  # this many pending: deliver at once
        self._early_drain = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.clock: Any = time.perf_counter  # the slices' budget is measured with it
        # event type -> what to do to such an event before the listeners get it
        self.prepare: dict[type, Any] = dict(_PREPARE)

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
            self._join(q)
            return
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._join(q)
        else:  # from another thread: the queue joins on the bus's loop
            loop.call_soon_threadsafe(self._join, q)

    def _join(self, q: _Queue) -> None:
        if self._stopped and self._started:
            return
        if self._pending and self._on_loop():
            self._drain()  # what was posted before it joined is not its business
        self._queues = [*self._queues, q]
        if q.is_async and self._started:
            self._start(q)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def remove(self, listener: Any) -> None:
        for q in self._queues:
            if q.listener is listener:
                if self._pending and self._on_loop():
                    self._drain()  # it gets what was posted before it left
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
            if q.is_async and q.task is None:
                self._start(q)
        if self._pending:
            self._arm()

    def post(self, event: Any) -> None:
        """Queue ``event`` for every listener; never waits (the scheduler calls it)."""
        pending = self._pending
        if len(pending) >= self._early or self._stopped:
            if self._stopped:
                return
            if len(pending) >= self.capacity:
                for q in self._queues:
                    q.count_drop(event, ", events waiting for delivery")
                return
            if not self._early_drain and self._loop is not None:
                # Half full before the batch's time: deliver at the next loop iteration
                # (a burst of tasks must not fill the bus within drain_delay).
                self._early_drain = True
                self._loop.call_soon(self._drain_slice)
        pending.append(event)
        if not self._scheduled and self._loop is not None:
            self._arm()

    def _arm(self) -> None:
        self._scheduled = True
        if self.drain_delay:
            self._loop.call_later(self.drain_delay, self._timed_drain)  # type: ignore[union-attr]
        else:
            self._loop.call_soon(self._timed_drain)  # type: ignore[union-attr]

    def _timed_drain(self) -> None:
        self._scheduled = False
        self._drain_slice()

    def _drain_slice(self) -> None:
        self._drain(self.slice_time)

    def flush(self) -> None:
        """Hand what was posted so far to the listeners now: a plain listener has it when
        this returns, an async one in its queue. Called from another thread than the
        bus's loop's, it does nothing (the batch comes within ``drain_delay``)."""
        if self._loop is None or self._on_loop():
            self._drain()

    def _drain(self, budget: float | None = None) -> None:
        """Deliver the pending events in order: all (``budget`` None), or slices until
        ``budget`` seconds have gone and the rest after the loop's next poll."""
        self._early_drain = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        n = len(pending)
        if budget is None or n <= _SLICE:
            self._deliver(pending)
            return
        clock = self.clock
        deadline = clock() + budget
        for start in range(0, n, _SLICE):
            self._deliver(pending[start:start + _SLICE])
            if start + _SLICE < n and clock() >= deadline:
                # the rest first, then what was posted meanwhile
                self._pending = pending[start + _SLICE:] + self._pending
                if not self._early_drain and self._loop is not None:
                    self._early_drain = True
                    self._loop.call_soon(self._drain_slice)
                return

    def _deliver(self, events: list) -> None:
        prepare = self.prepare
        for ev in events:
            fix = prepare.get(type(ev))
            if fix is not None:
                try:
                    fix(ev)
                except Exception:
                    log.exception("cannot prepare %s for the listeners", type(ev).__name__)
        for q in self._queues:
            if q.is_async:
                q.put_many(events)
            else:
                q.deliver_batch(events)

    async def events(self, capacity: int | None = None) -> AsyncIterator[Any]:
        """Every event posted from now on, until the bus stops (``sc.events()``)."""
        stream = _Stream()
        q = _Queue(stream, capacity or self.capacity, is_async=True)
        q.name = "events()"
        stream.queue = q
        if self._pending and self._on_loop():
            self._drain()
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
        """Deliver what is queued (async listeners: up to 5 s), then stop."""
        self._drain()
        self._stopped = True
        queues = list(self._queues)
        for q in queues:
            if q.is_async:
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
