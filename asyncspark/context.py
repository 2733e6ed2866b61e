"""``Context``: the entry point — configuration, executors, RDD creation, job submission.

::

    async with asyncspark.Context("local[2]", app_name="demo") as sc:
        print(await sc.parallelize(range(10)).map(lambda x: x * x).sum())
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from . import lifetime, planner
from .accumulators import Accumulator, AccumulatorParam, AccumulatorRegistry
from .broadcast import Broadcast, BroadcastManager
from .callsite import call_site
from .cleaner import ContextCleaner, shuffle_cleanup
from .conf import Config, SparkConf
from .context_files import ContextFileMethods
from .context_jobs import JobControl, _local_properties
from .context_stop import ContextShutdown
from .errors import ConfigError, ContextStoppedError, SerializationError
from .jobtags import JobTags
from .listener import ListenerBus
from .rdd import RDD
from .rdds.checkpoint import checkpoint_marked
from .scheduler.admission import Admission, admission_wait, map_tasks_to_run
from .scheduler.backends.factory import master_kind
from .scheduler.dag_scheduler import JOB_GROUP_KEY, DAGScheduler
from .scheduler.events import JobCancelled, JobSubmitted
from .scheduler.exclusion import ExclusionConf
from .scheduler.pools import pools_from_config
from .scheduler.speculation import SpeculationConf
from .scheduler.stage import JobWaiter
from .scheduler.task_scheduler import TaskScheduler
from .scheduler.trace import Tracer, now_ns
from .shuffle.map_output_tracker import MapOutputTracker
from .storage.master import BlockManagerMaster
from .tls import DriverTLS
from .ui.tracker import StatusTracker

__all__ = ["Context", "StatusTracker", "parse_master"]

T = TypeVar("T")
U = TypeVar("U")

log: logging.Logger = logging.getLogger("asyncspark")
_sched_log = logging.getLogger("asyncspark.scheduler")  # its INFO lines name the call site

_LOCAL_RE = re.compile(r"local(?:\[(\*|\d+)(?:\s*,\s*(\d+))?\])?")

def parse_master(master: str) -> int:
    """Number of executors for ``local``, ``local[N]``, ``local[*]`` (``local[N,F]`` too)."""
    m = _match_master(master)
    n = m.group(1)
    if n is None:
        return 1
    if n == "*":
        return os.cpu_count() or 1
    if int(n) < 1:
        raise ConfigError(f"master {master!r}: the number of executors must be at least 1")
    return int(n)


def _match_master(master: str) -> re.Match:
    m = _LOCAL_RE.fullmatch(master.strip())
    if not m:
        raise ConfigError(
            f"unsupported master URL {master!r}: expected local, local[N], local[*], "
            "local[N,F], ray or ray://HOST:PORT")
    return m


def master_max_failures(master: str) -> int | None:
    """F of ``local[N,F]`` (task attempts before a job fails, as in Spark), else None."""
    f = _match_master(master).group(2)
    if f is None:
        return None
    if int(f) < 1:
        raise ConfigError(f"master {master!r}: the number of task failures must be at "
                          "least 1")
    return int(f)


class Context(ContextFileMethods, ContextShutdown, JobControl, JobTags):
    """A connection to an asyncspark cluster (today: ``local[N]`` executor processes).

    ``master`` and ``app_name`` override ``conf`` (a dict or ``SparkConf``). Start it with
    ``async with`` (or ``await sc.start()`` / ``await sc.stop()``). The context runs on the
    event loop it was started on; use it from coroutines of that loop. Unlike the blocking
    facade's ``SparkContext``, several may run in one process. ``ssl_context`` (a server
    ``ssl.SSLContext``) serves the driver's executor endpoint and broadcast server and
    turns TLS on; executors and the UI use the ``spark.ssl.*`` files (``asyncspark/tls.py``).

    >>> import asyncspark
    >>> async def main():
    ...     async with asyncspark.Context("local[1]", app_name="a") as a, \\
    ...             asyncspark.Context("local[1]", app_name="b") as b:
    ...         return await a.range(5).sum(), await b.parallelize("xy").collect()
    >>> asyncspark.run(main())
    (10, ['x', 'y'])
    """

    _asyncspark_driver_only_ = "context"  # serializers.DRIVER_ONLY: refused inside tasks

    def __init__(self, master: str | None = None, app_name: str | None = None,
                 conf: SparkConf | Mapping[str, Any] | None = None, *,
                 appName: str | None = None, ssl_context: Any = None) -> None:
        if isinstance(conf, SparkConf):
            items = dict(conf.getAll())
        else:
            items = {k: str(v) for k, v in (conf or {}).items()}
        if master is not None:
            items["spark.master"] = master
        name = app_name or appName
        if name is not None:
            items["spark.app.name"] = name
        self.conf: Config = Config.from_items(items.items())
        if ssl_context is not None:  # TLS on; executors' contexts from spark.ssl.* files
            self.conf = dataclasses.replace(self.conf, ssl_enabled=True)
        self._tls = DriverTLS.from_config(self.conf, ssl_context)  # bad files fail here
        if master_kind(self.conf.master)[0] == "local":
            self.num_executors = parse_master(self.conf.master)
            failures = master_max_failures(self.conf.master)
            if failures is not None:  # local[N,F]: F overrides spark.task.maxFailures
                self.conf = dataclasses.replace(self.conf, task_max_failures=failures)
        else:
            n = self.conf.executor_instances
            self.num_executors: int = 2 if n is None else n
        # spark.scheduler.mode=FAIR: the pools, read now so a bad file fails here.
        self._pools = pools_from_config(self.conf)
        # asyncspark.scheduler.maxActiveJobs / maxPendingTasks; None: unlimited.
        self._admission = (Admission(self.conf.max_active_jobs, self.conf.max_pending_tasks)
                           if self.conf.max_active_jobs or self.conf.max_pending_tasks
                           else None)
        self._rdd_ids = itertools.count()
        self._job_ids = itertools.count()
        self._shuffle_ids = itertools.count()
        self._stages = planner.StagePlanner()  # map-stage task binaries, once per shuffle
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backend = None
        self._dag: DAGScheduler | None = None
        self._task_scheduler: TaskScheduler | None = None
        self._tracer: Tracer | None = Tracer() if self.conf.trace_tasks else None
        self.listener_bus: ListenerBus = ListenerBus(self.conf.listener_queue_capacity)
        self._active_jobs: dict[int, str | None] = {}
        self._accumulators = AccumulatorRegistry()
        self._broadcasts: BroadcastManager | None = None
        self._checkpoint_dir: str | None = None
        self._checkpoints_pending = 0  # RDDs marked for checkpointing, not yet written
        self._block_master: BlockManagerMaster | None = None
        self._removals: set[asyncio.Task] = set()  # unpersist() clean-ups in flight
        self.cleaner: ContextCleaner | None = None  # spark.cleaner.referenceTracking
        self._state = "new"
        # stop()'s steps, once started (a retried stop() waits for them)
        self._stop_steps_run: dict[str, asyncio.Future] = {}
        self.startTime: int = int(time.time() * 1000)
        self.applicationId: str = f"local-{self.startTime}"
        from .ui.session import Observability

        self._obs = Observability(self)  # status store, UI, event log, progress bar

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Context:
        """Start the executors and the scheduler; the context, for chaining
        (``sc = await Context("local[2]").start()``). ``async with`` calls it. A context
        starts once:

        >>> await sc.start()
        Traceback (most recent call last):
        asyncspark.errors.ContextStoppedError: the context is already running
        """
        if self._state != "new":
            raise ContextStoppedError(f"the context is already {self._state}")
        from .scheduler.backends.factory import cluster_backend, executor_spec
        from .scheduler.backends.manager import ExecutorManager

        self._obs.before_start()  # a bad spark.eventLog.dir fails here, nothing started
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        lifetime.register(self)  # cleaned up at exit or on SIGTERM if never stopped
        self.listener_bus.start()
        self._obs.post_application_start()
        bus = self.listener_bus
        map_outputs = MapOutputTracker()
        from .storage.disk_store import shm_root

        # The host-level off-heap store (OFF_HEAP): owned here, outlives executors.
        self._block_master = blocks = BlockManagerMaster(
            tempfile.mkdtemp(prefix="asyncspark-offheap-", dir=shm_root()))
        blocks.on_update = self._obs.block_updated
        ts = TaskScheduler(self._post_event, post_many=self._post_events,
                           max_failures=self.conf.task_max_failures,
                           map_outputs=map_outputs,
                           kill_grace_period=self.conf.kill_grace_period,
                           pipeline_depth=self.conf.pipeline_depth,
                           short_task_us=self.conf.short_task_threshold * 1e6,
                           listeners_active=lambda: bus.active, tracer=self._tracer,
                           locality_wait=self.conf.locality_wait, block_master=blocks,
                           speculation=SpeculationConf.from_config(self.conf),
                           exclusion=ExclusionConf.from_config(self.conf),
                           max_result_size=self.conf.max_result_size,
                           result_timeout=self.conf.network_timeout, pools=self._pools)
        self._task_scheduler = ts
        self._dag = DAGScheduler(ts, self._obs.post, lambda: bus.active,
                                 map_outputs=map_outputs,
                                 tracer=self._tracer,
                                 update_accumulators=self._accumulators.apply,
                                 block_master=blocks,
                                 max_consecutive_attempts=self.conf.stage_max_attempts,
                                 resubmit_delay=self.conf.resubmit_delay)
        self._dag.start()
        try:  # makes the application's directory: spark.local.dir may be unusable
            cluster = cluster_backend(self.conf)
        except BaseException:
            self._state = "stopped"
            await self._dag.stop("the context failed to start")
            await self.listener_bus.stop()
            self._remove_offheap_dir()
            raise
        backend = ExecutorManager(self.conf, self.num_executors, ts, cluster,
                                  spec=executor_spec(self.conf), dag=self._dag)
        ts.kill_executor = backend.kill_executor
        self._backend = backend
        self._install_files(backend.local_root)
        self._broadcasts = BroadcastManager(
            backend.secret, os.path.join(backend.local_root, "driver-broadcasts"),
            self.conf.rpc_host, self.conf.max_frame_size, ts.send_to_all,
            server_options={"io_timeout": self.conf.network_timeout,
                            "auth_timeout": self.conf.auth_timeout,
                            "max_unauthenticated": self.conf.max_unauthenticated,
                            "ssl": self._tls.server})
        backend.ssl = self._tls.server  # the executor endpoint: TLS first
        try:
            try:
                await cluster.connect()
                self._broadcasts.host = cluster.advertise_host()
                await self._broadcasts.start()
                await backend.start()
            except socket.gaierror as exc:
                raise ConfigError(f"asyncspark.rpc.host: cannot listen on "
                                  f"{self.conf.rpc_host!r}: {exc}") from exc
            self._state = "running"
            await self._obs.after_start()
        except BaseException:
            self._state = "stopped"
            await self._obs.stop()
            await self._broadcasts.stop()
            await backend.stop()
            await self._dag.stop("the context failed to start")
            await self.listener_bus.stop()
            await self._obs.after_bus_stopped()
            self._release_now(on_loop=True)
            lifetime.unregister(self)
            raise
        if self.conf.cleaner_reference_tracking:
            self.cleaner = ContextCleaner(
                self._loop, shuffle_cleanup(self._dag, self._stages, ts),
                self._broadcasts.cleanup, self.unpersist_rdd, self.conf.cleaner_blocking)
            self.cleaner.start()
        return self

    def _post_event(self, event: Any) -> None:
        self._dag.post(event)  # type: ignore[union-attr]

    def _post_events(self, events: list[Any]) -> None:
        self._dag.post_many(events)  # type: ignore[union-attr]

    # -- cached RDDs ---------------------------------------------------------------------

    def unpersist_rdd(self, rdd_id: int) -> asyncio.Task[None] | None:
        """Forget and remove the cached blocks of ``rdd_id`` (in the background; the
        task doing it when called on the context's loop).
        Internal: the RDD layer's interface (``planner.LineageContext``).
        Applications call ``rdd.unpersist()``."""
        if self._state != "running" or self._block_master is None:
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:  # e.g. from asyncspark.sync's calling thread
            self._loop.call_soon_threadsafe(self.unpersist_rdd, rdd_id)  # type: ignore[union-attr]
            return None
        self._block_master.remove_rdd(rdd_id)
        self._obs.unpersisted(rdd_id)
        task = self._loop.create_task(self._remove_rdd_blocks(rdd_id))  # type: ignore[union-attr]
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)
        return task  # awaited by a blocking ContextCleaner

    async def _remove_rdd_blocks(self, rdd_id: int) -> None:
        from .storage.disk_store import DiskStore

        futs = self._backend.remove_rdd(rdd_id)  # type: ignore[union-attr]
        offheap = self._block_master.offheap_dir  # type: ignore[union-attr]
        if offheap:
            await asyncio.to_thread(DiskStore(offheap).remove_rdd, rdd_id)
        if futs:
            await asyncio.gather(*futs)

    async def _wait_unpersisted(self) -> None:
        """Wait until every ``unpersist()`` so far has removed its blocks everywhere."""
        while self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)

    async def __aenter__(self) -> Context:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check_running(self) -> None:
        if self._state != "running":
            raise ContextStoppedError(
                f"the context is {self._state}; start it with 'async with Context(...)'")

    # -- properties ----------------------------------------------------------------------

    @property
    def master(self) -> str:
        return self.conf.master

    @property
    def appName(self) -> str:
        return self.conf.app_name

    @property
    def version(self) -> str:
        from . import __version__

        return __version__

    @property
    def defaultParallelism(self) -> int:
        """Default number of partitions: ``spark.default.parallelism`` or the task slots."""
        if self.conf.default_parallelism:
            return self.conf.default_parallelism
        return self.num_executors

    @property
    def defaultMinPartitions(self) -> int:
        return min(self.defaultParallelism, 2)

    def getConf(self) -> SparkConf:
        """A copy of the context's configuration, as a ``SparkConf``.

        >>> sc.getConf().get("spark.master")
        'local[2]'
        """
        return SparkConf(loadDefaults=False, _items=dict(self.conf.raw))

    @property
    def uiWebUrl(self) -> str | None:
        """The web UI's URL (``spark.ui.enabled``), or None."""
        return self._obs.url

    def _loop_lag(self) -> float:
        return self._obs.lag

    # -- the LineageContext interface (planner.py): what RDDs ask of their context -------

    def new_rdd_id(self) -> int:
        """A new RDD's id. Internal: the RDD layer's interface (``planner.LineageContext``)."""
        return next(self._rdd_ids)

    def new_shuffle_id(self) -> int:
        """A new shuffle's id. Internal: the RDD layer's interface (``planner.LineageContext``)."""
        return next(self._shuffle_ids)

    def count_pending_checkpoint(self, delta: int) -> None:
        """An RDD was marked for checkpointing (+1) or its checkpoint written (-1).
        Internal: the RDD layer's interface (``planner.LineageContext``)."""
        self._checkpoints_pending += delta

    # -- RDD creation --------------------------------------------------------------------

    def parallelize(self, c: Iterable[T], numSlices: int | None = None) -> RDD[T]:
        """Distribute a local collection into an RDD of ``numSlices`` partitions.

        >>> await sc.parallelize([1, 2, 3, 4], 2).glom().collect()
        [[1, 2], [3, 4]]
        """
        from .rdds.collection import ParallelCollectionRDD

        n = self.defaultParallelism if numSlices is None else numSlices
        return ParallelCollectionRDD(self, c, n)

    def range(self, start: int, end: int | None = None, step: int = 1,
              numSlices: int | None = None) -> RDD[int]:
        """The integers ``range(start, end, step)`` (``range(0, start)`` with one
        argument) as an RDD of ``numSlices`` partitions.

        >>> await sc.range(1, 10, 3).collect()
        [1, 4, 7]
        """
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def emptyRDD(self) -> RDD[Any]:
        """An RDD with no partitions and no elements.

        >>> rdd = sc.emptyRDD(); rdd.getNumPartitions()
        0
        >>> await rdd.collect()
        []
        """
        from .rdds.collection import EmptyRDD

        return EmptyRDD(self)

    def union(self, rdds: list[RDD[T]]) -> RDD[T]:
        """The elements of every RDD of ``rdds``, in order (no shuffle).

        >>> await sc.union([sc.parallelize([1, 2]), sc.parallelize([3])]).collect()
        [1, 2, 3]
        """
        from .rdds.narrow import UnionRDD

        if not rdds:
            raise ValueError("union() needs at least one RDD")
        return UnionRDD(self, list(rdds))

    # -- checkpoints ---------------------------------------------------------------------

    def setCheckpointDir(self, dirName: str) -> None:
        """Where ``rdd.checkpoint()`` writes: a new directory (a UUID) inside ``dirName``
        (a local path or any fsspec URL), which every executor must be able to read and
        write.

        >>> import shutil, tempfile
        >>> root = tempfile.mkdtemp(); sc.setCheckpointDir(root)
        >>> sc.getCheckpointDir().startswith(root)
        True
        >>> shutil.rmtree(root)
        """
        from . import fs

        base = os.path.abspath(fs.to_local(dirName)) if fs.is_local(dirName) else dirName
        path = fs.join(base, str(uuid.uuid4()))
        fs.makedirs(path)
        self._checkpoint_dir = path

    def getCheckpointDir(self) -> str | None:
        """The directory ``setCheckpointDir`` made, or ``None`` if none was set.

        >>> sc.getCheckpointDir() is None
        True
        """
        return self._checkpoint_dir

    # -- shared variables ----------------------------------------------------------------

    def accumulator(self, value: T, accum_param: AccumulatorParam[T] | None = None
                    ) -> Accumulator[T]:
        """An ``Accumulator`` starting at ``value``: tasks add to it, the driver reads
        ``.value``. ``accum_param`` defaults to addition for int, float and complex.

        >>> acc = sc.accumulator(0)
        >>> await sc.parallelize(range(5), 2).foreach(lambda x: acc.add(x))
        >>> acc.value
        10
        """
        return self._accumulators.new(value, accum_param)

    def broadcast(self, value: T) -> Broadcast[T]:
        """A read-only ``Broadcast`` of ``value``, sent to each executor once, on first
        use there. The value is pickled now (on this thread, as PySpark does).

        >>> names = sc.broadcast({1: "one", 2: "two"})
        >>> await sc.parallelize([1, 2]).map(lambda k: names.value[k]).collect()
        ['one', 'two']
        >>> names.unpersist()
        """
        self._check_running()
        b = self._broadcasts.new(value)  # type: ignore[union-attr]
        if self.cleaner is not None:
            self.cleaner.track_broadcast(b)
        return b

    # -- jobs ----------------------------------------------------------------------------

    async def runJob(self, rdd: RDD[T], partitionFunc: Callable[[Iterator[T]], Iterable[U]],
                     partitions: Iterable[int] | None = None,
                     allowLocal: bool = False) -> list[U]:
        """Run ``partitionFunc(iterator) -> iterable`` on the given partitions; the
        concatenated results, as PySpark's ``SparkContext.runJob``.

        >>> await sc.runJob(sc.parallelize(range(6), 3), lambda it: [sum(it)], [0, 2])
        [1, 9]
        """
        planner.check_no_nested_use(rdd, partitionFunc)
        parts = await self.run_job(rdd, lambda it: list(partitionFunc(it)), partitions)
        return list(itertools.chain.from_iterable(parts))

    async def run_job(self, rdd: RDD[Any], func: Callable[[Iterator[Any]], Any],
                      partitions: Iterable[int] | None = None) -> list[Any]:
        """Run ``func(iterator) -> value`` on each partition; the values in order. Then
        write the checkpoints marked in ``rdd``'s lineage (rdds/checkpoint.py).
        Internal: the RDD layer's interface (``planner.LineageContext``).
        Applications use ``runJob`` or the RDD's actions."""
        results = await self._run_one_job(rdd, func, partitions)
        if self._checkpoints_pending:
            await checkpoint_marked(self, rdd)
        return results

    async def run_approximate_job(self, rdd: RDD[Any], func: Callable[[Iterator[Any]], Any],
                                  wait: float) -> tuple[list[Any], int]:
        """Run ``func(iterator) -> value`` on every partition for at most ``wait``
        seconds: ``(values, finished)``, with ``None`` for the partitions not finished by
        then (their tasks are cancelled) and ``finished`` the number that were.

        Internal: the RDD layer's interface (``planner.LineageContext``).
        Applications use ``countApprox`` and the like."""
        return await self._run_one_job(rdd, func, None, wait)

    async def _run_one_job(self, rdd: RDD[Any], func: Callable[[Iterator[Any]], Any],
                           partitions: Iterable[int] | None = None,
                           wait: float | None = None) -> Any:
        tracer = self._tracer
        submitted = now_ns() if tracer is not None else 0
        self._check_running()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise RuntimeError(
                "this Context runs on another event loop; use it from the loop it was "
                "started on (or use asyncspark.sync.SparkContext from threads)")
        if rdd.ctx is not self:
            raise ValueError(f"{rdd!r} belongs to another context")
        if rdd.needs_prepare:
            await planner.prepare(rdd)
        n = rdd.getNumPartitions()
        if partitions is None:
            parts = list(range(n))
        else:
            parts = list(partitions)
            for p in parts:
                if not 0 <= p < n:
                    raise ValueError(f"partition {p} out of range: {rdd!r} has {n} partitions")
        if not parts:
            return [] if wait is None else ([], 0)
        binary = planner.task_binary(rdd, func)
        parent_shuffles, shuffles = self._stages.shuffle_graph(rdd)
        if self.cleaner is not None:
            self.cleaner.track_lineage(rdd)
        if len(binary) > self.conf.max_frame_size - 1024:
            raise SerializationError(
                f"the task binary of {rdd!r} (its lineage and functions, pickled) is "
                f"{len(binary)} bytes, more than a frame can carry "
                f"(asyncspark.rpc.maxFrameSize = {self.conf.max_frame_size}); large data "
                "captured in closures or passed to parallelize() is the usual cause")
        props = _local_properties.get()
        admission = self._admission
        ntasks = 0
        if admission is not None:  # JobRejectedError, or a wait, before anything is sent
            ntasks = len(parts) + map_tasks_to_run(shuffles, self._dag.map_outputs)  # type: ignore[union-attr]
            await admission.acquire(ntasks, admission_wait(props, self.conf.admission_timeout))
        if (self.listener_bus.active or _sched_log.isEnabledFor(logging.INFO)) \
                and "callSite.short" not in props:
            props = {**props, "callSite.short": call_site()}  # the UI's job name
        job_id = next(self._job_ids)
        waiter = JobWaiter(loop.create_future(), len(parts), job_id,
                           partial=wait is not None)
        self._active_jobs[job_id] = props.get(JOB_GROUP_KEY)
        if tracer is not None:
            tracer.job_submitted(job_id, submitted, now_ns())
        self._dag.post(JobSubmitted(  # type: ignore[union-attr]
            job_id, rdd.id(), n, binary, parts, waiter, dict(props), "", shuffles,
            parent_shuffles, cached_rdds=planner.cached_ancestors(rdd),
            rdd_infos=planner.rdd_infos(rdd) if self.listener_bus.active else None))
        delivered = None
        try:
            if wait is not None:
                return await self._await_partial(waiter, wait)
            results = await waiter.future
            if tracer is not None:
                delivered = now_ns()
            return results
        except asyncio.CancelledError:
            if self._dag is not None and self._state == "running":
                self._dag.post(JobCancelled(job_id, "because the awaiting coroutine was cancelled"))
            raise
        finally:
            self._active_jobs.pop(job_id, None)
            if admission is not None:
                admission.release(ntasks)
            if tracer is not None:
                tracer.job_ended(job_id, delivered)

    async def _await_partial(self, waiter: JobWaiter, wait: float) -> tuple[list, int]:
        done, _ = await asyncio.wait([waiter.future], timeout=max(wait, 0.0))
        if done:
            results = waiter.future.result()
            return results, len(results)
        # Spark lets the job run on after an approximate result; here it is cancelled.
        waiter.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._dag.post(JobCancelled(waiter.job_id, "the approximate job timed out"))  # type: ignore[union-attr]
        return list(waiter.results), waiter.finished

    def __repr__(self) -> str:
        return f"<Context master={self.master} app={self.appName!r} {self._state}>"
