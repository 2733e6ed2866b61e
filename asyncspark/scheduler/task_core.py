"""The TaskScheduler's core: a state machine with no I/O, no loop and no real time.

It owns the driver's view of executors (free slots, binaries and map outputs they hold,
tasks they run) and of submitted task sets (a ``TaskSetManager`` each, FIFO across jobs,
or FAIR between pools of jobs: ``pools.py``), and decides which task goes to which free
slot. Each input (a task set submitted or cancelled, a revive, an executor added or
lost, a status frame, a result file read, a timer fired, a launch that could not be
encoded) returns the commands it causes
(``events.py``), posts to the DAGScheduler last (``PostEvents``). Time comes from the
injected ``clock``; timers are commands. The driver (``task_scheduler.py``) alone does
the I/O; unit tests drive this core directly. One ``Launch`` per executor and round:
the stage's binary if the executor lacks it, map outputs, then one ``LaunchTasks``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ResultTooLargeError, TaskResultLostError
from ..serializers import loads
from ..shuffle.map_output_tracker import MapOutputTracker
from ..transport.messages.tasks import (
    FAILED,
    FINISHED,
    INDIRECT,
    KILLED,
    UPDATES_KEY,
    ForgetBinaries,
    LaunchTasks,
    MapOutputs,
    TaskBinary,
    TaskEndReason,
    decode_failure,
    decode_ref,
)
from .commit_coordinator import OutputCommitCoordinator
from .events import (
    ArmTimer,
    BeginEvent,
    CancelTimer,
    CompletionEvent,
    DiscardResult,
    ExecutorAdded,
    ExecutorLost,
    ForgetExecutorBlocks,
    KillExecutor,
    Launch,
    PostEvents,
    ReadResult,
    SendKill,
    TaskCommands,
    TaskSetFailed,
)
from .exclusion import ExclusionConf
from .pools import PoolTree
from .results import ResultSizeTracker
from .speculation import SpeculationConf
from .stage import ExecutorData, RunningTask, TaskSet
from .task_set_manager import TaskSetManager
from .trace import Tracer, now_ns

__all__ = ["LOCALITY", "SPECULATION", "RunningTask", "TaskSchedulerCore"]

log: logging.Logger = logging.getLogger("asyncspark.scheduler")

# Timer keys (a kill deadline's key is its task id).
LOCALITY = "locality"
SPECULATION = "speculation"


class TaskSchedulerCore:
    """See the module docstring. Every public method but ``ask_commit`` returns commands."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_failures: int = 4,
                 kill_grace_period: float = 1.0, pipeline_depth: int = 0,
                 short_task_us: float = 2000.0,
                 listeners_active: Callable[[], bool] = lambda: False,
                 map_outputs: MapOutputTracker | None = None, tracer: Tracer | None = None,
                 locality_wait: float = 0.0, speculation: SpeculationConf | None = None,
                 exclusion: ExclusionConf | None = None, max_result_size: int = 0,
                 pools: PoolTree | None = None) -> None:
        self.clock = clock
        self.tracer = tracer
        self.map_outputs = map_outputs
        self.max_failures = max_failures
        self.kill_grace_period = kill_grace_period
        self.listeners_active = listeners_active
        self.executors: dict[str, ExecutorData] = {}
        self.tsms: dict[int, TaskSetManager] = {}
        self._ordered: list[TaskSetManager] = []  # FIFO order; FAIR mode: `pools` too
        self.pools = pools  # spark.scheduler.mode=FAIR (pools.py); None: FIFO
        self.tasks: dict[int, RunningTask] = {}
        # Short-task pipelining: once a task set's tasks are known to be short, each
        # executor may hold up to `pipeline_depth` of them queued behind the running
        # one (see _short_depth), so the executor never idles for a round trip.
        # stage id -> [finished, total run us]
        self.pipeline_depth = pipeline_depth
        self.short_task_us = short_task_us
        self._run_stats: dict[int, list] = {}
        self._next_task_id = 0
        # Delay scheduling for task sets with preferred locations (spark.locality.wait):
        # a revive when the wait of one of them runs out (None: no timer armed).
        self.locality_wait = locality_wait
        self.locality_at: float | None = None
        # Set when the backend can no longer provide any executor: task sets submitted
        # then fail at once instead of waiting forever.
        self.no_executors_reason: str | None = None
        # Speculative copies of stragglers (spark.speculation), checked on a timer;
        # exclusion of failing executors (spark.excludeOnFailure.enabled); which attempt
        # of an output partition may commit it (saveAsTextFile).
        self.speculation = speculation
        self.exclusion = exclusion
        self.speculation_armed: bool = False
        self.commits: OutputCommitCoordinator = OutputCommitCoordinator()
        # spark.driver.maxResultSize per task set (results.py).
        self.result_sizes: ResultSizeTracker = ResultSizeTracker(max_result_size)
        self._cmds: list = []
        self._events: list = []

    def _take(self) -> TaskCommands:
        """The commands of the input just handled; posts to the DAGScheduler last."""
        cmds, events = self._cmds, self._events
        self._cmds = []
        if events:
            self._events = []
            cmds.append(PostEvents(events))
        return cmds

    # -- task sets -----------------------------------------------------------------------

    def submit_tasks(self, taskset: TaskSet) -> TaskCommands:
        if self.no_executors_reason is not None and not self.executors:
            self._events.append(TaskSetFailed(taskset.stage_id, taskset.stage_attempt,
                                              self.no_executors_reason))
            return self._take()
        tsm = TaskSetManager(taskset, self.max_failures, self.locality_wait, self.clock(),
                             self.speculation, self.exclusion)
        old = self.tsms.get(taskset.stage_id)
        if old is not None:
            # An earlier attempt of the stage (a fetch failure ended it): it launches no
            # more; its running tasks finish and report as that attempt.
            old.zombie = True
            self._ordered.remove(old)
            if self.pools is not None:
                self.pools.remove(old)
        self.tsms[taskset.stage_id] = tsm
        self._ordered.append(tsm)
        if self.pools is not None:
            self.pools.add(tsm)
        if len(self._ordered) > 1:
            self._ordered.sort(key=lambda m: m.taskset.priority)
        if self.speculation is not None and not self.speculation_armed:
            self.speculation_armed = True
            self._cmds.append(ArmTimer(SPECULATION, self.speculation.interval))
        self._revive()
        return self._take()

    def _remove(self, tsm: TaskSetManager) -> None:
        tsm.zombie = True
        self.result_sizes.forget(tsm)
        if self.tsms.get(tsm.taskset.stage_id) is not tsm:
            return  # already removed, or replaced by a later attempt of its stage
        del self.tsms[tsm.taskset.stage_id]
        self._ordered.remove(tsm)
        if self.pools is not None:
            self.pools.remove(tsm)
        self._run_stats.pop(tsm.taskset.stage_id, None)
        self.commits.stage_ended(tsm.taskset.stage_id)
        bid = tsm.taskset.binary_id
        for ex in self.executors.values():
            if bid in ex.binaries:
                ex.binaries.discard(bid)
                ex.forget.append(bid)

    def cancel_tasks(self, stage_id: int, reason: str) -> TaskCommands:
        """Stop launching the stage's tasks and kill its running ones."""
        tsm = self.tsms.get(stage_id)
        if tsm is not None:
            self._remove(tsm)
            self._kill_running(tsm, reason)
        return self._take()

    def _abort(self, tsm: TaskSetManager, message: str, exception: BaseException | None = None,
               remote_traceback: str | None = None, why: str = "stage aborted") -> None:
        """Fail the task set: no more launches, its running tasks killed, and the
        DAGScheduler told (``TaskSetFailed``)."""
        ts = tsm.taskset
        self._remove(tsm)
        self._kill_running(tsm, why)
        self._events.append(TaskSetFailed(ts.stage_id, ts.stage_attempt, message, exception,
                                          remote_traceback))

    def _kill_running(self, tsm: TaskSetManager, reason: str) -> None:
        for task_id in list(tsm.running):
            self._kill_task(task_id, reason)

    def _kill_task(self, task_id: int, reason: str) -> None:
        """Ask the task's executor to interrupt it, and arm its kill deadline: the
        executor is killed if the task has not stopped within the grace period."""
        task = self.tasks.get(task_id)
        if task is None or task.kill_armed:
            return
        ex = self.executors.get(task.executor_id)
        if ex is None:
            return
        task.kill_reason = reason
        task.kill_armed = True
        # The deadline first: if the kill cannot be sent, kill_not_sent cancels it.
        self._cmds.append(ArmTimer(task_id, self.kill_grace_period))
        self._cmds.append(SendKill(ex, task_id, reason[:500]))

    def kill_not_sent(self, task_id: int) -> TaskCommands:
        """The driver could not send a kill (the connection is gone; its close reports
        the executor lost): no deadline for it."""
        task = self.tasks.get(task_id)
        if task is not None and task.kill_armed:
            task.kill_armed = False
            task.kill_reason = ""
            self._cmds.append(CancelTimer(task_id))
        return self._take()

    def abort_all(self, message: str) -> TaskCommands:
        """Fail every task set, and later ones, while no executor can be started."""
        self.no_executors_reason = message
        for tsm in list(self._ordered):
            self._remove(tsm)
            ts = tsm.taskset
            self._events.append(TaskSetFailed(ts.stage_id, ts.stage_attempt, message))
        return self._take()

    # -- timers --------------------------------------------------------------------------

    def timer_fired(self, key: Any) -> TaskCommands:
        if key == LOCALITY:
            self.locality_at = None
            self._revive()
        elif key == SPECULATION:
            self._check_speculation()
        else:  # a kill deadline
            task = self.tasks.get(key)
            if task is not None and task.kill_armed:
                self._cmds.append(KillExecutor(
                    task.executor_id, f"task {key} did not stop within "
                                      f"{self.kill_grace_period}s of being killed"))
        return self._take()

    def _check_speculation(self) -> None:
        """Every ``spark.speculation.interval`` while task sets run: mark stragglers
        speculatable and offer them to free slots."""
        self.speculation_armed = False
        if not self._ordered:
            return
        now = self.clock()
        marked = False
        for tsm in self._ordered:
            spec = tsm.spec
            if spec is not None and not tsm.zombie and spec.check(
                    tsm.successful, tsm.num_success, now):
                marked = True
        if marked:
            self._revive()
        self.speculation_armed = True
        self._cmds.append(ArmTimer(SPECULATION, self.speculation.interval))  # type: ignore[union-attr]

    def _arm_locality_timer(self, now: float) -> None:
        """Revive when the earliest locality wait of a task set runs out."""
        deadlines = [d for m in self._ordered if (d := m.locality_deadline()) is not None]
        if not deadlines:
            return
        at = min(deadlines)
        if self.locality_at is not None and self.locality_at <= at:
            return
        self.locality_at = at
        self._cmds.append(ArmTimer(LOCALITY, max(0.0, at - now) + 0.001))

    # -- offers --------------------------------------------------------------------------

    def revive(self) -> TaskCommands:
        """Give pending tasks to free slots."""
        self._revive()
        return self._take()

    def _revive(self) -> None:
        ordered = self._ordered
        if not ordered:
            return
        alive = self.executors.keys()
        now = self.clock()
        hosts = {e.host for e in self.executors.values()}
        begin = self.listeners_active()
        floor = -self.pipeline_depth
        pools = self.pools  # FAIR: the order changes with every launch
        short: bool | None = None  # may any task set queue on a busy executor?
        for ex in self.executors.values():
            if ex.free <= floor:
                continue
            msgs: list = []
            launches: list = []
            while True:
                if ex.free > 0:
                    for tsm in (ordered if pools is None else pools.ordered()):
                        index = tsm.next_task(ex.id, alive, ex.host, now, hosts)
                        if index is not None:
                            break
                    else:
                        break
                elif ex.free > floor:
                    if short is None:  # no short stage: no queueing, no need to order
                        short = self._any_short()
                    if not short:
                        break
                    tsm = self._first_pending(ordered if pools is None else pools.ordered())
                    if tsm is None or ex.free <= -self._short_depth(tsm):
                        break
                    index = tsm.next_task(ex.id, alive, ex.host, now, hosts)
                    if index is None:
                        break
                else:
                    break
                ts = tsm.taskset
                task_id = self._next_task_id
                self._next_task_id = task_id + 1
                attempt = tsm.launched(task_id, index, ex.id, now)
                self.tasks[task_id] = RunningTask(task_id, tsm, index, attempt, ex.id, now)
                ex.free -= 1
                ex.running.add(task_id)
                if ts.binary_id not in ex.binaries:
                    ex.binaries.add(ts.binary_id)
                    msgs.append(TaskBinary(ts.binary_id, ts.binary))
                for sid in ts.shuffle_reads:
                    epoch = self.map_outputs.epoch(sid)  # type: ignore[union-attr]
                    if ex.map_epochs.get(sid) != epoch:
                        ex.map_epochs[sid] = epoch
                        msgs.append(MapOutputs(
                            sid, epoch, self.map_outputs.statuses(sid)))  # type: ignore[union-attr]
                partition = ts.partitions[index]
                launches.append([task_id, ts.binary_id, partition, attempt, ts.stage_id])
                if begin:
                    self._events.append(BeginEvent(ts.stage_id, ts.stage_attempt, task_id,
                                                   index, partition, attempt, ex.id))
            if launches:
                if ex.forget:
                    msgs.insert(0, ForgetBinaries(ex.forget))
                    ex.forget = []
                msgs.append(LaunchTasks(launches))
                if self.tracer is not None:
                    self.tracer.launched([launch[0] for launch in launches])
                self._cmds.append(Launch(ex, msgs, launches))

        for tsm in ordered:
            if tsm.preferred is not None:
                self._arm_locality_timer(now)
                break
        if self.exclusion is not None:
            self._abort_unschedulable()

    def launch_failed(self, ex: ExecutorData, task_ids: list[int], exc: Exception) -> TaskCommands:
        """The driver could not encode a ``Launch`` (e.g. a task binary over the frame
        limit): fail those task sets rather than leave their tasks hanging."""
        for task_id in task_ids:
            task = self.tasks.pop(task_id, None)
            if task is None:
                continue
            ex.free += 1
            ex.running.discard(task_id)
            tsm = task.tsm
            tsm.running.pop(task_id, None)
            ex.binaries.discard(tsm.taskset.binary_id)
            if tsm.taskset.stage_id in self.tsms:
                self._abort(tsm, f"cannot launch tasks of stage {tsm.taskset.stage_id}: {exc}")
        return self._take()

    @staticmethod
    def _first_pending(ordered: Iterable[TaskSetManager]) -> TaskSetManager | None:
        for tsm in ordered:
            if tsm.pending and not tsm.zombie:
                return tsm
        return None

    def _any_short(self) -> bool:
        """Whether ``_short_depth`` can be above 0 for any task set (run times known)."""
        us = self.short_task_us
        return any(n >= 4 and total < us * n for n, total in self._run_stats.values())

    def _short_depth(self, tsm: TaskSetManager) -> int:
        """How many of the stage's tasks an executor may hold queued behind its running
        one: none until 4 have finished, none if they are not short; else as many as
        run in ``short_task_us`` on average (so a queue drains in about that time,
        however late the rest of the stage finds a free executor), at most
        ``pipeline_depth``. Tiny tasks need deep queues: a round trip to the driver
        costs more than a hundred of them. None either for a task set that speculates:
        a task queued behind a straggler neither runs nor finishes, so the stage would
        not reach the speculation quantile and the straggler would never get its copy
        (Spark, which speculates, never queues a task on a busy executor)."""
        if tsm.spec is not None:
            return 0
        stats = self._run_stats.get(tsm.taskset.stage_id)
        if stats is None or stats[0] < 4 or stats[1] >= self.short_task_us * stats[0]:
            return 0
        return min(self.pipeline_depth, int(self.short_task_us * stats[0] / max(stats[1], 1)))

    # -- executors -----------------------------------------------------------------------

    def executor_added(self, ex: ExecutorData) -> TaskCommands:
        self.no_executors_reason = None
        self.executors[ex.id] = ex
        self._events.append(ExecutorAdded(ex.id, ex.host))
        self._revive()
        return self._take()

    def executor_lost(self, executor_id: str, reason: str,
                      task_caused: bool = False) -> TaskCommands:
        """Fail the executor's tasks as executor-lost (not counted against
        ``maxFailures``), except, when ``task_caused`` (the process died of a crash
        signal or exited on its own), the one it was running: that counts."""
        self._cmds.append(ForgetExecutorBlocks(executor_id))
        ex = self.executors.pop(executor_id, None)
        if ex is None:
            return self._take()
        culprit = min(ex.running) if task_caused and ex.running else None  # runs first
        now = self.clock()
        for task_id in sorted(ex.running):
            task = self.tasks.pop(task_id, None)
            if task is None:
                continue
            if task.kill_armed:
                self._cmds.append(CancelTimer(task_id))
            tsm = task.tsm
            counts = task_id == culprit
            _, abort = tsm.failed(task_id, executor_id, counts=counts)
            ts = tsm.taskset
            self.commits.task_ended(ts.stage_id, ts.partitions[task.index], task_id, False)
            message = (f"executor {executor_id} lost while running this task: {reason}"
                       if counts else f"executor {executor_id} lost: {reason}")
            self._events.append(CompletionEvent(
                ts.stage_id, ts.stage_attempt, task_id, task.index, ts.partitions[task.index],
                executor_id, False,
                reason=TaskEndReason("executor_lost", message, counts=counts),
                duration=now - task.launched))
            if abort:
                self._abort(
                    tsm,
                    f"Task {task.index} in stage {ts.stage_id}.{ts.stage_attempt} failed "
                    f"{tsm.failures[task.index]} times, most recent failure: Lost task "
                    f"{task.index}.{task.attempt} (TID {task_id}): {message}")
        self._events.append(ExecutorLost(executor_id, reason))
        self._revive()
        return self._take()

    # -- speculation, exclusion, output commits ------------------------------------------

    def _kill_other_attempts(self, tsm: TaskSetManager, index: int, winner: RunningTask) -> None:
        """Task ``index`` succeeded: the first attempt to finish wins, kill the others."""
        spec = tsm.spec
        assert spec is not None
        how = "speculative copy" if winner.task_id in spec.speculative else "original attempt"
        for task_id in spec.other_attempts(index):
            this = "speculative copy" if task_id in spec.speculative else "original attempt"
            self._kill_task(task_id, f"another attempt succeeded: this {this} lost to the "
                                     f"{how} (TID {winner.task_id}) of task {index}")

    def _abort_unschedulable(self) -> None:
        """Fail task sets with a pending task that every live executor is excluded for."""
        alive = self.executors.keys()
        for tsm in list(self._ordered):
            exclusion = tsm.exclusion
            if exclusion is None or tsm.zombie:
                continue
            index = exclusion.unschedulable(tsm.pending, alive)
            if index is None:
                continue
            ts = tsm.taskset
            self._abort(
                tsm,
                f"Aborting TaskSet {ts.stage_id}.{ts.stage_attempt} because task {index} "
                f"(partition {ts.partitions[index]}) cannot run anywhere due to node and "
                f"executor excludeOnFailure: {exclusion.describe(index, alive)}")

    def ask_commit(self, executor_id: str, stage_id: int, partition: int,
                   task_id: int) -> str | None:
        """May attempt ``task_id`` commit its output of ``partition``? None if it may,
        else why not (``commit_coordinator.py``)."""
        task = self.tasks.get(task_id)
        if task is None or task.executor_id != executor_id:
            return f"task {task_id} is not running on executor {executor_id} any more"
        tsm = task.tsm
        ts = tsm.taskset
        if ts.stage_id != stage_id or ts.partitions[task.index] != partition:
            return (f"task {task_id} is partition {ts.partitions[task.index]} of stage "
                    f"{ts.stage_id}, not partition {partition} of stage {stage_id}")
        if tsm.successful[task.index] or self.tsms.get(stage_id) is None:
            return f"partition {partition} of stage {stage_id} is already done"
        if self.commits.can_commit(stage_id, partition, task_id):
            return None
        holder = self.commits.authorized(stage_id, partition)
        return (f"attempt {task.attempt} (TID {task_id}) may not commit partition {partition} "
                f"of stage {stage_id}: TID {holder} is committing it")

    # -- status updates and results ------------------------------------------------------

    def status_update(self, executor_id: str, statuses: list[list[Any]],
                      body: bytes) -> TaskCommands:
        ex = self.executors.get(executor_id)
        view = memoryview(body)
        offset = 0
        now = self.clock()
        tracer = self.tracer
        received = now_ns() if tracer is not None else 0
        for task_id, state, nbytes, run_us, metrics, stamps in statuses:
            payload = view[offset: offset + nbytes]
            offset += nbytes
            task = self.tasks.pop(task_id, None)
            if task is None:  # already accounted for (e.g. its task set was aborted)
                if state == INDIRECT:  # nobody reads its result file: remove it
                    try:
                        self._cmds.append(DiscardResult(decode_ref(bytes(payload))[0]))
                    except TaskResultLostError:
                        pass
                continue
            if tracer is not None:
                tracer.task_ended(task.tsm.taskset.job_id, task_id, stamps, received)
            if ex is not None:
                ex.free += 1
                ex.running.discard(task_id)
            if task.kill_armed:
                self._cmds.append(CancelTimer(task_id))
            if state == FINISHED and self.pipeline_depth:
                stats = self._run_stats.get(task.tsm.taskset.stage_id)
                if stats is None:
                    stats = self._run_stats[task.tsm.taskset.stage_id] = [0, 0]
                stats[0] += 1
                stats[1] += run_us
            if state == INDIRECT:
                self._read_indirect(task, executor_id, bytes(payload), metrics)
                continue
            self._task_ended(task, executor_id, state, payload, now, metrics)
        self._revive()
        return self._take()

    def result_read(self, task: RunningTask, executor_id: str, data: bytes,
                    metrics: dict[str, Any] | None, failure: BaseException | None) -> TaskCommands:
        """The driver read (or failed to read: ``failure``) a ``ReadResult``'s file."""
        self._task_ended(task, executor_id, FINISHED if failure is None else FAILED, data,
                         self.clock(), metrics, counted=True, failure=failure)
        self._revive()
        return self._take()

    def _result_too_large(self, task: RunningTask, executor_id: str, size: int) -> bool:
        """Count ``size`` result bytes against ``spark.driver.maxResultSize``; past it,
        fail the task and abort its task set (the job fails, its tasks are killed)."""
        tsm = task.tsm
        ts = tsm.taskset
        if self.tsms.get(ts.stage_id) is not tsm:
            return False  # a late result of an attempt already ended: not counted
        error = self.result_sizes.add(
            tsm, size, f"job {ts.job_id} (stage {ts.stage_id}.{ts.stage_attempt})")
        if error is None:
            return False
        self._task_ended(task, executor_id, FAILED, b"", self.clock(), None, failure=error)
        return True

    def _read_indirect(self, task: RunningTask, executor_id: str, ref: bytes,
                       metrics: dict[str, Any] | None) -> None:
        """A result sent as a file: count it, then have the driver read it."""
        try:
            path, size = decode_ref(ref)
        except TaskResultLostError as exc:
            self._task_ended(task, executor_id, FAILED, b"", self.clock(), None, failure=exc)
            return
        if self._result_too_large(task, executor_id, size):
            self._cmds.append(DiscardResult(path))
            return
        self._cmds.append(ReadResult(task, executor_id, path, size, metrics))

    def _task_ended(self, task: RunningTask, executor_id: str, state: int, payload,
                    now: float, metrics: dict[str, Any] | None, *, counted: bool = False,
                    failure: BaseException | None = None) -> None:
        """``failure``: an error of the driver's making (the result is too large or
        its file was lost) that fails the task as ``state`` FAILED."""
        tsm = task.tsm
        ts = tsm.taskset
        duration = now - task.launched
        partition = ts.partitions[task.index]
        post = self._events.append
        if state == FINISHED:
            if not counted and self._result_too_large(task, executor_id, len(payload)):
                return
            try:
                result = loads(payload)
            except Exception as exc:
                reason = TaskEndReason(
                    "result_error", f"cannot unpickle the task result on the driver: {exc!r}",
                    exception=exc)
            else:
                index = tsm.succeeded(task.task_id, now)
                if index is not None and tsm.spec is not None:
                    self._kill_other_attempts(tsm, index, task)
                # Accumulator updates travel with the metrics; the DAGScheduler decides
                # whether they count (they never reach listeners as metrics).
                updates = metrics.pop(UPDATES_KEY, None) if metrics else None
                if index is not None:
                    post(CompletionEvent(ts.stage_id, ts.stage_attempt, task.task_id,
                                         index, partition, executor_id, True, result,
                                         duration=duration, metrics=metrics,
                                         accumulator_updates=updates))
                if tsm.finished:
                    self._remove(tsm)
                return
        elif state == KILLED:
            reason = TaskEndReason(
                "killed", f"task killed: {task.kill_reason}" if task.kill_reason
                else "task killed", counts=False)
        elif failure is not None:
            kind = "result_lost" if isinstance(failure, TaskResultLostError) else "result_error"
            reason = TaskEndReason(kind, f"{type(failure).__name__}: {failure}",
                                   exception=failure)
        else:
            reason = decode_failure(bytes(payload))
        self.commits.task_ended(ts.stage_id, partition, task.task_id, False)
        _, abort = tsm.failed(task.task_id, executor_id, reason.counts, reason.message)
        if reason.kind == "fetch_failed":
            # Retrying cannot help until the map output is recomputed: this attempt
            # launches no more tasks and the DAGScheduler resubmits the stage (Spark's).
            tsm.zombie = True
        post(CompletionEvent(ts.stage_id, ts.stage_attempt, task.task_id, task.index,
                             partition, executor_id, False, reason=reason, duration=duration,
                             metrics=metrics))  # a failed attempt's metrics are reported too
        if isinstance(reason.exception, ResultTooLargeError) \
                and self.tsms.get(ts.stage_id) is tsm:
            # A result over spark.driver.maxResultSize: retrying would only do it again.
            self._abort(tsm, reason.message, reason.exception, reason.remote_traceback,
                        why="stage aborted: spark.driver.maxResultSize exceeded")
        elif abort:
            self._abort(
                tsm,
                f"Task {task.index} in stage {ts.stage_id}.{ts.stage_attempt} "
                f"failed {tsm.failures[task.index]} times, most recent failure: Lost task "
                f"{task.index}.{task.attempt} in stage {ts.stage_id}.{ts.stage_attempt} "
                f"(TID {task.task_id}) (executor {executor_id}): {reason.message}",
                reason.exception, reason.remote_traceback)
        elif not tsm.zombie:
            log.debug("task %s failed (%s), will retry", task.task_id, reason.message)
