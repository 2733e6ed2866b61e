"""Scheduler state objects: jobs, stages, task sets, job waiters, executors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .task_set_manager import TaskSetManager

__all__ = ["ActiveJob", "ExecutorData", "JobWaiter", "ResultStage", "RunningTask", "ShuffleInfo",
           "ShuffleMapStage", "Stage", "TaskSet", "stage_infos"]


class JobWaiter:
    """What the caller of a job awaits: ``future`` gets the job's results in partition
    order. The DAGScheduler keeps the results in its own state (``ActiveJob.results``)
    and hands them over with ``CompleteJob``; a waiter created with ``partial=True``
    (approximate actions) is also given each result as it arrives (``TaskResult``)."""

    __slots__ = ("finished", "future", "job_id", "num_tasks", "partial", "results")

    def __init__(self, future: asyncio.Future[Any], num_tasks: int, job_id: int = -1,
                 partial: bool = False) -> None:
        self.future: asyncio.Future[Any] = future
        self.num_tasks: int = num_tasks
        self.job_id: int = job_id
        self.partial: bool = partial
        self.results: list[Any] = [None] * num_tasks if partial else []
        self.finished: int = 0

    def task_succeeded(self, index: int, result: Any) -> None:
        self.results[index] = result
        self.finished += 1

    def succeed(self, results: list[Any]) -> None:
        if not self.future.done():
            self.future.set_result(results)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(slots=True)
class TaskSet:
    """The tasks of one stage attempt, handed to the TaskScheduler."""

    stage_id: int
    stage_attempt: int
    job_id: int
    binary_id: int
    binary: bytes
    partitions: list[int]  # partition computed by task index i
    properties: dict[str, str] = field(default_factory=dict)
    shuffle_reads: list[int] = field(default_factory=list)  # shuffles its tasks read
    # per task index, (executor_id or None, host) holding its cached input; None: none
    preferred: list[list[tuple[str | None, str]]] | None = None
    # FIFO across jobs: earlier jobs first, then earlier stages. Computed once: FAIR
    # compares it for every candidate task set of every launch.
    priority: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.priority = (self.job_id, self.stage_id)


@dataclass(slots=True)
class ShuffleInfo:
    """What the driver-side caller tells the DAGScheduler about one shuffle dependency."""

    shuffle_id: int
    rdd_id: int
    num_maps: int
    num_reduces: int
    binary: bytes  # cloudpickled (map-side rdd, shuffle writer function)
    parents: list[int]  # shuffle ids the map-side rdd reads
    cached_rdds: list[int] = field(default_factory=list)  # as JobSubmitted.cached_rdds


class Stage:
    """A set of tasks computing one RDD's partitions with narrow dependencies only."""

    __slots__ = ("attempt", "binary", "cached_rdds", "failed_attempts", "job_ids",
                 "num_partitions", "parents", "pending", "rdd_id", "stage_id", "submitted_at")

    def __init__(self, stage_id: int, rdd_id: int, num_partitions: int, binary: bytes,
                 parents: list[ShuffleMapStage]) -> None:
        self.stage_id: int = stage_id
        self.rdd_id: int = rdd_id
        self.num_partitions: int = num_partitions
        self.binary: bytes = binary
        self.parents: list[ShuffleMapStage] = parents
        self.attempt: int = -1  # the first submission is attempt 0
        self.submitted_at: float = 0.0  # clock() of the current attempt's submission (logs)
        self.job_ids: set[int] = set()
        self.pending: set[int] = set()  # partitions of the current attempt not yet done
        self.cached_rdds: list[int] = []  # persisted RDDs read partition by partition
        # Attempts ended by a fetch failure since the stage last succeeded
        # (spark.stage.maxConsecutiveAttempts bounds them).
        self.failed_attempts: set[int] = set()

    @property
    def shuffle_reads(self) -> list[int]:
        return [p.shuffle_id for p in self.parents]


class ShuffleMapStage(Stage):
    """Runs the map side of a shuffle; done when every map output is registered."""

    __slots__ = ("num_reduces", "shuffle_id")

    def __init__(self, stage_id: int, info: ShuffleInfo, parents: list[ShuffleMapStage]):
        super().__init__(stage_id, info.rdd_id, info.num_maps, info.binary, parents)
        self.shuffle_id: int = info.shuffle_id
        self.num_reduces: int = info.num_reduces
        self.cached_rdds = info.cached_rdds

    def __repr__(self) -> str:
        return f"ShuffleMapStage({self.stage_id}, shuffle {self.shuffle_id})"


class ResultStage(Stage):
    """The final stage of a job: runs the job's function on the requested partitions."""

    __slots__ = ("done", "index_of", "job_id", "num_done", "partitions")

    def __init__(self, stage_id: int, rdd_id: int, num_partitions: int,
                 partitions: list[int], job_id: int, binary: bytes,
                 parents: list[ShuffleMapStage] | None = None) -> None:
        super().__init__(stage_id, rdd_id, num_partitions, binary, parents or [])
        self.partitions: list[int] = partitions
        self.job_id: int = job_id
        self.index_of: dict[int, int] = {p: i for i, p in enumerate(partitions)}
        self.done: list[bool] = [False] * len(partitions)
        self.num_done: int = 0

    def __repr__(self) -> str:
        return f"ResultStage({self.stage_id}, job {self.job_id})"


@dataclass(slots=True)
class ActiveJob:
    job_id: int
    final_stage: ResultStage
    waiter: JobWaiter
    properties: dict[str, str]
    submitted_at: float
    results: list[Any] = field(default_factory=list)  # by output index, filled as tasks end


class ExecutorData:
    """The driver's view of one registered executor. ``conn`` and ``control`` are the
    driver's to write to; the core only keeps the bookkeeping."""

    __slots__ = ("binaries", "conn", "control", "forget", "free", "host", "id", "map_epochs",
                 "pid", "running", "slots")

    def __init__(self, executor_id: str, host: str, conn: Any, slots: int, pid: int = 0,
                 control: Any = None):
        self.id: str = executor_id
        self.host: str = host
        self.conn: Any = conn  # the task channel: launches (and what they need) go here
        self.control: Any = control if control is not None else conn  # kills go here
        self.slots: int = slots
        self.free: int = slots
        self.pid: int = pid
        self.binaries: set[int] = set()
        self.forget: list[int] = []
        self.running: set[int] = set()
        self.map_epochs: dict[int, int] = {}  # shuffle id -> MapOutputs epoch it has


def stage_infos(stages: list) -> tuple[list[int], list[dict]]:
    """A job's stage ids and, per stage, what its ``SparkListenerJobStart`` tells (id,
    name, RDD, tasks, parents). The listener bus calls it with the job's batch of events:
    it reads only what a stage never changes."""
    return (sorted(st.stage_id for st in stages),
            [{"stageId": st.stage_id, "name": repr(st), "rddId": st.rdd_id,
              "numTasks": len(st.partitions) if isinstance(st, ResultStage)
              else st.num_partitions, "parentIds": [p.stage_id for p in st.parents]}
             for st in stages])


class RunningTask:
    """One launched task attempt, as the TaskScheduler core tracks it."""

    __slots__ = ("attempt", "executor_id", "index", "kill_armed", "kill_reason", "launched",
                 "task_id", "tsm")

    def __init__(self, task_id: int, tsm: TaskSetManager, index: int, attempt: int,
                 executor_id: str, launched: float) -> None:
        self.task_id: int = task_id
        self.tsm: TaskSetManager = tsm
        self.index: int = index
        self.attempt: int = attempt
        self.executor_id: str = executor_id
        self.launched: float = launched
        self.kill_armed: bool = False  # a kill deadline timer runs
        self.kill_reason: str = ""
