"""The listener bus: scheduler events delivered to listeners off the scheduler loop.

``Context.addSparkListener(listener)`` registers an object with any of the ``on*`` methods
of ``SparkListener`` (plain or ``async def``). Events are queued by the scheduler and
delivered by a separate coroutine, so a slow listener never slows scheduling; an exception
in a listener is logged and the listener keeps receiving events.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ListenerBus", "SparkListener", "SparkListenerExecutorAdded",
    "SparkListenerExecutorRemoved", "SparkListenerJobEnd", "SparkListenerJobStart",
    "SparkListenerStageCompleted", "SparkListenerStageSubmitted", "SparkListenerTaskEnd",
    "SparkListenerTaskStart",
]

log = logging.getLogger("asyncspark.listener")


@dataclass(slots=True)
class SparkListenerJobStart:
    jobId: int
    time: float
    stageIds: list[int]
    properties: dict = field(default_factory=dict)


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


@dataclass(slots=True)
class SparkListenerExecutorRemoved:
    executorId: str
    reason: str
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
}


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


class ListenerBus:
    """Queues events and delivers them from its own coroutine."""

    def __init__(self) -> None:
        self._listeners: list[Any] = []
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    @property
    def active(self) -> bool:
        """Whether anyone listens; the scheduler skips building events when not."""
        return bool(self._listeners)

    def add(self, listener: Any) -> None:
        self._listeners.append(listener)

    def remove(self, listener: Any) -> None:
        self._listeners.remove(listener)

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(
            self._dispatch(), name="asyncspark-listener-bus")

    def post(self, event: Any) -> None:
        if self._listeners and self._queue is not None:
            self._queue.put_nowait(event)

    async def _dispatch(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            event = await queue.get()
            if event is None:
                return
            name = _METHODS[type(event)]
            for listener in list(self._listeners):
                method = getattr(listener, name, None)
                if method is None:
                    continue
                try:
                    r = method(event)
                    if inspect.isawaitable(r):
                        await r
                except Exception:
                    log.exception("listener %r failed on %s", listener, name)

    async def stop(self) -> None:
        """Deliver what is queued, then stop."""
        if self._task is None:
            return
        assert self._queue is not None
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except TimeoutError:
            self._task.cancel()
        self._task = None
