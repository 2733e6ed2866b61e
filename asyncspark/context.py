"""``Context``: the entry point — configuration, executors, RDD creation, job submission.

::

    async with asyncspark.Context("local[2]", app_name="demo") as sc:
        print(await sc.parallelize(range(10)).map(lambda x: x * x).sum())
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import re
import shutil
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import planner
from .accumulators import Accumulator, AccumulatorParam, AccumulatorRegistry
from .broadcast import Broadcast, BroadcastManager
from .conf import Config, SparkConf
from .errors import ConfigError, ContextStoppedError, SerializationError
from .listener import ListenerBus
from .rdd import RDD
from .rdds.checkpoint import checkpoint_marked
from .scheduler.dag_scheduler import JOB_GROUP_KEY, DAGScheduler
from .scheduler.events import AllJobsCancelled, JobCancelled, JobGroupCancelled, JobSubmitted
from .scheduler.exclusion import ExclusionConf
from .scheduler.speculation import SpeculationConf
from .scheduler.stage import JobWaiter
from .scheduler.task_scheduler import TaskScheduler
from .scheduler.trace import Tracer, now_ns
from .shuffle.map_output_tracker import MapOutputTracker
from .storage.master import BlockManagerMaster

__all__ = ["Context", "StatusTracker", "master_kind", "parse_master"]

log = logging.getLogger("asyncspark")

_LOCAL_RE = re.compile(r"local(?:\[(\*|\d+)(?:\s*,\s*(\d+))?\])?")

# Per-coroutine job properties (job group, description): a ContextVar maps Spark's
# thread-local properties onto asyncio tasks.
_NO_PROPERTIES: Mapping[str, str] = types.MappingProxyType({})
_local_properties: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "asyncspark_local_properties", default=_NO_PROPERTIES)


def master_kind(master: str) -> tuple[str, str | None]:
    """``("local", None)`` for the ``local`` forms, ``("ray", address)`` for ``ray``
    (address from ``RAY_ADDRESS``, or a local Ray started for you: None) and
    ``ray://HOST:PORT`` (a Ray client address)."""
    m = master.strip()
    if m == "ray":
        return "ray", None
    if m.startswith("ray://"):
        if not m[len("ray://"):]:
            raise ConfigError(f"master {master!r}: ray:// needs HOST:PORT")
        return "ray", m
    return "local", None


def parse_master(master: str) -> int:
    """Number of executors for ``local``, ``local[N]``, ``local[*]`` (``local[N,F]`` too)."""
    m = _LOCAL_RE.fullmatch(master.strip())
    if not m:
        raise ConfigError(
            f"unsupported master URL {master!r}: expected local, local[N], local[*], ray "
            "or ray://HOST:PORT")
    n = m.group(1)
    if n is None:
        return 1
    if n == "*":
        return os.cpu_count() or 1
    if int(n) < 1:
        raise ConfigError(f"master {master!r}: the number of executors must be at least 1")
    return int(n)


class StatusTracker:
    """Which jobs are running (a small part of Spark's ``StatusTracker``)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def getActiveJobsIds(self) -> list[int]:
        return sorted(self._ctx._active_jobs)

    def getJobIdsForGroup(self, jobGroup: str | None = None) -> list[int]:
        return sorted(j for j, g in self._ctx._active_jobs.items() if g == jobGroup)


class Context:
    """A connection to an asyncspark cluster (today: ``local[N]`` executor processes).

    ``master`` and ``app_name`` override ``conf`` (a dict or ``SparkConf``). Start it with
    ``async with`` (or ``await sc.start()`` / ``await sc.stop()``). The context runs on the
    event loop it was started on; use it from coroutines of that loop.
    """

    _asyncspark_driver_only_ = "context"  # serializers.DRIVER_ONLY: refused inside tasks

    def __init__(self, master: str | None = None, app_name: str | None = None,
                 conf: SparkConf | Mapping[str, Any] | None = None, *,
                 appName: str | None = None) -> None:
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
        self._cluster_kind, self._cluster_address = master_kind(self.conf.master)
        if self._cluster_kind == "local":
            self.num_executors = parse_master(self.conf.master)
        else:
            n = self.conf.executor_instances
            self.num_executors = 2 if n is None else n
        self._rdd_ids = itertools.count()
        self._job_ids = itertools.count()
        self._shuffle_ids = itertools.count()
        self._stages = planner.StagePlanner()  # map-stage task binaries, once per shuffle
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backend = None
        self._dag: DAGScheduler | None = None
        self._task_scheduler: TaskScheduler | None = None
        self._tracer: Tracer | None = Tracer() if self.conf.trace_tasks else None
        self.listener_bus = ListenerBus()
        self._active_jobs: dict[int, str | None] = {}
        self._accumulators = AccumulatorRegistry()
        self._broadcasts: BroadcastManager | None = None
        self._checkpoint_dir: str | None = None
        self._checkpoints_pending = 0  # RDDs marked for checkpointing, not yet written
        self._block_master: BlockManagerMaster | None = None
        self._removals: set[asyncio.Task] = set()  # unpersist() clean-ups in flight
        self._state = "new"
        self.startTime = int(time.time() * 1000)
        self.applicationId = f"local-{self.startTime}"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Context:
        if self._state != "new":
            raise ContextStoppedError(f"the context is already {self._state}")
        from .scheduler.backends.manager import ExecutorManager

        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        self.listener_bus.start()
        bus = self.listener_bus
        map_outputs = MapOutputTracker()
        from .storage.disk_store import shm_root

        # The host-level off-heap store (OFF_HEAP): owned here, outlives executors.
        self._block_master = blocks = BlockManagerMaster(
            tempfile.mkdtemp(prefix="asyncspark-offheap-", dir=shm_root()))
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
                           result_timeout=self.conf.network_timeout)
        self._task_scheduler = ts
        self._dag = DAGScheduler(ts, bus.post, lambda: bus.active, map_outputs=map_outputs,
                                 tracer=self._tracer,
                                 update_accumulators=self._accumulators.apply,
                                 block_master=blocks,
                                 max_consecutive_attempts=self.conf.stage_max_attempts,
                                 resubmit_delay=self.conf.resubmit_delay)
        self._dag.start()
        cluster = self._cluster_backend()
        backend = ExecutorManager(self.conf, self.num_executors, ts, cluster,
                                  spec=self._executor_spec())
        ts.kill_executor = backend.kill_executor
        self._backend = backend
        self._broadcasts = BroadcastManager(
            backend.secret, os.path.join(cluster.local_root, "driver-broadcasts"),
            self.conf.rpc_host, self.conf.max_frame_size, ts.send_to_all)
        try:
            await cluster.connect()
            self._broadcasts.host = cluster.advertise_host()
            await self._broadcasts.start()
            await backend.start()
        except BaseException:
            self._state = "stopped"
            await self._broadcasts.stop()
            await backend.stop()
            await self._dag.stop("the context failed to start")
            await self.listener_bus.stop()
            self._remove_offheap_dir()
            raise
        self._state = "running"
        return self

    def _cluster_backend(self):
        """The ``ClusterBackend`` the master URL names."""
        if self._cluster_kind == "ray":
            from .scheduler.backends.ray import RayBackend

            return RayBackend(self.conf, self._cluster_address)
        from .scheduler.backends.local import LocalBackend

        return LocalBackend(self.conf, self.conf.local_dir)

    def _executor_spec(self):
        from .scheduler.backends.cluster import ExecutorSpec

        resource = self.conf.ray_executor_resource
        return ExecutorSpec(cores=self.conf.executor_cores, memory=self.conf.executor_memory,
                            resources={resource: 1.0} if resource else {})

    def _post_event(self, event: Any) -> None:
        self._dag.post(event)  # type: ignore[union-attr]

    def _post_events(self, events: list) -> None:
        self._dag.post_many(events)  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Cancel running jobs, stop the executors and the scheduler. Idempotent."""
        if self._state in ("stopped", "new"):
            self._state = "stopped"
            return
        self._state = "stopped"
        try:
            if self._dag is not None:
                await self._dag.stop("the context was stopped")
            if self._task_scheduler is not None:
                await self._task_scheduler.close()  # result files being read
        finally:
            if self._broadcasts is not None:
                await self._broadcasts.stop()
            if self._removals:
                await asyncio.gather(*self._removals, return_exceptions=True)
            if self._backend is not None:
                await self._backend.stop()
            await asyncio.to_thread(self._remove_offheap_dir)
            await self.listener_bus.stop()

    def _remove_offheap_dir(self) -> None:
        if self._block_master is not None and self._block_master.offheap_dir:
            shutil.rmtree(self._block_master.offheap_dir, ignore_errors=True)

    # -- cached RDDs ---------------------------------------------------------------------

    def unpersist_rdd(self, rdd_id: int) -> None:
        """Forget and remove the cached blocks of ``rdd_id`` (in the background)."""
        if self._state != "running" or self._block_master is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:  # e.g. from asyncspark.sync's calling thread
            self._loop.call_soon_threadsafe(self.unpersist_rdd, rdd_id)  # type: ignore[union-attr]
            return
        self._block_master.remove_rdd(rdd_id)
        task = self._loop.create_task(self._remove_rdd_blocks(rdd_id))  # type: ignore[union-attr]
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

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
        return SparkConf(loadDefaults=False, _items=dict(self.conf.raw))

    def statusTracker(self) -> StatusTracker:
        return StatusTracker(self)

    # -- the LineageContext interface (planner.py): what RDDs ask of their context -------

    def new_rdd_id(self) -> int:
        return next(self._rdd_ids)

    def new_shuffle_id(self) -> int:
        return next(self._shuffle_ids)

    def count_pending_checkpoint(self, delta: int) -> None:
        """An RDD was marked for checkpointing (+1) or its checkpoint written (-1)."""
        self._checkpoints_pending += delta

    # -- RDD creation --------------------------------------------------------------------

    def parallelize(self, c: Iterable, numSlices: int | None = None) -> RDD:
        """Distribute a local collection into an RDD of ``numSlices`` partitions."""
        from .rdds.collection import ParallelCollectionRDD

        n = self.defaultParallelism if numSlices is None else numSlices
        return ParallelCollectionRDD(self, c, n)

    def range(self, start: int, end: int | None = None, step: int = 1,
              numSlices: int | None = None) -> RDD:
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def textFile(self, name: str, minPartitions: int | None = None,
                 use_unicode: bool = True) -> RDD:
        """Lines of local text files: a path, a directory, a glob or a comma-separated list;
        ``.gz`` files are decompressed (one partition each)."""
        from .rdds.textfile import TextFileRDD

        n = minPartitions or self.defaultMinPartitions
        return TextFileRDD(self, name, n, use_unicode)

    def emptyRDD(self) -> RDD:
        from .rdds.collection import EmptyRDD

        return EmptyRDD(self)

    def union(self, rdds: list[RDD]) -> RDD:
        from .rdds.narrow import UnionRDD

        if not rdds:
            raise ValueError("union() needs at least one RDD")
        return UnionRDD(self, list(rdds))

    # -- checkpoints ---------------------------------------------------------------------

    def setCheckpointDir(self, dirName: str) -> None:
        """Where ``rdd.checkpoint()`` writes: a new directory (a UUID) inside ``dirName``,
        which every executor must be able to read and write."""
        path = os.path.join(os.path.abspath(dirName), str(uuid.uuid4()))
        os.makedirs(path, exist_ok=True)
        self._checkpoint_dir = path

    def getCheckpointDir(self) -> str | None:
        return self._checkpoint_dir

    # -- shared variables ----------------------------------------------------------------

    def accumulator(self, value: Any, accum_param: AccumulatorParam | None = None
                    ) -> Accumulator:
        """An ``Accumulator`` starting at ``value``: tasks add to it, the driver reads
        ``.value``. ``accum_param`` defaults to addition for int, float and complex."""
        return self._accumulators.new(value, accum_param)

    def broadcast(self, value: Any) -> Broadcast:
        """A read-only ``Broadcast`` of ``value``, sent to each executor once, on first
        use there. The value is pickled now (on this thread, as PySpark does)."""
        self._check_running()
        return self._broadcasts.new(value)  # type: ignore[union-attr]

    # -- jobs ----------------------------------------------------------------------------

    async def runJob(self, rdd: RDD, partitionFunc: Callable,
                     partitions: Iterable[int] | None = None,
                     allowLocal: bool = False) -> list:
        """Run ``partitionFunc(iterator) -> iterable`` on the given partitions; the
        concatenated results, as PySpark's ``SparkContext.runJob``."""
        planner.check_no_nested_use(rdd, partitionFunc)
        parts = await self.run_job(rdd, lambda it: list(partitionFunc(it)), partitions)
        return list(itertools.chain.from_iterable(parts))

    async def run_job(self, rdd: RDD, func: Callable,
                      partitions: Iterable[int] | None = None) -> list:
        """Run ``func(iterator) -> value`` on each partition; the values in order. Then
        write the checkpoints marked in ``rdd``'s lineage (rdds/checkpoint.py)."""
        results = await self._run_one_job(rdd, func, partitions)
        if self._checkpoints_pending:
            await checkpoint_marked(self, rdd)
        return results

    async def _run_one_job(self, rdd: RDD, func: Callable,
                           partitions: Iterable[int] | None = None) -> list:
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
            return []
        binary = planner.task_binary(rdd, func)
        parent_shuffles, shuffles = self._stages.shuffle_graph(rdd)
        if len(binary) > self.conf.max_frame_size - 1024:
            raise SerializationError(
                f"the task binary of {rdd!r} (its lineage and functions, pickled) is "
                f"{len(binary)} bytes, more than a frame can carry "
                f"(asyncspark.rpc.maxFrameSize = {self.conf.max_frame_size}); large data "
                "captured in closures or passed to parallelize() is the usual cause")
        job_id = next(self._job_ids)
        props = _local_properties.get()
        waiter = JobWaiter(loop.create_future(), len(parts), job_id)
        self._active_jobs[job_id] = props.get(JOB_GROUP_KEY)
        if tracer is not None:
            tracer.job_submitted(job_id, submitted, now_ns())
        self._dag.post(JobSubmitted(  # type: ignore[union-attr]
            job_id, rdd.id, n, binary, parts, waiter, dict(props), "", shuffles,
            parent_shuffles, cached_rdds=planner.cached_ancestors(rdd)))
        delivered = None
        try:
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
            if tracer is not None:
                tracer.job_ended(job_id, delivered)

    # -- job groups and cancellation -----------------------------------------------------

    def setLocalProperty(self, key: str, value: str | None) -> None:
        """Set a property of jobs submitted from the current coroutine (and tasks it
        creates afterwards); ``None`` removes it."""
        props = dict(_local_properties.get())
        if value is None:
            props.pop(key, None)
        else:
            props[key] = str(value)
        _local_properties.set(props)

    def getLocalProperty(self, key: str) -> str | None:
        return _local_properties.get().get(key)

    def setJobGroup(self, groupId: str, description: str | None,
                    interruptOnCancel: bool = False) -> None:
        """Put the jobs this coroutine submits from now on into group ``groupId``."""
        self.setLocalProperty(JOB_GROUP_KEY, groupId)
        self.setLocalProperty("spark.job.description", description)
        self.setLocalProperty("spark.job.interruptOnCancel", str(interruptOnCancel).lower())

    def clearJobGroup(self) -> None:
        for key in (JOB_GROUP_KEY, "spark.job.description", "spark.job.interruptOnCancel"):
            self.setLocalProperty(key, None)

    def setJobDescription(self, value: str) -> None:
        self.setLocalProperty("spark.job.description", value)

    def cancelJob(self, jobId: int, reason: str | None = None) -> None:
        """Cancel a running job: its awaiting caller gets ``JobCancelledError``."""
        self._check_running()
        self._dag.post(JobCancelled(jobId, reason or ""))  # type: ignore[union-attr]

    def cancelJobGroup(self, groupId: str) -> None:
        self._check_running()
        self._dag.post(JobGroupCancelled(groupId))  # type: ignore[union-attr]

    def cancelAllJobs(self) -> None:
        self._check_running()
        self._dag.post(AllJobsCancelled())  # type: ignore[union-attr]

    def addSparkListener(self, listener: Any) -> None:
        """Receive scheduler events (see ``asyncspark.listener.SparkListener``)."""
        self.listener_bus.add(listener)

    def removeSparkListener(self, listener: Any) -> None:
        self.listener_bus.remove(listener)

    def __repr__(self) -> str:
        return f"<Context master={self.master} app={self.appName!r} {self._state}>"
