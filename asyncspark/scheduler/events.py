"""Scheduler events (inputs of the DAGScheduler's one logic coroutine), the commands its
handlers emit (turned into calls by ``_event_loop`` only), and the commands the
TaskScheduler's core emits (turned into I/O by its driver, ``task_scheduler.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..transport.messages.tasks import TaskEndReason
from .stage import JobWaiter, ShuffleInfo, TaskSet

__all__ = [
    "AllJobsCancelled",
    # TaskScheduler commands
    "ArmTimer",
    "BeginEvent",
    "CancelTasks",
    "CancelTimer",
    "CompleteJob",
    "CompletionEvent",
    "DiscardResult",
    "ExecutorAdded",
    "ExecutorLost",
    "FailJob",
    "ForgetExecutorBlocks",
    "JobCancelled",
    "JobGroupCancelled",
    "JobSubmitted",
    "JobTagCancelled",
    "KillExecutor",
    "Launch",
    "PostEvents",
    "PostListener",
    "ReadResult",
    "ResubmitFailedStages",
    "ScheduleEvent",
    "SendKill",
    "StopScheduler",
    "SubmitTaskSet",
    "TaskResult",
    "TaskSetFailed",
    "UpdateAccumulators",
]


# -- events ------------------------------------------------------------------------------

@dataclass(slots=True)
class JobSubmitted:
    job_id: int
    rdd_id: int
    num_partitions: int
    binary: bytes
    partitions: list[int]
    waiter: JobWaiter
    properties: dict[str, str] = field(default_factory=dict)
    callsite: str = ""
    shuffles: dict[int, ShuffleInfo] = field(default_factory=dict)  # every ancestor shuffle
    parent_shuffles: list[int] = field(default_factory=list)  # read by the result stage
    # persisted RDDs whose partition i the result stage's task for partition i reads
    # (locality: where those blocks are cached)
    cached_rdds: list[int] = field(default_factory=list)
    # When someone listens: the lineage as {id, name, numPartitions, parentIds, shuffle}
    # per RDD (the UI draws each stage's RDDs); None otherwise
    rdd_infos: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class JobCancelled:
    job_id: int
    reason: str = ""


@dataclass(slots=True)
class JobGroupCancelled:
    group_id: str


@dataclass(slots=True)
class JobTagCancelled:
    """Cancel the active jobs carrying ``tag`` in their ``spark.job.tags`` property."""

    tag: str


@dataclass(slots=True)
class AllJobsCancelled:
    pass


@dataclass(slots=True)
class CompletionEvent:
    stage_id: int
    stage_attempt: int
    task_id: int
    index: int  # task index in its task set (= output index of a result stage)
    partition: int
    executor_id: str
    success: bool
    result: Any = None
    reason: TaskEndReason | None = None
    duration: float = 0.0
    metrics: dict[str, Any] | None = None  # e.g. {"shuffle_spill_bytes": n}
    # A successful attempt's pickled [(accumulator id, value), ...] (accumulators.py)
    accumulator_updates: bytes | None = None


@dataclass(slots=True)
class BeginEvent:
    stage_id: int
    stage_attempt: int
    task_id: int
    index: int
    partition: int
    attempt: int
    executor_id: str


@dataclass(slots=True)
class TaskSetFailed:
    stage_id: int
    stage_attempt: int
    message: str
    exception: BaseException | None = None
    remote_traceback: str | None = None


@dataclass(slots=True)
class ExecutorAdded:
    executor_id: str
    host: str


@dataclass(slots=True)
class ExecutorLost:
    executor_id: str
    reason: str


@dataclass(slots=True)
class ResubmitFailedStages:
    """The delay after a fetch failure has passed: resubmit the failed stages (every
    fetch failure of a burst has been handled by then, so they make one resubmission)."""


@dataclass(slots=True)
class StopScheduler:
    reason: str = "context stopped"


# -- commands ----------------------------------------------------------------------------

@dataclass(slots=True)
class SubmitTaskSet:
    taskset: TaskSet


@dataclass(slots=True)
class CancelTasks:
    stage_id: int
    reason: str


@dataclass(slots=True)
class CompleteJob:
    waiter: JobWaiter
    results: list[Any]


@dataclass(slots=True)
class TaskResult:
    """Hand a result task's value to a ``partial`` job waiter as it arrives (Spark's
    ``JobListener.taskSucceeded``)."""

    waiter: JobWaiter
    index: int
    result: Any


@dataclass(slots=True)
class FailJob:
    waiter: JobWaiter
    error: BaseException


@dataclass(slots=True)
class PostListener:
    event: Any


@dataclass(slots=True)
class ScheduleEvent:
    """Post ``event`` to the DAGScheduler after ``delay`` seconds (a timer, not a sleep)."""

    delay: float
    event: Any


@dataclass(slots=True)
class UpdateAccumulators:
    """Merge a successful task's accumulator updates into the driver's accumulators."""

    updates: bytes
    stage_id: int = -1  # the task's stage (the UI shows accumulator values per stage)


# -- TaskScheduler commands: what its core (task_core.py) asks its driver to do ----------

@dataclass(slots=True)
class Launch:
    """Write ``msgs`` (binaries, map outputs, then the ``LaunchTasks`` of ``launches``) to
    the executor's task channel in one go."""

    executor: Any  # stage.ExecutorData
    msgs: list[Any]  # wire messages (transport.messages)
    launches: list[list[int]]  # [task_id, binary_id, partition, attempt, stage_id] each


@dataclass(slots=True)
class SendKill:
    """Send ``KillTask`` on the executor's control channel."""

    executor: Any
    task_id: int
    reason: str


@dataclass(slots=True)
class ArmTimer:
    """Call the core's ``timer_fired(key)`` in ``delay`` seconds, replacing a timer with
    the same key (``"locality"``, ``"speculation"``, or a task id for a kill deadline)."""

    key: Any
    delay: float


@dataclass(slots=True)
class CancelTimer:
    key: Any


@dataclass(slots=True)
class ReadResult:
    """Read a result sent as a file, then report it with the core's ``result_read``."""

    task: Any  # stage.RunningTask
    executor_id: str
    path: str
    size: int
    metrics: dict[str, Any] | None


@dataclass(slots=True)
class DiscardResult:
    """Remove a result file nobody will read."""

    path: str


@dataclass(slots=True)
class KillExecutor:
    executor_id: str
    reason: str


@dataclass(slots=True)
class ForgetExecutorBlocks:
    """The executor is lost: its cached blocks are gone, leases it held pass on."""

    executor_id: str


@dataclass(slots=True)
class PostEvents:
    """Queue ``events`` for the DAGScheduler, in order, as one item."""

    events: list[DagEvent]


# The unions the two cores take and return (in annotations).
DagEvent: TypeAlias = (
    JobSubmitted | JobCancelled | JobGroupCancelled | JobTagCancelled | AllJobsCancelled
    | CompletionEvent | BeginEvent | TaskSetFailed | ExecutorAdded | ExecutorLost
    | ResubmitFailedStages | StopScheduler)
DagCommand: TypeAlias = (
    SubmitTaskSet | CancelTasks | CompleteJob | TaskResult | FailJob | PostListener
    | ScheduleEvent | UpdateAccumulators)
TaskCommand: TypeAlias = (
    Launch | SendKill | ArmTimer | CancelTimer | ReadResult | DiscardResult | KillExecutor
    | ForgetExecutorBlocks | PostEvents)
TaskCommands: TypeAlias = list[TaskCommand]
