"""A blocking facade for scripts, notebooks and the REPL.

::

    from asyncspark import SparkContext

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
import getpass
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from . import lifetime
from .conf import SparkConf
from .context import Context
from .errors import ContextStoppedError
from .rdd import RDD as _AsyncRDD
from .sync_rdd import RDD
from .threads import LoopClosedError, call_on_loop

__all__ = ["RDD", "SparkContext"]

T = TypeVar("T")
U = TypeVar("U")


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
    """Blocking counterpart of ``asyncspark.Context``: PySpark's ``SparkContext``.

    As in PySpark, one runs per process at a time (a second raises ``ValueError`` until
    the first is stopped; ``getOrCreate`` returns the running one); ``master`` defaults to
    ``spark.master`` of ``conf``, else ``local[*]``. The async ``Context`` has no such
    limit: several may run in one process.

    ``with SparkContext("local[2]", "app") as sc:`` stops it at the end of the block.

    >>> sc.parallelize(range(4)).map(lambda x: x * 10).collect()
    [0, 10, 20, 30]
    >>> SparkContext.getOrCreate() is sc
    True
    """

    PACKAGE_EXTENSIONS: Iterable[str] = (".zip", ".egg", ".jar")

    _lock = threading.RLock()
    _active_spark_context: SparkContext | None = None
    _callsite: str = "<unknown>"  # file:line of the user's code that created it

    def __init__(self, master: str | None = None, appName: str | None = None,
                 sparkHome: str | None = None, pyFiles: list[str] | None = None,
                 environment: dict[str, Any] | None = None, batchSize: int = 0,
                 serializer: Any = None, conf: SparkConf | dict[str, str] | None = None,
                 gateway: Any = None, jsc: Any = None, profiler_cls: Any = None,
                 udf_profiler_cls: Any = None, memory_profiler_cls: Any = None) -> None:
        _refuse_running_loop("SparkContext")
        for what, value in (("serializer", serializer), ("gateway", gateway), ("jsc", jsc),
                            ("profiler_cls", profiler_cls),
                            ("udf_profiler_cls", udf_profiler_cls),
                            ("memory_profiler_cls", memory_profiler_cls)):
            if value is not None:
                raise ValueError(f"SparkContext({what}=...) is PySpark's JVM or profiler "
                                 "plumbing, which asyncspark does not have; leave it None")
        if environment:
            raise ValueError(
                "SparkContext(environment=...): executors do not receive extra environment "
                "variables yet (they inherit the driver's: set them in os.environ before "
                "creating the context)")
        self._stopped = True
        with SparkContext._lock:
            active = SparkContext._active_spark_context
            if active is not None:
                raise ValueError(
                    "Cannot run multiple SparkContexts at once; existing SparkContext("
                    f"app={active.appName}, master={active.master}) created at "
                    f"{active._callsite}")
            items = dict(conf.getAll()) if isinstance(conf, SparkConf) else dict(conf or {})
            if sparkHome:
                items["spark.home"] = sparkHome
            lifetime.install_sigterm_handler()  # from this thread: the context starts on
            self._loop = _new_loop()            # the engine's, where signals cannot be set
            self._thread = threading.Thread(target=self._loop.run_forever,
                                            name="asyncspark-sync-loop", daemon=True)
            self._thread.start()
            try:
                self._ctx = Context(master, appName, items)
                call_on_loop(self._loop, self._ctx.start())
            except BaseException:
                self._shutdown_loop()
                raise
            self._stopped = False
            self._callsite = _callsite()
            SparkContext._active_spark_context = self
        self.master: str = self._ctx.master
        self.appName: str = self._ctx.appName
        self.sparkHome: str | None = items.get("spark.home")
        self.environment: dict[str, str] = {
            k[len("spark.executorEnv."):]: v for k, v in self._ctx.conf.raw.items()
            if k.startswith("spark.executorEnv.")}
        self.environment["PYTHONHASHSEED"] = "0"  # as executors have it
        self.pythonExec: str = sys.executable
        self.pythonVer: str = f"{sys.version_info[0]}.{sys.version_info[1]}"
        try:
            for path in pyFiles or ():
                self.addPyFile(path)
        except BaseException:
            self.stop()
            raise

    @classmethod
    def getOrCreate(cls, conf: SparkConf | None = None) -> SparkContext:
        """The running ``SparkContext``, or a new one from ``conf``.

        >>> SparkContext.getOrCreate() is sc
        True
        """
        with cls._lock:
            if cls._active_spark_context is None:
                cls(conf=conf or SparkConf())
            assert cls._active_spark_context is not None
            return cls._active_spark_context

    def _call(self, coro: Any) -> Any:
        _refuse_running_loop("SparkContext")
        if getattr(self, "_stopped", False):
            coro.close()
            raise ContextStoppedError("this SparkContext was stopped")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking asyncspark.sync call from the engine's own thread")
        # On KeyboardInterrupt (any way out but a result) the job is cancelled, not left
        # running.
        try:
            return call_on_loop(self._loop, coro)
        except LoopClosedError:
            raise ContextStoppedError("this SparkContext was stopped") from None

    def _soon(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the engine's loop, without waiting."""
        if getattr(self, "_stopped", False) or self._loop.is_closed():
            raise ContextStoppedError("this SparkContext was stopped")
        self._loop.call_soon_threadsafe(fn, *args)

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def stop(self) -> None:
        """Stop the executors and the engine's thread. Idempotent; then jobs get
        ``ContextStoppedError`` and ``getOrCreate()`` makes a new context.

        >>> callable(sc.stop)
        True
        """
        if getattr(self, "_stopped", True):
            return
        try:
            call_on_loop(self._loop, self._ctx.stop())
        finally:
            self._stopped = True
            self._shutdown_loop()
            with SparkContext._lock:
                if SparkContext._active_spark_context is self:
                    SparkContext._active_spark_context = None

    def __enter__(self) -> SparkContext:
        return self

    def __exit__(self, type: object, value: object, trace: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if not getattr(self, "_stopped", True) and self._thread.is_alive():
            try:
                self.stop()
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<SparkContext master={self.master} appName={self.appName}>"

    # -- properties ----------------------------------------------------------------------

    @property
    def applicationId(self) -> str:
        """
        >>> sc.applicationId.startswith('local-')
        True
        """
        return self._ctx.applicationId

    @property
    def startTime(self) -> int:
        """When the context started, in milliseconds since the epoch."""
        return self._ctx.startTime

    @property
    def version(self) -> str:
        """
        >>> sc.version == __import__('asyncspark').__version__
        True
        """
        return self._ctx.version

    @property
    def defaultParallelism(self) -> int:
        """
        >>> sc.defaultParallelism
        2
        """
        return self._ctx.defaultParallelism

    @property
    def defaultMinPartitions(self) -> int:
        """
        >>> sc.defaultMinPartitions
        2
        """
        return self._ctx.defaultMinPartitions

    def sparkUser(self) -> str:
        """The user running this context (``SPARK_USER``, else the login name).

        >>> isinstance(sc.sparkUser(), str)
        True
        """
        return os.environ.get("SPARK_USER") or getpass.getuser()

    def getConf(self) -> SparkConf:
        """
        >>> sc.getConf().get('spark.app.name')
        'doctests'
        """
        return self._ctx.getConf()

    # -- creation ------------------------------------------------------------------------

    def _wrap(self, rdd: _AsyncRDD[Any]) -> RDD[Any]:
        return RDD(rdd, self)

    def parallelize(self, c: Iterable[T], numSlices: int | None = None) -> RDD[T]:
        """
        >>> sc.parallelize(range(5), 2).glom().collect()
        [[0, 1], [2, 3, 4]]
        """
        return self._wrap(self._ctx.parallelize(c, numSlices))

    def range(self, start: int, end: int | None = None, step: int = 1,
              numSlices: int | None = None) -> RDD[int]:
        """
        >>> sc.range(1, 7, 2).collect()
        [1, 3, 5]
        """
        return self._wrap(self._ctx.range(start, end, step, numSlices))

    def textFile(self, name: str, minPartitions: int | None = None,
                 use_unicode: bool = True) -> RDD[str]:
        """
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile('w', delete=False) as f:
        ...     _ = f.write('one\\ntwo\\r\\nthree\\rfour')
        >>> sc.textFile(f.name).collect()
        ['one', 'two', 'three', 'four']
        >>> os.unlink(f.name)
        """
        return self._wrap(self._ctx.textFile(name, minPartitions, use_unicode))

    def wholeTextFiles(self, path: str, minPartitions: int | None = None,
                       use_unicode: bool = True) -> RDD[tuple[str, str]]:
        """
        >>> import tempfile, os, shutil
        >>> d = tempfile.mkdtemp()
        >>> with open(os.path.join(d, 'a.txt'), 'w') as f:
        ...     _ = f.write('alpha')
        >>> [(os.path.basename(p), text) for p, text in sc.wholeTextFiles(d).collect()]
        [('a.txt', 'alpha')]
        >>> shutil.rmtree(d)
        """
        return self._wrap(self._ctx.wholeTextFiles(path, minPartitions, use_unicode))

    def binaryFiles(self, path: str, minPartitions: int | None = None
                    ) -> RDD[tuple[str, bytes]]:
        """
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b'\\x00\\x01')
        >>> sc.binaryFiles(f.name).values().collect()
        [b'\\x00\\x01']
        >>> os.unlink(f.name)
        """
        return self._wrap(self._ctx.binaryFiles(path, minPartitions))

    def binaryRecords(self, path: str, recordLength: int) -> RDD[bytes]:
        """
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b'aabbcc')
        >>> sc.binaryRecords(f.name, 2).collect()
        [b'aa', b'bb', b'cc']
        >>> os.unlink(f.name)
        """
        return self._wrap(self._ctx.binaryRecords(path, recordLength))

    def pickleFile(self, name: str, minPartitions: int | None = None) -> RDD[Any]:
        """The elements ``RDD.saveAsPickleFile`` wrote under ``name``.

        >>> import os, shutil, tempfile
        >>> d = tempfile.mkdtemp(); sc.parallelize([1, 2, 3]).saveAsPickleFile(os.path.join(d, "o"))
        >>> sorted(sc.pickleFile(os.path.join(d, "o")).collect())
        [1, 2, 3]
        >>> shutil.rmtree(d)
        """
        return self._wrap(self._ctx.pickleFile(name, minPartitions))

    def emptyRDD(self) -> RDD[Any]:
        """
        >>> sc.emptyRDD().count()
        0
        """
        return self._wrap(self._ctx.emptyRDD())

    def union(self, rdds: list[RDD[T]]) -> RDD[T]:
        """
        >>> sc.union([sc.parallelize([1]), sc.parallelize([2])]).collect()
        [1, 2]
        """
        return self._wrap(self._ctx.union([r._rdd for r in rdds]))

    def runJob(self, rdd: RDD[T], partitionFunc: Callable[[Iterator[T]], Iterable[U]],
               partitions: Sequence[int] | None = None, allowLocal: bool = False) -> list[U]:
        """
        >>> rdd = sc.parallelize(range(6), 3)
        >>> sc.runJob(rdd, lambda it: [sum(it)], partitions=[0, 2])
        [1, 9]
        """
        return self._call(self._ctx.runJob(rdd._rdd, partitionFunc, partitions))

    # -- shared variables, files, checkpoints --------------------------------------------

    def accumulator(self, value: Any, accum_param: Any = None) -> Any:
        """
        >>> acc = sc.accumulator(0)
        >>> sc.parallelize(range(5)).foreach(lambda x: acc.add(x))
        >>> acc.value
        10
        """
        return self._ctx.accumulator(value, accum_param)

    def broadcast(self, value: Any) -> Any:
        """
        >>> table = sc.broadcast({'a': 1})
        >>> sc.parallelize(['a', 'a']).map(lambda k: table.value[k]).collect()
        [1, 1]
        """
        return self._ctx.broadcast(value)  # pickled on this thread, as PySpark does

    def addFile(self, path: str, recursive: bool = False) -> None:
        """Ship a file (a directory with ``recursive=True``) to every executor.

        >>> import os, shutil, tempfile
        >>> from asyncspark import SparkFiles
        >>> d = tempfile.mkdtemp(); f = os.path.join(d, "facade.txt"); _ = open(f, "w").write("7")
        >>> sc.addFile(f)
        >>> sc.range(1).map(lambda _: open(SparkFiles.get("facade.txt")).read()).collect()
        ['7']
        >>> shutil.rmtree(d)
        """
        self._ctx.addFile(path, recursive)

    def addArchive(self, path: str) -> None:
        """Ship an archive, unpacked on each executor into ``SparkFiles.get(its name)``.

        >>> import os, shutil, tempfile, zipfile
        >>> from asyncspark import SparkFiles
        >>> d = tempfile.mkdtemp(); z = os.path.join(d, "facade.zip")
        >>> with zipfile.ZipFile(z, "w") as f: f.writestr("w.txt", "hi")
        >>> sc.addArchive(z)
        >>> sc.range(1).map(lambda _: open(os.path.join(SparkFiles.get("facade.zip"), "w.txt"))
        ...                 .read()).collect()
        ['hi']
        >>> shutil.rmtree(d)
        """
        self._ctx.addArchive(path)

    def addPyFile(self, path: str) -> None:
        """Make a ``.py`` file or a ``.zip`` of modules importable in tasks.

        >>> import os, shutil, tempfile
        >>> d = tempfile.mkdtemp(); py = os.path.join(d, "facade_helpers.py")
        >>> _ = open(py, "w").write("def triple(x):\\n    return 3 * x\\n")
        >>> sc.addPyFile(py)
        >>> sc.parallelize([1, 2]).map(lambda x: __import__("facade_helpers").triple(x)).collect()
        [3, 6]
        >>> shutil.rmtree(d)
        """
        self._ctx.addPyFile(path)

    @property
    def listFiles(self) -> list[str]:
        return self._ctx.listFiles

    @property
    def listArchives(self) -> list[str]:
        return self._ctx.listArchives

    def setCheckpointDir(self, dirName: str) -> None:
        """
        >>> import tempfile, shutil
        >>> d = tempfile.mkdtemp()
        >>> sc.setCheckpointDir(d)
        >>> sc.getCheckpointDir().startswith(d)
        True
        >>> shutil.rmtree(d)
        """
        self._ctx.setCheckpointDir(dirName)

    def getCheckpointDir(self) -> str | None:
        """The directory ``setCheckpointDir`` made (None before).

        >>> sc.getCheckpointDir() is None or sc.getCheckpointDir().startswith("/")
        True
        """
        return self._ctx.getCheckpointDir()

    # -- jobs (properties are per calling thread) ----------------------------------------

    def setJobGroup(self, groupId: str, description: str | None,
                    interruptOnCancel: bool = False) -> None:
        """Put this thread's later jobs into group ``groupId`` (``cancelJobGroup``).

        >>> sc.setJobGroup("nightly", "nightly report"); sc.getLocalProperty("spark.jobGroup.id")
        'nightly'
        >>> sc.clearJobGroup()
        """
        self._ctx.setJobGroup(groupId, description, interruptOnCancel)

    def clearJobGroup(self) -> None:
        """Undo ``setJobGroup`` for this thread's later jobs.

        >>> sc.setJobGroup("g", None); sc.clearJobGroup()
        >>> sc.getLocalProperty("spark.jobGroup.id") is None
        True
        """
        self._ctx.clearJobGroup()

    def setLocalProperty(self, key: str, value: str | None) -> None:
        """
        >>> sc.setLocalProperty('team', 'data')
        >>> sc.getLocalProperty('team')
        'data'
        >>> sc.setLocalProperty('team', None)
        """
        self._ctx.setLocalProperty(key, value)

    def getLocalProperty(self, key: str) -> str | None:
        """A local property of this thread, or None.

        >>> sc.getLocalProperty("no.such.property") is None
        True
        """
        return self._ctx.getLocalProperty(key)

    def setJobDescription(self, value: str) -> None:
        """Describe this thread's later jobs (the UI shows it).

        >>> sc.setJobDescription("count the lines"); sc.getLocalProperty("spark.job.description")
        'count the lines'
        >>> sc.setLocalProperty("spark.job.description", None)
        """
        self._ctx.setJobDescription(value)

    def setInterruptOnCancel(self, interruptOnCancel: bool) -> None:
        """Recorded as ``spark.job.interruptOnCancel`` (tasks are interrupted anyway).

        >>> sc.setInterruptOnCancel(True); sc.getLocalProperty("spark.job.interruptOnCancel")
        'true'
        >>> sc.setLocalProperty("spark.job.interruptOnCancel", None)
        """
        self._ctx.setInterruptOnCancel(interruptOnCancel)

    def addJobTag(self, tag: str) -> None:
        """Tag this thread's later jobs (``cancelJobsWithTag``).

        >>> sc.addJobTag("etl"); sc.getJobTags()
        {'etl'}
        >>> sc.clearJobTags()
        """
        self._ctx.addJobTag(tag)

    def removeJobTag(self, tag: str) -> None:
        """Stop tagging this thread's later jobs with ``tag``.

        >>> sc.addJobTag("etl"); sc.removeJobTag("etl"); sc.getJobTags()
        set()
        """
        self._ctx.removeJobTag(tag)

    def getJobTags(self) -> set[str]:
        """The tags this thread's jobs get.

        >>> sc.getJobTags()
        set()
        """
        return self._ctx.getJobTags()

    def clearJobTags(self) -> None:
        """Remove every tag of this thread's later jobs.

        >>> sc.addJobTag("a"); sc.clearJobTags(); sc.getJobTags()
        set()
        """
        self._ctx.clearJobTags()

    def cancelJobsWithTag(self, tag: str) -> None:
        """Cancel the active jobs tagged ``tag``: their callers get ``JobCancelledError``.

        >>> import threading, time
        >>> spin = sc.parallelize([1], 1).map(lambda x: any(time.sleep(0.01) for _ in iter(int, 1)))
        >>> def run(errors, setup=lambda: None):
        ...     try: setup(); spin.collect()
        ...     except Exception as e: errors.append(type(e).__name__)
        >>> errors = []; t = threading.Thread(target=run, args=(errors, lambda: sc.addJobTag("x")))
        >>> t.start()
        >>> while not sc.statusTracker().getActiveJobsIds(): time.sleep(0.01)
        >>> sc.cancelJobsWithTag("x"); t.join(60); errors
        ['JobCancelledError']
        """
        from .jobtags import check_tag

        check_tag(tag)  # bad input fails here, not on the engine's loop
        self._loop.call_soon_threadsafe(self._ctx.cancelJobsWithTag, tag)

    def cancelJobGroup(self, groupId: str) -> None:
        """Cancel the active jobs of group ``groupId``.

        >>> import threading, time
        >>> spin = sc.parallelize([1], 1).map(lambda x: any(time.sleep(0.01) for _ in iter(int, 1)))
        >>> def run(errors, setup=lambda: None):
        ...     try: setup(); spin.collect()
        ...     except Exception as e: errors.append(type(e).__name__)
        >>> errors = []; t = threading.Thread(
        ...     target=run, args=(errors, lambda: sc.setJobGroup("report", None)))
        >>> t.start()
        >>> while not sc.statusTracker().getJobIdsForGroup("report"): time.sleep(0.01)
        >>> sc.cancelJobGroup("report"); t.join(60); errors
        ['JobCancelledError']
        """
        self._soon(self._ctx.cancelJobGroup, groupId)

    def cancelAllJobs(self) -> None:
        """Cancel every active job; the context stays usable.

        >>> sc.cancelAllJobs(); sc.range(3).count()
        3
        """
        self._soon(self._ctx.cancelAllJobs)

    def cancelJob(self, jobId: int, reason: str | None = None) -> None:
        """Cancel a running job by id (``statusTracker()``), as ``cancelJobGroup`` shows
        for a group. An id that runs nothing is ignored:

        >>> sc.cancelJob(10**6, "no such job"); sc.range(2).count()
        2
        """
        self._soon(self._ctx.cancelJob, jobId, reason)

    def addSparkListener(self, listener: Any) -> None:
        """Receive scheduler events (``asyncspark.listener.SparkListener``), on the loop.

        >>> import threading; from asyncspark.listener import SparkListener
        >>> class JobEnds(SparkListener):
        ...     ended = threading.Event()
        ...     def onJobEnd(self, event): self.ended.set()
        >>> ends = JobEnds(); sc.addSparkListener(ends)
        >>> sc.range(2).count(), ends.ended.wait(60)
        (2, True)
        >>> sc.removeSparkListener(ends)
        """
        self._soon(self._ctx.addSparkListener, listener)

    def removeSparkListener(self, listener: Any) -> None:
        """Stop delivering events to ``listener``.

        >>> from asyncspark.listener import SparkListener
        >>> sc.addSparkListener(listener := SparkListener()); sc.removeSparkListener(listener)
        """
        self._soon(self._ctx.removeSparkListener, listener)

    def statusTracker(self) -> Any:
        """PySpark's ``StatusTracker``: the active jobs and stages, by group.

        >>> sc.statusTracker().getJobIdsForGroup("no such group")
        []
        """
        return self._ctx.statusTracker()

    def setLogLevel(self, logLevel: str) -> None:
        """Set the level of asyncspark's loggers (PySpark's names: ``"INFO"``, ``"WARN"``...).

        >>> sc.setLogLevel("WARN")
        """
        self._ctx.setLogLevel(logLevel)

    @property
    def uiWebUrl(self) -> str | None:
        """The web UI's URL, or None when the UI is off (``spark.ui.enabled``)."""
        return self._ctx.uiWebUrl


def _callsite() -> str:
    """``file:line`` of the user's code that created the context (PySpark names it in
    the error of a second context)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for frame in inspect.stack(context=0)[1:]:
        if not os.path.abspath(frame.filename).startswith(here):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"
