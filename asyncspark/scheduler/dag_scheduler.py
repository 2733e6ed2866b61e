"""The DAGScheduler: one logic coroutine over a queue of events.

``_event_loop`` is the only code that reads or writes scheduler state. Any coroutine or
thread may ``post()`` an event. Handlers are synchronous: ``handle(event)`` mutates state
and returns commands (``SubmitTaskSet``, ``CancelTasks``, ``TaskResult``, ``CompleteJob``,
``FailJob``, ``PostListener``, ``UpdateAccumulators``, ``ScheduleEvent``); ``_execute``
alone turns commands into calls on the task scheduler, job waiters, accumulators, timers
and the listener bus: handlers write no other object's state. Each handled event is kept
in a bounded history (``story(stage_id)``). Tests drive ``handle`` with no processes.

Fault tolerance (Spark's): a task that cannot fetch a shuffle block fails with
``FetchFailed``; the scheduler unregisters that map output and every output of the
executor that held it, marks the stage attempt failed and, ``resubmit_delay`` later (a
``ScheduleEvent`` timer, so a burst of fetch failures makes one resubmission), resubmits
the missing map partitions and then the failed stage as new stage attempts. A stage
whose attempts fail ``max_consecutive_attempts`` times in a row fails its jobs. Late
completions of failed attempts: map outputs still count (unless their executor has been
lost since), result-stage results too (they are correct), fetch failures are ignored.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ContextStoppedError, JobCancelledError, JobFailedError
from ..listener import (
    SparkListenerExecutorAdded,
    SparkListenerExecutorRemoved,
    SparkListenerJobEnd,
    SparkListenerJobStart,
    SparkListenerStageCompleted,
    SparkListenerStageSubmitted,
    SparkListenerTaskEnd,
    SparkListenerTaskStart,
)
from ..shuffle.map_output_tracker import MapOutputTracker
from .event_queue import EventQueue
from .events import (
    AllJobsCancelled,
    BeginEvent,
    CancelTasks,
    CompleteJob,
    CompletionEvent,
    ExecutorAdded,
    ExecutorLost,
    FailJob,
    JobCancelled,
    JobGroupCancelled,
    JobSubmitted,
    JobTagCancelled,
    PostListener,
    ResubmitFailedStages,
    ScheduleEvent,
    StopScheduler,
    SubmitTaskSet,
    TaskResult,
    TaskSetFailed,
    UpdateAccumulators,
)
from .stage import (
    ActiveJob,
    ResultStage,
    ShuffleInfo,
    ShuffleMapStage,
    Stage,
    TaskSet,
    stage_infos,
)
from .trace import Tracer, now_ns

if TYPE_CHECKING:
    from .events import DagCommand, DagEvent

__all__ = ["DAGScheduler", "TaskSchedulerLike"]

log: logging.Logger = logging.getLogger("asyncspark.scheduler")

JOB_GROUP_KEY = "spark.jobGroup.id"
JOB_TAGS_KEY = "spark.job.tags"  # comma-separated (tags cannot contain a comma)


class TaskSchedulerLike(Protocol):
    def submit_tasks(self, taskset: TaskSet) -> None: ...
    def cancel_tasks(self, stage_id: int, reason: str) -> None: ...


class DAGScheduler:
    """Cuts jobs into stages and tracks them to completion (see the module docstring)."""

    def __init__(self, task_scheduler: TaskSchedulerLike,
                 post_listener: Callable[[Any], None] | None = None,
                 listeners_active: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.time,
                 history: int = 2000, map_outputs: MapOutputTracker | None = None,
                 tracer: Tracer | None = None,
                 update_accumulators: Callable[[bytes, int], None] = lambda u, s=-1: None,
                 block_master: Any = None, max_consecutive_attempts: int = 4,
                 resubmit_delay: float = 0.2) -> None:
        self.task_scheduler = task_scheduler
        self.max_consecutive_attempts = max_consecutive_attempts
        self.resubmit_delay = resubmit_delay
        # Stages a fetch failure ended, waiting for the ResubmitFailedStages timer.
        self.failed_stages: set[Stage] = set()
        self.lost_executors: set[str] = set()  # ids are never reused
        self._timers: set[asyncio.TimerHandle] = set()
        # Counters for tests, reports and the chaos suite.
        self.fetch_failures: int = 0
        self.resubmissions: int = 0
        self._update_accumulators = update_accumulators
        self.tracer = tracer
        # Tracing: when each queued event was posted (the queue is FIFO, one consumer).
        self._posted: collections.deque[int] | None = (
            collections.deque() if tracer is not None else None)
        self._post_listener = post_listener or (lambda ev: None)
        self._listeners_active = listeners_active
        self.clock = clock
        self.jobs: dict[int, ActiveJob] = {}
        self.stages: dict[int, Stage] = {}
        self.shuffle_stages: dict[int, ShuffleMapStage] = {}
        self.running: set[Stage] = set()
        self.waiting: set[Stage] = set()
        self.map_outputs: MapOutputTracker = (
            map_outputs if map_outputs is not None else MapOutputTracker())
        # Where cached blocks are (storage.master.BlockManagerMaster): tasks' preferred
        # locations. Read only here; executors' reports update it on the driver's loop.
        self.block_master = block_master
        self._next_stage_id = 0
        self.stopped: bool = False
        # Bounded log of handled events, for "the story of stage 7" when debugging.
        self.history: collections.deque[DagEvent] = collections.deque(maxlen=history)
        self._queue: EventQueue | None = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: dict[type, Callable[[Any], list]] = {
            JobSubmitted: self._handle_job_submitted,
            JobCancelled: self._handle_job_cancelled,
            JobGroupCancelled: self._handle_job_group_cancelled,
            JobTagCancelled: self._handle_job_tag_cancelled,
            AllJobsCancelled: self._handle_all_jobs_cancelled,
            CompletionEvent: self._handle_completion,
            BeginEvent: self._handle_begin,
            TaskSetFailed: self._handle_task_set_failed,
            ExecutorAdded: self._handle_executor_added,
            ExecutorLost: self._handle_executor_lost,
            ResubmitFailedStages: self._handle_resubmit_failed_stages,
            StopScheduler: self._handle_stop,
        }

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue = EventQueue(loop)
        self._task = loop.create_task(
            self._event_loop(), name="asyncspark-dag-scheduler")

    def post(self, event: Any) -> None:
        """Queue an event; callable from the loop's thread (use ``call_soon_threadsafe``
        from others)."""
        assert self._queue is not None, "DAGScheduler not started"
        if type(event) is BeginEvent:  # only a listener event (no state): no queue hop
            self._post_listener(self._task_start(event))
            return
        if self._task is None or self._task.done():
            # The loop has ended (context stopped): handle it here, so that e.g. a late
            # JobSubmitted fails with ContextStoppedError instead of waiting forever.
            self._execute(self.handle(event))
            return
        if self._posted is not None:
            self._posted.append(now_ns())
        self._queue.put_nowait(event)

    def post_many(self, events: list[DagEvent]) -> None:
        """Queue several events as one item (a status frame's completions): handled in
        order, one queue hop for all."""
        assert self._queue is not None, "DAGScheduler not started"
        if self._task is None or self._task.done():
            for event in events:
                self._execute(self.handle(event))
            return
        if self._posted is not None:
            self._posted.append(now_ns())
        self._queue.put_nowait(events)

    async def _event_loop(self) -> None:
        assert self._queue is not None
        queue = self._queue
        posted, tracer = self._posted, self.tracer
        while True:
            event = await queue.get()
            if posted is not None and posted:
                tracer.queue_wait(now_ns() - posted.popleft())  # type: ignore[union-attr]
            if type(event) is list:
                for ev in event:
                    self._handle_safely(ev)
                continue
            self._handle_safely(event)
            if type(event) is StopScheduler:
                return

    def _handle_safely(self, event: Any) -> None:
        try:
            self._execute(self.handle(event))
        except Exception:  # a bug here must not kill the scheduler silently
            log.exception("DAGScheduler failed handling %s", type(event).__name__)

    async def stop(self, reason: str = "context stopped") -> None:
        if self._task is None:
            return
        self.post(StopScheduler(reason))
        await self._task
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _schedule(self, delay: float, event: Any) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            if not self.stopped:
                self.post(event)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def _execute(self, commands: list) -> None:
        ts = self.task_scheduler
        for cmd in commands:
            t = type(cmd)
            if t is SubmitTaskSet:
                ts.submit_tasks(cmd.taskset)
            elif t is TaskResult:
                cmd.waiter.task_succeeded(cmd.index, cmd.result)
            elif t is CompleteJob:
                cmd.waiter.succeed(cmd.results)
            elif t is FailJob:
                cmd.waiter.fail(cmd.error)
            elif t is CancelTasks:
                ts.cancel_tasks(cmd.stage_id, cmd.reason)
            elif t is PostListener:
                self._post_listener(cmd.event)
            elif t is UpdateAccumulators:
                self._update_accumulators(cmd.updates, cmd.stage_id)
            elif t is ScheduleEvent:
                self._schedule(cmd.delay, cmd.event)
            else:
                raise TypeError(f"unknown command {cmd!r}")

    def handle(self, event: Any) -> list[DagCommand]:
        """Apply one event to the state; return the commands it causes."""
        self.history.append(event)
        return self._handlers[type(event)](event)

    def story(self, stage_id: int) -> list[DagEvent]:
        """The handled events (still in the bounded history) that concern ``stage_id``."""
        return [e for e in self.history if getattr(e, "stage_id", None) == stage_id]

    # -- stages ------------------------------------------------------------------------

    def _new_stage_id(self) -> int:
        sid = self._next_stage_id
        self._next_stage_id += 1
        return sid

    def _map_stage(self, shuffle_id: int, shuffles: dict[int, ShuffleInfo]) -> ShuffleMapStage:
        """The stage producing ``shuffle_id``, created once and reused across jobs."""
        stage = self.shuffle_stages.get(shuffle_id)
        if stage is not None:
            return stage
        info = shuffles[shuffle_id]
        parents = [self._map_stage(p, shuffles) for p in info.parents]
        stage = ShuffleMapStage(self._new_stage_id(), info, parents)
        self.shuffle_stages[shuffle_id] = stage
        self.stages[stage.stage_id] = stage
        self.map_outputs.register_shuffle(shuffle_id, info.num_maps, info.num_reduces)
        return stage

    def forget_shuffle(self, shuffle_id: int) -> bool:
        """Drop the map stage of a shuffle no longer referenced in the driver (the
        ContextCleaner calls it between events, on the loop). False, changing nothing,
        while a job or a registered stage still needs it."""
        stage = self.shuffle_stages.get(shuffle_id)
        if stage is None:
            return True
        if (stage.job_ids or stage in self.running or stage in self.waiting
                or stage in self.failed_stages
                or any(stage in st.parents for st in self.stages.values())):
            return False
        del self.shuffle_stages[shuffle_id]
        self.stages.pop(stage.stage_id, None)
        return True

    def _ancestors(self, stage: Stage) -> list[Stage]:
        out: list[Stage] = []
        seen: set[int] = set()
        stack = [stage]
        while stack:
            st = stack.pop()
            if st.stage_id in seen:
                continue
            seen.add(st.stage_id)
            out.append(st)
            stack.extend(st.parents)
        return out

    def _submit_stage(self, stage: Stage, job: ActiveJob) -> list[DagCommand]:
        """Run ``stage`` once its parents' outputs exist: submit missing parents first."""
        if stage in self.running or stage in self.waiting:
            return []
        missing = [p for p in stage.parents if not self.map_outputs.is_available(p.shuffle_id)]
        if not missing:
            return self._submit_missing_tasks(stage, job)
        cmds: list = []
        for parent in missing:
            cmds.extend(self._submit_stage(parent, job))
        self.waiting.add(stage)
        return cmds

    def _submit_missing_tasks(self, stage: Stage, job: ActiveJob) -> list[DagCommand]:
        if isinstance(stage, ShuffleMapStage):
            partitions = self.map_outputs.missing(stage.shuffle_id)
        else:
            partitions = [p for i, p in enumerate(stage.partitions) if not stage.done[i]]
        if not partitions:
            return self._stage_finished(stage)
        stage.attempt += 1
        stage.pending = set(partitions)
        self.running.add(stage)
        taskset = TaskSet(stage.stage_id, stage.attempt, job.job_id, stage.stage_id,
                          stage.binary, partitions, job.properties, stage.shuffle_reads,
                          self._preferred_locations(stage, partitions))
        cmds: list = []
        stage.submitted_at = self.clock()
        log.info("Submitting %d missing tasks from %r (attempt %d)", len(partitions), stage,
                 stage.attempt)
        if self._listeners_active():
            cmds.append(PostListener(SparkListenerStageSubmitted(
                stage.stage_id, stage.attempt, len(partitions), stage.submitted_at)))
        cmds.append(SubmitTaskSet(taskset))
        return cmds

    def _preferred_locations(self, stage: Stage, partitions: list[int]
                             ) -> list[list[tuple[str | None, str]]] | None:
        """Per task, ``(executor_id or None, host)`` pairs holding a cached block it
        reads (Spark's getPreferredLocs for cached RDDs); None when there are none."""
        if self.block_master is None or not stage.cached_rdds:
            return None
        return self.block_master.preferred_locations(stage.cached_rdds, partitions)

    def _stage_finished(self, stage: Stage) -> list[DagCommand]:
        """A map stage's outputs are all registered: run the stages waiting for it."""
        self.running.discard(stage)
        stage.failed_attempts.clear()  # "consecutive" failed attempts
        cmds: list = []
        log.info("%r (%d tasks) finished in %.3f s", stage, stage.num_partitions,
                 self.clock() - stage.submitted_at)
        if self._listeners_active():
            cmds.append(PostListener(SparkListenerStageCompleted(
                stage.stage_id, stage.attempt, stage.num_partitions, self.clock())))
        for waiting in sorted(self.waiting, key=lambda st: st.stage_id):
            # A child runs if its parents are all available, else submits the missing
            # ones again (outputs of another parent may have been lost meanwhile).
            if stage in waiting.parents or all(
                    self.map_outputs.is_available(p.shuffle_id) for p in waiting.parents):
                self.waiting.discard(waiting)
                job = self._first_job(waiting)
                if job is not None:
                    cmds.extend(self._submit_stage(waiting, job))
        return cmds

    def _first_job(self, stage: Stage) -> ActiveJob | None:
        ids = [j for j in stage.job_ids if j in self.jobs]
        return self.jobs[min(ids)] if ids else None

    # -- handlers -----------------------------------------------------------------------

    def _handle_job_submitted(self, ev: JobSubmitted) -> list[DagCommand]:
        if self.stopped:
            return [FailJob(ev.waiter, ContextStoppedError("the context was stopped"))]
        now = self.clock()
        parents = [self._map_stage(sid, ev.shuffles) for sid in ev.parent_shuffles]
        stage = ResultStage(self._new_stage_id(), ev.rdd_id, ev.num_partitions,
                            ev.partitions, ev.job_id, ev.binary, parents)
        stage.cached_rdds = ev.cached_rdds
        job = ActiveJob(ev.job_id, stage, ev.waiter, ev.properties, now,
                        [None] * len(ev.partitions))
        self.jobs[ev.job_id] = job
        if self.tracer is not None:
            self.tracer.stage_created(ev.job_id)
        self.stages[stage.stage_id] = stage
        stages = self._ancestors(stage)
        for st in stages:
            st.job_ids.add(ev.job_id)
        cmds: list = []
        log.info("Got job %d (%s) with %d output partitions (%d stages)", ev.job_id,
                 ev.properties.get("callSite.short", ""), len(ev.partitions), len(stages))
        if self._listeners_active():  # stage ids and infos are made by the bus (stage_infos)
            cmds.append(PostListener(SparkListenerJobStart(
                ev.job_id, now, [], ev.properties, lambda: stage_infos(stages),
                ev.rdd_infos or [])))
        if not ev.partitions:
            return [*cmds, *self._finish_job(job, None)]
        cmds.extend(self._submit_stage(stage, job))
        return cmds

    def _handle_begin(self, ev: BeginEvent) -> list[DagCommand]:
        return [PostListener(self._task_start(ev))] if self._listeners_active() else []

    def _task_start(self, ev: BeginEvent) -> SparkListenerTaskStart:
        return SparkListenerTaskStart(ev.stage_id, ev.stage_attempt, ev.task_id, ev.index,
                                      ev.partition, ev.attempt, ev.executor_id, self.clock())

    def _handle_completion(self, ev: CompletionEvent) -> list[DagCommand]:
        cmds: list = []
        if self._listeners_active():
            reason = "Success" if ev.success else (
                f"{ev.reason.kind}: {ev.reason.message}" if ev.reason else "failed")
            cmds.append(PostListener(SparkListenerTaskEnd(
                ev.stage_id, ev.stage_attempt, ev.task_id, ev.index, ev.partition,
                ev.executor_id, ev.success, reason, ev.duration, self.clock(),
                ev.metrics)))  # Spark's names are made by the bus, off this path
        stage = self.stages.get(ev.stage_id)
        if not ev.success:
            if ev.reason is not None and ev.reason.kind == "fetch_failed":
                cmds.extend(self._on_fetch_failed(ev, stage))
            return cmds  # the TaskSetManager retries; a fatal failure is a TaskSetFailed
        if stage is None:
            return cmds  # its jobs finished or were cancelled
        if isinstance(stage, ShuffleMapStage):
            # A map output is usable whichever attempt produced it; its accumulator
            # updates count each time, a re-run included (as Spark's).
            if ev.accumulator_updates is not None:
                cmds.append(UpdateAccumulators(ev.accumulator_updates, ev.stage_id))
            if ev.executor_id not in self.lost_executors:  # else its files are gone
                self.map_outputs.register(stage.shuffle_id, ev.partition, ev.result)
            if ev.stage_attempt == stage.attempt:
                stage.pending.discard(ev.partition)
            if stage in self.running and not stage.pending:
                if self.map_outputs.is_available(stage.shuffle_id):
                    cmds.extend(self._stage_finished(stage))
                else:  # outputs were lost meanwhile: run the missing ones again
                    self.running.discard(stage)
                    job = self._first_job(stage)
                    if job is not None:
                        cmds.extend(self._submit_stage(stage, job))
            return cmds
        if ev.stage_attempt > stage.attempt:
            return cmds  # no such attempt
        # A result of an earlier attempt (one a fetch failure ended) is as good as any.
        index = stage.index_of.get(ev.partition)
        if index is None or stage.done[index]:
            return cmds  # a duplicate (speculative or resubmitted) result
        stage.done[index] = True
        stage.num_done += 1
        if ev.accumulator_updates is not None:  # once per partition of a result stage
            cmds.append(UpdateAccumulators(ev.accumulator_updates, ev.stage_id))
        job = self.jobs[stage.job_id]
        job.results[index] = ev.result
        if job.waiter.partial:
            cmds.append(TaskResult(job.waiter, index, ev.result))
        if stage.num_done == len(stage.partitions):
            self.running.discard(stage)
            cmds.extend(self._finish_job(job, None))
        return cmds

    def _finish_job(self, job: ActiveJob, error: BaseException | None) -> list[DagCommand]:
        """Remove ``job``; complete or fail its waiter; cancel the tasks of stages that no
        other job needs."""
        final = job.final_stage
        self.jobs.pop(job.job_id, None)
        cmds: list = []
        for st in self._ancestors(final):
            st.job_ids.discard(job.job_id)
            if st.job_ids:
                continue
            if st in self.running and (error is not None or st is not final):
                cmds.append(CancelTasks(st.stage_id, str(error or "job finished")))
            self.running.discard(st)
            self.waiting.discard(st)
            self.failed_stages.discard(st)
            if isinstance(st, ResultStage):
                self.stages.pop(st.stage_id, None)
            # Shuffle map stages stay: their outputs are reused by later jobs.
        cmds.append(CompleteJob(job.waiter, job.results) if error is None
                    else FailJob(job.waiter, error))
        now = self.clock()
        took = now - job.submitted_at
        if error is None:
            if final.partitions:
                log.info("%r (%d tasks) finished in %.3f s", final, len(final.partitions),
                         now - final.submitted_at)
            log.info("Job %d finished: %s, took %.6f s", job.job_id,
                     job.properties.get("callSite.short", ""), took)
        else:
            log.info("Job %d failed, took %.6f s: %s", job.job_id, took, error)
        if self._listeners_active():
            now = self.clock()
            failure = None if error is None else f"{type(error).__name__}: {error}"
            if final.partitions:
                cmds.append(PostListener(SparkListenerStageCompleted(
                    final.stage_id, final.attempt, len(final.partitions), now, failure)))
            cmds.append(PostListener(SparkListenerJobEnd(
                job.job_id, now, "JobSucceeded" if error is None else f"JobFailed: {failure}")))
        return cmds

    def _handle_task_set_failed(self, ev: TaskSetFailed) -> list[DagCommand]:
        stage = self.stages.get(ev.stage_id)
        if stage is None or stage.attempt != ev.stage_attempt:
            return []
        cmds: list = []
        for job_id in sorted(stage.job_ids):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            message = f"Job {job_id} aborted due to stage failure: {ev.message}"
            if ev.remote_traceback:
                tb = ev.remote_traceback.removeprefix("Traceback (most recent call last):\n")
                message += f"\n\nRemote traceback (most recent call last):\n{tb}"
            error = JobFailedError(message, ev.remote_traceback)
            error.__cause__ = ev.exception
            cmds.extend(self._finish_job(job, error))
        return cmds

    # -- fetch failures and stage resubmission ------------------------------------------

    def _on_fetch_failed(self, ev: CompletionEvent, stage: Stage | None) -> list[DagCommand]:
        """A task of ``stage`` could not fetch a map output: unregister it (and the
        outputs of its executor), fail the stage attempt, and schedule a resubmission
        (or fail the stage's jobs after ``max_consecutive_attempts``)."""
        if stage is None or ev.stage_attempt != stage.attempt or not stage.job_ids:
            return []  # a late failure of an attempt already failed (or of a finished job)
        self.fetch_failures += 1
        reason = ev.reason
        exc = reason.exception if reason is not None else None
        shuffle_id = getattr(exc, "shuffle_id", -1)
        map_id = getattr(exc, "map_id", -1)
        executor_id = getattr(exc, "executor_id", None)
        if shuffle_id >= 0 and self.map_outputs.has_shuffle(shuffle_id):
            if map_id >= 0:
                self.map_outputs.unregister(shuffle_id, map_id, executor_id)
            if executor_id is not None:
                # Its block server or files are gone: so are its other outputs (as
                # Spark does without an external shuffle service).
                self.map_outputs.remove_executor(executor_id)
        cmds: list = []
        stage.failed_attempts.add(ev.stage_attempt)
        message = reason.message if reason is not None else "fetch failed"
        if stage in self.running:
            self.running.discard(stage)
            if self._listeners_active():
                cmds.append(PostListener(SparkListenerStageCompleted(
                    stage.stage_id, stage.attempt, len(stage.pending), self.clock(),
                    f"FetchFailed: {message}")))
        if len(stage.failed_attempts) >= self.max_consecutive_attempts:
            return cmds + self._abort_stage(stage, message, exc)
        log.info("%r attempt %d failed to fetch its input (%s); resubmitting in %.3fs",
                 stage, ev.stage_attempt, message, self.resubmit_delay)
        if not self.failed_stages:
            cmds.append(ScheduleEvent(self.resubmit_delay, ResubmitFailedStages()))
        self.failed_stages.add(stage)
        map_stage = self.shuffle_stages.get(shuffle_id)
        if map_stage is not None:
            self.failed_stages.add(map_stage)
        return cmds

    def _abort_stage(self, stage: Stage, message: str, exc: BaseException | None
                     ) -> list[DagCommand]:
        cmds: list = []
        for job_id in sorted(stage.job_ids):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            error = JobFailedError(
                f"Job {job_id} aborted due to stage failure: {stage!r} (attempt "
                f"{stage.attempt}) has failed the maximum allowable number of times: "
                f"{self.max_consecutive_attempts} (spark.stage.maxConsecutiveAttempts). "
                f"Most recent failure reason: FetchFailed: {message}")
            error.__cause__ = exc
            cmds.extend(self._finish_job(job, error))
        return cmds

    def _handle_resubmit_failed_stages(self, ev: ResubmitFailedStages) -> list[DagCommand]:
        failed = sorted(self.failed_stages, key=lambda st: st.stage_id)  # parents first
        self.failed_stages.clear()
        cmds: list = []
        for stage in failed:
            job = self._first_job(stage)
            if job is None:
                continue
            self.resubmissions += 1
            cmds.extend(self._submit_stage(stage, job))
        return cmds

    def _cancel_jobs(self, jobs: list[ActiveJob], reason: str) -> list[DagCommand]:
        cmds: list = []
        for job in jobs:
            cmds.extend(self._finish_job(
                job, JobCancelledError(f"Job {job.job_id} cancelled {reason}")))
        return cmds

    def _handle_job_cancelled(self, ev: JobCancelled) -> list[DagCommand]:
        job = self.jobs.get(ev.job_id)
        if job is None:
            return []
        return self._cancel_jobs([job], ev.reason or "because of a cancelJob request")

    def _handle_job_group_cancelled(self, ev: JobGroupCancelled) -> list[DagCommand]:
        jobs = [j for j in self.jobs.values() if j.properties.get(JOB_GROUP_KEY) == ev.group_id]
        return self._cancel_jobs(jobs, f"part of cancelled job group {ev.group_id}")

    def _handle_job_tag_cancelled(self, ev: JobTagCancelled) -> list[DagCommand]:
        jobs = [j for j in self.jobs.values()
                if ev.tag in j.properties.get(JOB_TAGS_KEY, "").split(",")]
        return self._cancel_jobs(jobs, f"part of cancelled job tag {ev.tag}")

    def _handle_all_jobs_cancelled(self, ev: AllJobsCancelled) -> list[DagCommand]:
        return self._cancel_jobs(list(self.jobs.values()), "as part of cancellation of all jobs")

    def _handle_executor_added(self, ev: ExecutorAdded) -> list[DagCommand]:
        log.info("Registered executor %s on %s", ev.executor_id, ev.host)
        if not self._listeners_active():
            return []
        return [PostListener(SparkListenerExecutorAdded(ev.executor_id, ev.host, self.clock()))]

    def _handle_executor_lost(self, ev: ExecutorLost) -> list[DagCommand]:
        # Its shuffle outputs are gone (its files with it): stages needing them run the
        # missing map tasks again when next submitted. Running tasks were re-queued by
        # the task scheduler.
        self.lost_executors.add(ev.executor_id)
        log.info("Lost executor %s: %s", ev.executor_id, ev.reason)
        self.map_outputs.remove_executor(ev.executor_id)
        if not self._listeners_active():
            return []
        return [PostListener(SparkListenerExecutorRemoved(
            ev.executor_id, ev.reason, self.clock()))]

    def _handle_stop(self, ev: StopScheduler) -> list[DagCommand]:
        self.stopped = True
        cmds: list = []
        for job in list(self.jobs.values()):
            cmds.extend(self._finish_job(
                job, JobCancelledError(f"Job {job.job_id} cancelled because {ev.reason}")))
        return cmds
