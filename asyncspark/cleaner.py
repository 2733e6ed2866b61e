"""The ContextCleaner (Spark's): frees what belongs to shuffles, broadcasts and cached
RDDs the driver no longer references.

The context tracks, at each job submission, every ``ShuffleDependency`` and persisted
RDD in the job's lineage, and every ``Broadcast`` it creates, with a weak reference
(``weakref.finalize``). When one is collected, its finalizer (which may run in any
thread: wherever the garbage collector ran) queues its id and wakes the driver's loop
(``loop.call_soon_threadsafe``); the clean-up itself runs on the loop, between the
scheduler's events:

- a shuffle: its map stage leaves the DAGScheduler (``forget_shuffle``; a shuffle a job
  or a registered stage still needs is kept and tried again a second later), its map
  outputs the MapOutputTracker, its map binary the stage planner, its epochs the task
  scheduler's executor records; every executor gets ``RemoveShuffle`` on its task
  channel and deletes the shuffle's files and locations;
- a broadcast: its file in the driver and the executors' copies (``RemoveBroadcast``);
- a cached RDD: its blocks everywhere, as ``unpersist()`` does.

``spark.cleaner.referenceTracking`` (default true) turns it on;
``spark.cleaner.referenceTracking.blocking`` (default true) makes it wait for a cached
RDD's blocks to be gone before the next clean-up. ``sc.cleaner`` counts what it cleaned
(``shuffles_cleaned``, ``broadcasts_cleaned``, ``rdds_cleaned``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from collections.abc import Callable
from typing import Any

from .dependency import ShuffleDependency
from .transport.messages.control import RemoveShuffle

__all__ = ["ContextCleaner", "shuffle_cleanup"]

log: logging.Logger = logging.getLogger("asyncspark.cleaner")

_RETRY_S = 1.0  # a shuffle still in use is tried again after this


def shuffle_cleanup(dag: Any, planner: Any, task_scheduler: Any) -> Callable[[int], bool]:
    """The driver's clean-up of one shuffle (see the module docstring): False, doing
    nothing, while the DAGScheduler still needs it."""

    def clean(sid: int) -> bool:
        if not dag.forget_shuffle(sid):
            return False
        dag.map_outputs.unregister_shuffle(sid)
        planner.forget(sid)
        for ex in task_scheduler.core.executors.values():
            ex.map_epochs.pop(sid, None)
        task_scheduler.send_to_all(RemoveShuffle([sid]))
        return True

    return clean


class ContextCleaner:
    """See the module docstring. ``clean_shuffle(sid) -> bool`` (False: still in use;
    ``shuffle_cleanup`` makes the context's), ``clean_broadcast(bid) -> bool`` and
    ``clean_rdd(rdd_id) -> awaitable | None`` do the work; they run on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 clean_shuffle: Callable[[int], bool],
                 clean_broadcast: Callable[[int], bool],
                 clean_rdd: Callable[[int], Any], blocking: bool = True) -> None:
        self._loop = loop
        self._clean_shuffle = clean_shuffle
        self._clean_broadcast = clean_broadcast
        self._clean_rdd = clean_rdd
        self.blocking = blocking
        self.shuffles_cleaned: int = 0
        self.broadcasts_cleaned: int = 0
        self.rdds_cleaned: int = 0
        self._finalizers: dict[tuple[str, int], weakref.finalize] = {}
        self._gone: collections.deque[tuple[str, int]] = collections.deque()
        self._deferred: set[int] = set()  # shuffles still in use when collected
        self._retry: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopped = False

    # -- tracking (driver thread or loop) ------------------------------------------------

    def track_lineage(self, rdd: Any) -> None:
        """Track the shuffle dependencies and persisted RDDs of ``rdd``'s lineage."""
        seen: set[int] = set()
        stack = [rdd]
        while stack:
            r = stack.pop()
            if id(r) in seen:
                continue
            seen.add(id(r))
            if r._storage_level is not None:
                self._track(r, "rdd", r.id())
            for dep in r._deps:
                if isinstance(dep, ShuffleDependency):
                    self._track(dep, "shuffle", dep.shuffle_id)
                stack.append(dep.rdd)

    def track_broadcast(self, broadcast: Any) -> None:
        self._track(broadcast, "broadcast", broadcast.id)

    def _track(self, obj: Any, kind: str, ident: int) -> None:
        key = (kind, ident)
        if self._stopped or key in self._finalizers:
            return
        fin = weakref.finalize(obj, self._collected, key)
        fin.atexit = False  # nothing to clean once the interpreter exits
        self._finalizers[key] = fin

    def _collected(self, key: tuple[str, int]) -> None:
        """Finalizer, in whatever thread the collector ran: hand over to the loop."""
        self._gone.append(key)  # a deque: thread-safe appends
        if self._stopped:
            return
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: the context is gone
            pass

    # -- cleaning (on the loop) ----------------------------------------------------------

    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name="asyncspark-cleaner")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._gone:
                kind, ident = self._gone.popleft()
                self._finalizers.pop((kind, ident), None)
                try:
                    await self._clean(kind, ident)
                except Exception:  # one failed clean-up must not stop the others
                    log.exception("cleaning %s %d failed", kind, ident)

    async def _clean(self, kind: str, ident: int) -> None:
        if kind == "shuffle":
            self._try_shuffle(ident)
        elif kind == "broadcast":
            if self._clean_broadcast(ident):
                self.broadcasts_cleaned += 1
        else:
            pending = self._clean_rdd(ident)
            self.rdds_cleaned += 1
            if self.blocking and pending is not None:
                await pending

    def _try_shuffle(self, sid: int) -> None:
        if self._clean_shuffle(sid):
            self._deferred.discard(sid)
            self.shuffles_cleaned += 1
            return
        self._deferred.add(sid)
        if self._retry is None:
            self._retry = self._loop.call_later(_RETRY_S, self._retry_deferred)

    def _retry_deferred(self) -> None:
        self._retry = None
        for sid in sorted(self._deferred, reverse=True):  # children before parents
            if sid in self._deferred:
                self._deferred.discard(sid)
                self._try_shuffle(sid)

    async def stop(self) -> None:
        """Stop tracking and cleaning (the context is stopping: it removes everything)."""
        self._stopped = True
        for fin in list(self._finalizers.values()):
            fin.detach()
        self._finalizers.clear()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def tracked(self) -> int:
        """How many shuffles, broadcasts and cached RDDs are tracked (not yet collected)."""
        return len(self._finalizers)
