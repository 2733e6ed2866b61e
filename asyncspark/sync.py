"""A blocking facade for scripts, notebooks and the REPL.

::

    from asyncspark.sync import SparkContext

    with SparkContext("local[2]", appName="demo") as sc:
        print(sc.parallelize(range(10)).map(lambda x: x * x).sum())

The same API as ``asyncspark.Context``/``RDD``, with blocking actions. The engine runs on
its own event loop in a background thread; each action blocks the calling thread until
its job is done. Job properties (``setJobGroup``, ``setLocalProperty``) are per calling
thread, as in PySpark. It refuses to be used from inside a running event loop, where it
would block that loop: use ``asyncspark.Context`` there.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from typing import Any

from .conf import SparkConf
from .context import Context
from .rdd import RDD as _AsyncRDD
from .threads import call_on_loop

__all__ = ["RDD", "SparkContext"]


def _refuse_running_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"asyncspark.sync.{what} blocks, and cannot be used from inside a running event "
        "loop; use 'async with asyncspark.Context(...)' and 'await' the actions instead")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class SparkContext:
    """Blocking counterpart of ``asyncspark.Context`` (PySpark's ``SparkContext``)."""

    def __init__(self, master: str | None = "local[2]", appName: str | None = None,
                 conf: SparkConf | dict | None = None) -> None:
        _refuse_running_loop("SparkContext")
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="asyncspark-sync-loop", daemon=True)
        self._thread.start()
        self._ctx = Context(master, appName, conf)
        try:
            self._call(self._ctx.start())
        except BaseException:
            self._shutdown_loop()
            raise
        self._stopped = False

    def _call(self, coro: Any) -> Any:
        _refuse_running_loop("SparkContext")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking asyncspark.sync call from the engine's own thread")
        # On KeyboardInterrupt (any way out but a result) the job is cancelled, not left
        # running.
        return call_on_loop(self._loop, coro)

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def stop(self) -> None:
        """Stop the executors and the engine's thread. Idempotent."""
        if getattr(self, "_stopped", True):
            return
        self._stopped = True
        try:
            self._call(self._ctx.stop())
        finally:
            self._shutdown_loop()

    def __enter__(self) -> SparkContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if not getattr(self, "_stopped", True) and self._thread.is_alive():
            try:
                self.stop()
            except Exception:
                pass

    # -- creation ------------------------------------------------------------------------

    def _wrap(self, rdd: _AsyncRDD) -> RDD:
        return RDD(rdd, self)

    def parallelize(self, c, numSlices: int | None = None) -> RDD:
        return self._wrap(self._ctx.parallelize(c, numSlices))

    def range(self, start: int, end: int | None = None, step: int = 1,
              numSlices: int | None = None) -> RDD:
        return self._wrap(self._ctx.range(start, end, step, numSlices))

    def textFile(self, name: str, minPartitions: int | None = None,
                 use_unicode: bool = True) -> RDD:
        return self._wrap(self._ctx.textFile(name, minPartitions, use_unicode))

    def emptyRDD(self) -> RDD:
        return self._wrap(self._ctx.emptyRDD())

    def union(self, rdds: list[RDD]) -> RDD:
        return self._wrap(self._ctx.union([r._rdd for r in rdds]))

    def runJob(self, rdd: RDD, partitionFunc, partitions=None, allowLocal: bool = False):
        return self._call(self._ctx.runJob(rdd._rdd, partitionFunc, partitions))

    # -- jobs (properties are per calling thread) ----------------------------------------

    def setJobGroup(self, groupId: str, description: str | None,
                    interruptOnCancel: bool = False) -> None:
        self._ctx.setJobGroup(groupId, description, interruptOnCancel)

    def setLocalProperty(self, key: str, value: str | None) -> None:
        self._ctx.setLocalProperty(key, value)

    def getLocalProperty(self, key: str) -> str | None:
        return self._ctx.getLocalProperty(key)

    def setJobDescription(self, value: str) -> None:
        self._ctx.setJobDescription(value)

    def setInterruptOnCancel(self, interruptOnCancel: bool) -> None:
        self._ctx.setInterruptOnCancel(interruptOnCancel)

    def addJobTag(self, tag: str) -> None:
        self._ctx.addJobTag(tag)

    def removeJobTag(self, tag: str) -> None:
        self._ctx.removeJobTag(tag)

    def getJobTags(self) -> set[str]:
        return self._ctx.getJobTags()

    def clearJobTags(self) -> None:
        self._ctx.clearJobTags()

    def cancelJobsWithTag(self, tag: str) -> None:
        from .jobtags import check_tag

        check_tag(tag)  # bad input fails here, not on the engine's loop
        self._loop.call_soon_threadsafe(self._ctx.cancelJobsWithTag, tag)

    def cancelJobGroup(self, groupId: str) -> None:
        self._loop.call_soon_threadsafe(self._ctx.cancelJobGroup, groupId)

    def cancelAllJobs(self) -> None:
        self._loop.call_soon_threadsafe(self._ctx.cancelAllJobs)

    def cancelJob(self, jobId: int) -> None:
        self._loop.call_soon_threadsafe(self._ctx.cancelJob, jobId)

    def addSparkListener(self, listener: Any) -> None:
        self._loop.call_soon_threadsafe(self._ctx.addSparkListener, listener)

    def statusTracker(self):
        return self._ctx.statusTracker()

    def __getattr__(self, name: str) -> Any:
        # Read-only properties: master, appName, defaultParallelism, version, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._ctx, name)


class RDD:
    """Blocking counterpart of ``asyncspark.RDD``: transformations as usual, actions block."""

    __slots__ = ("_rdd", "_sc")

    def __init__(self, rdd: _AsyncRDD, sc: SparkContext) -> None:
        self._rdd = rdd
        self._sc = sc

    @property
    def context(self) -> SparkContext:
        return self._sc

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rdd, name)
        if not callable(attr):
            return attr
        static = inspect.getattr_static(type(self._rdd), name, None)
        fn = getattr(static, "__func__", static)
        sc = self._sc
        if inspect.iscoroutinefunction(fn):
            def action(*args, **kwargs):
                return sc._call(attr(*_unwrap(args), **_unwrap_kw(kwargs)))
            action.__name__ = name
            action.__doc__ = attr.__doc__
            return action

        def transformation(*args, **kwargs):
            result = attr(*_unwrap(args), **_unwrap_kw(kwargs))
            return RDD(result, sc) if isinstance(result, _AsyncRDD) else result
        transformation.__name__ = name
        transformation.__doc__ = attr.__doc__
        return transformation

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._rdd)) | {"context", "toLocalIterator"})

    def __add__(self, other: RDD) -> RDD:
        return self.union(other)

    def toLocalIterator(self, prefetchPartitions: bool = False) -> Iterator:
        """Iterate the elements, fetching one partition at a time."""
        rdd = self._rdd
        for i in range(rdd.getNumPartitions()):
            yield from self._sc._call(rdd._run(list, [i]))[0]

    def __repr__(self) -> str:
        return repr(self._rdd)


def _unwrap(args: tuple) -> list:
    return [a._rdd if isinstance(a, RDD) else a for a in args]


def _unwrap_kw(kwargs: dict) -> dict:
    return {k: (v._rdd if isinstance(v, RDD) else v) for k, v in kwargs.items()}
