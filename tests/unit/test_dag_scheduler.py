"""The DAGScheduler as a state machine: events in, commands out, no processes."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from asyncspark.errors import ContextStoppedError, JobCancelledError, JobFailedError
from asyncspark.listener import (
    ListenerBus,
    SparkListenerExecutorAdded,
    SparkListenerExecutorRemoved,
    SparkListenerJobEnd,
    SparkListenerJobStart,
    SparkListenerStageCompleted,
    SparkListenerStageSubmitted,
    SparkListenerTaskEnd,
    SparkListenerTaskStart,
)
from asyncspark.scheduler.dag_scheduler import JOB_GROUP_KEY, JOB_TAGS_KEY, DAGScheduler
from asyncspark.scheduler.events import (
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
    StopScheduler,
    SubmitTaskSet,
    TaskResult,
    TaskSetFailed,
)
from asyncspark.scheduler.stage import JobWaiter
from asyncspark.transport.messages.tasks import TaskEndReason

NOW = 1234.5


class FakeTaskScheduler:
    def __init__(self) -> None:
        self.submitted: list = []
        self.cancelled: list[tuple[int, str]] = []

    def submit_tasks(self, taskset) -> None:
        self.submitted.append(taskset)

    def cancel_tasks(self, stage_id: int, reason: str) -> None:
        self.cancelled.append((stage_id, reason))


class Harness:
    """A DAGScheduler with a fake task scheduler, a fixed clock and a switchable bus."""

    def __init__(self, loop: asyncio.AbstractEventLoop, history: int = 2000) -> None:
        self.loop = loop
        self.ts = FakeTaskScheduler()
        self.listening = True
        self.posted: list = []
        self.dag = DAGScheduler(self.ts, lambda ev: self.posted.append(prepared(ev)),
                                lambda: self.listening,
                                clock=lambda: NOW, history=history)
        self._job_ids = itertools.count()

    def submit(self, partitions, num_partitions: int = 10, properties=None,
               job_id: int | None = None) -> tuple[JobSubmitted, list]:
        job_id = next(self._job_ids) if job_id is None else job_id
        waiter = JobWaiter(self.loop.create_future(), len(partitions), job_id)
        ev = JobSubmitted(job_id, 100 + job_id, num_partitions, b"binary-%d" % job_id,
                          list(partitions), waiter, dict(properties or {}))
        return ev, self.dag.handle(ev)

    def run(self, event) -> list:
        """handle() then execute the commands, as ``_event_loop`` does."""
        cmds = self.dag.handle(event)
        self.dag._execute(cmds)
        return cmds


def ok(taskset, index: int, result=None, attempt=None, task_id: int = 0) -> CompletionEvent:
    return CompletionEvent(taskset.stage_id,
                           taskset.stage_attempt if attempt is None else attempt,
                           task_id, index, taskset.partitions[index], "exec-1", True, result)


def failed(taskset, index: int, kind: str = "exception") -> CompletionEvent:
    return CompletionEvent(taskset.stage_id, taskset.stage_attempt, 0, index,
                           taskset.partitions[index], "exec-1", False,
                           reason=TaskEndReason(kind, "boom"))


def only(cmds: list, kind: type) -> list:
    return [c for c in cmds if type(c) is kind]


def prepared(event):
    """``event`` as listeners get it: the bus completes some in its batch (the stage
    infos of a JobStart, Spark's metric names of a TaskEnd)."""
    fix = ListenerBus().prepare.get(type(event))
    if fix is not None:
        fix(event)
    return event


def listener_events(cmds: list) -> list:
    return [prepared(c.event) for c in cmds if type(c) is PostListener]


def taskset_of(cmds: list):
    (submit,) = only(cmds, SubmitTaskSet)
    return submit.taskset


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def h(loop) -> Harness:
    return Harness(loop)


# -- submission and completion -----------------------------------------------------------

def test_job_submitted_submits_a_task_set_with_the_requested_partitions(h):
    ev, cmds = h.submit([3, 1, 2], properties={"k": "v"})
    assert [type(c) for c in cmds] == [PostListener, PostListener, SubmitTaskSet]
    ts = taskset_of(cmds)
    assert ts.partitions == [3, 1, 2]
    assert ts.job_id == ev.job_id
    assert ts.binary == ev.binary
    assert ts.stage_attempt == 0
    assert ts.properties == {"k": "v"}
    assert ev.waiter.job_id == ev.job_id
    start, submitted = listener_events(cmds)
    assert start == SparkListenerJobStart(ev.job_id, NOW, [ts.stage_id], {"k": "v"}, [
        {"stageId": ts.stage_id, "name": f"ResultStage({ts.stage_id}, job {ev.job_id})",
         "rddId": ev.rdd_id, "numTasks": 3, "parentIds": []}])
    assert submitted == SparkListenerStageSubmitted(ts.stage_id, 0, 3, NOW)


def test_each_job_gets_its_own_stage(h):
    _, c1 = h.submit([0])
    _, c2 = h.submit([0])
    assert taskset_of(c1).stage_id != taskset_of(c2).stage_id


def test_all_completions_complete_the_job_with_results_in_output_order(h):
    ev, cmds = h.submit([7, 5, 6])
    ts = taskset_of(cmds)
    for index in (2, 0):
        out = h.run(ok(ts, index, result=f"r{index}"))
        assert not only(out, CompleteJob)
        assert not ev.waiter.future.done()
    out = h.run(ok(ts, 1, result="r1"))
    assert only(out, CompleteJob) == [CompleteJob(ev.waiter, ["r0", "r1", "r2"])]
    assert ev.waiter.future.result() == ["r0", "r1", "r2"]
    assert h.dag.jobs == {}
    assert h.dag.stages == {}
    assert h.dag.running == set()
    assert h.dag.waiting == set()
    stage_done = [e for e in listener_events(out) if type(e) is SparkListenerStageCompleted]
    assert stage_done == [SparkListenerStageCompleted(ts.stage_id, 0, 3, NOW, None)]
    assert SparkListenerJobEnd(ev.job_id, NOW, "JobSucceeded") in listener_events(out)


def test_handlers_hand_results_to_the_waiter_only_through_commands(h):
    ev, cmds = h.submit([4, 5])
    ts = taskset_of(cmds)
    out = h.dag.handle(ok(ts, 1, result="b"))  # handled, not executed
    # results stay in the scheduler's own state until the job ends
    assert not only(out, CompleteJob)
    assert not only(out, TaskResult)
    assert h.dag.jobs[ev.job_id].results == [None, "b"]
    out = h.dag.handle(ok(ts, 0, result="a"))
    assert only(out, CompleteJob) == [CompleteJob(ev.waiter, ["a", "b"])]
    assert not ev.waiter.future.done()  # nothing written into the waiter by the handler
    h.dag._execute(out)
    assert ev.waiter.future.result() == ["a", "b"]


def test_a_partial_waiter_is_given_each_result_as_it_arrives(h):
    waiter = JobWaiter(h.loop.create_future(), 2, 7, partial=True)
    ev = JobSubmitted(7, 107, 2, b"binary-7", [0, 1], waiter, {})
    ts = taskset_of(h.dag.handle(ev))
    out = h.dag.handle(ok(ts, 1, result="b"))
    assert only(out, TaskResult) == [TaskResult(waiter, 1, "b")]
    assert waiter.finished == 0  # not yet executed
    h.dag._execute(out)
    assert (waiter.results, waiter.finished) == ([None, "b"], 1)
    h.run(ok(ts, 0, result="a"))
    assert waiter.future.result() == ["a", "b"]


def test_duplicate_completions_are_ignored(h):
    ev, cmds = h.submit([0, 1])
    ts = taskset_of(cmds)
    h.run(ok(ts, 0, result="first"))
    out = h.run(ok(ts, 0, result="second", task_id=9))
    assert not only(out, CompleteJob)
    assert h.dag.jobs[ev.job_id].results == ["first", None]
    h.run(ok(ts, 1, result="b"))
    assert ev.waiter.future.result() == ["first", "b"]


def test_completion_after_the_job_finished_is_ignored(h):
    ev, cmds = h.submit([0])
    ts = taskset_of(cmds)
    h.run(ok(ts, 0, result=1))
    out = h.run(ok(ts, 0, result=2))
    assert not only(out, CompleteJob)
    assert not only(out, FailJob)
    assert ev.waiter.future.result() == [1]


def test_completion_from_a_stale_stage_attempt_is_ignored(h):
    ev, cmds = h.submit([0])
    ts = taskset_of(cmds)
    out = h.run(ok(ts, 0, result="stale", attempt=ts.stage_attempt + 1))
    assert not only(out, CompleteJob)
    assert h.dag.jobs[ev.job_id].results == [None]
    out = h.run(ok(ts, 0, result="fresh"))
    assert only(out, CompleteJob)
    assert ev.waiter.future.result() == ["fresh"]


def test_failed_completion_does_not_complete(h):
    ev, cmds = h.submit([0])
    ts = taskset_of(cmds)
    out = h.run(failed(ts, 0))
    assert not only(out, CompleteJob)
    assert not only(out, FailJob)
    assert not ev.waiter.future.done()
    assert h.dag.jobs[ev.job_id].results == [None]
    (end,) = listener_events(out)
    assert type(end) is SparkListenerTaskEnd
    assert not end.successful
    assert end.reason == "exception: boom"
    h.run(ok(ts, 0, result="retry worked"))
    assert ev.waiter.future.result() == ["retry worked"]


def test_completions_are_routed_to_their_own_job(h):
    ev1, c1 = h.submit([0, 1])
    ev2, c2 = h.submit([0])
    ts1, ts2 = taskset_of(c1), taskset_of(c2)
    h.run(ok(ts2, 0, result="job2"))
    assert ev2.waiter.future.result() == ["job2"]
    assert not ev1.waiter.future.done()
    h.run(ok(ts1, 1, result="b"))
    h.run(ok(ts1, 0, result="a"))
    assert ev1.waiter.future.result() == ["a", "b"]


def test_empty_partition_list_completes_at_once(h):
    ev, cmds = h.submit([])
    assert not only(cmds, SubmitTaskSet)
    assert only(cmds, CompleteJob) == [CompleteJob(ev.waiter, [])]
    h.dag._execute(cmds)
    assert ev.waiter.future.result() == []
    assert h.ts.submitted == []
    assert h.dag.jobs == {}
    kinds = [type(e) for e in listener_events(cmds)]
    assert kinds == [SparkListenerJobStart, SparkListenerJobEnd]


# -- failure ---------------------------------------------------------------------------

def test_task_set_failed_fails_the_job_with_the_remote_traceback(h):
    ev, cmds = h.submit([0, 1])
    ts = taskset_of(cmds)
    h.run(ok(ts, 0, result="partial"))
    cause = ZeroDivisionError("division by zero")
    tb = 'Traceback (most recent call last):\n  File "job.py", line 3\nZeroDivisionError'
    out = h.run(TaskSetFailed(ts.stage_id, ts.stage_attempt,
                              "Task 1 failed 4 times: ZeroDivisionError", cause, tb))
    (fail,) = only(out, FailJob)
    assert only(out, CancelTasks) == [CancelTasks(ts.stage_id, str(fail.error))]
    assert fail.waiter is ev.waiter
    err = fail.error
    assert isinstance(err, JobFailedError)
    assert f"Job {ev.job_id} aborted due to stage failure" in str(err)
    assert "Task 1 failed 4 times" in str(err)
    # one header: the remote traceback's own is dropped
    assert 'Remote traceback (most recent call last):\n  File "job.py", line 3\n' in str(err)
    assert str(err).count("most recent call last") == 1
    assert err.remote_traceback == tb
    assert err.__cause__ is cause
    assert h.ts.cancelled == [(ts.stage_id, str(err))]
    with pytest.raises(JobFailedError) as info:
        ev.waiter.future.result()
    assert info.value is err
    assert h.dag.jobs == {}
    end = [e for e in listener_events(out) if type(e) is SparkListenerJobEnd]
    assert end[0].jobResult.startswith("JobFailed: JobFailedError: Job")


def test_task_set_failed_without_traceback(h):
    _, cmds = h.submit([0])
    ts = taskset_of(cmds)
    out = h.run(TaskSetFailed(ts.stage_id, ts.stage_attempt, "no executors"))
    (fail,) = only(out, FailJob)
    assert "no executors" in str(fail.error)
    assert "Remote traceback" not in str(fail.error)
    assert fail.error.__cause__ is None
    assert fail.error.remote_traceback is None


def test_stale_or_unknown_task_set_failed_is_ignored(h):
    ev, cmds = h.submit([0])
    ts = taskset_of(cmds)
    assert h.dag.handle(TaskSetFailed(ts.stage_id, ts.stage_attempt + 1, "old")) == []
    assert h.dag.handle(TaskSetFailed(999, 0, "unknown")) == []
    assert ev.waiter.future.done() is False
    assert ev.job_id in h.dag.jobs


# -- cancellation ----------------------------------------------------------------------

def assert_cancelled(out: list, jobs: list[tuple[JobSubmitted, object]]) -> None:
    stages = [ts.stage_id for _, ts in jobs]
    assert [c.stage_id for c in only(out, CancelTasks)] == stages
    fails = only(out, FailJob)
    assert [f.waiter for f in fails] == [ev.waiter for ev, _ in jobs]
    for f, (ev, _) in zip(fails, jobs, strict=True):
        assert isinstance(f.error, JobCancelledError)
        assert f"Job {ev.job_id} cancelled" in str(f.error)
        with pytest.raises(JobCancelledError):
            ev.waiter.future.result()


def test_job_cancelled_cancels_exactly_that_job(h):
    jobs = [(ev, taskset_of(c)) for ev, c in (h.submit([0]) for _ in range(3))]
    out = h.run(JobCancelled(jobs[1][0].job_id, "because I said so"))
    assert_cancelled(out, [jobs[1]])
    assert "because I said so" in str(only(out, FailJob)[0].error)
    assert set(h.dag.jobs) == {jobs[0][0].job_id, jobs[2][0].job_id}
    assert not jobs[0][0].waiter.future.done()
    # Cancelling it again, or an unknown job, does nothing.
    assert h.dag.handle(JobCancelled(jobs[1][0].job_id)) == []
    assert h.dag.handle(JobCancelled(12345)) == []


def test_job_cancelled_default_reason(h):
    ev, _ = h.submit([0])
    out = h.dag.handle(JobCancelled(ev.job_id))
    assert "cancelJob" in str(only(out, FailJob)[0].error)


def test_job_group_cancelled_cancels_only_that_group(h):
    group = {JOB_GROUP_KEY: "g"}
    jobs = [(ev, taskset_of(c)) for ev, c in (
        h.submit([0], properties=group),
        h.submit([0], properties={JOB_GROUP_KEY: "other"}),
        h.submit([0, 1], properties=group),
        h.submit([0]),
    )]
    out = h.run(JobGroupCancelled("g"))
    assert_cancelled(out, [jobs[0], jobs[2]])
    assert "job group g" in str(only(out, FailJob)[0].error)
    assert set(h.dag.jobs) == {jobs[1][0].job_id, jobs[3][0].job_id}
    assert h.dag.handle(JobGroupCancelled("g")) == []
    assert h.dag.handle(JobGroupCancelled("nobody")) == []


def test_job_tag_cancelled_cancels_the_jobs_carrying_it(h):
    jobs = [(ev, taskset_of(c)) for ev, c in (
        h.submit([0], properties={JOB_TAGS_KEY: "req-1"}),
        h.submit([0], properties={JOB_TAGS_KEY: "batch,req-2"}),
        h.submit([0], properties={JOB_TAGS_KEY: "req-1,batch"}),
        h.submit([0], properties={JOB_TAGS_KEY: "req-10"}),  # not a prefix match
        h.submit([0]),
    )]
    out = h.run(JobTagCancelled("req-1"))
    assert_cancelled(out, [jobs[0], jobs[2]])
    assert "job tag req-1" in str(only(out, FailJob)[0].error)
    out = h.run(JobTagCancelled("batch"))
    assert_cancelled(out, [jobs[1]])
    assert set(h.dag.jobs) == {jobs[3][0].job_id, jobs[4][0].job_id}
    assert h.dag.handle(JobTagCancelled("nobody")) == []


def test_all_jobs_cancelled(h):
    jobs = [(ev, taskset_of(c)) for ev, c in (h.submit([0]) for _ in range(3))]
    ts0 = jobs[0][1]
    h.run(ok(ts0, 0, result="done"))  # job 0 already finished: not cancelled
    out = h.run(AllJobsCancelled())
    assert_cancelled(out, jobs[1:])
    assert jobs[0][0].waiter.future.result() == ["done"]
    assert h.dag.jobs == {}
    assert h.dag.handle(AllJobsCancelled()) == []


def test_completion_after_cancellation_is_ignored(h):
    ev, cmds = h.submit([0])
    ts = taskset_of(cmds)
    h.run(JobCancelled(ev.job_id))
    out = h.run(ok(ts, 0, result="late"))
    assert not only(out, CompleteJob)
    with pytest.raises(JobCancelledError):
        ev.waiter.future.result()


# -- stop ------------------------------------------------------------------------------

def test_stop_fails_active_jobs_and_later_submissions(h):
    ev1, c1 = h.submit([0])
    ev2, c2 = h.submit([0, 1])
    out = h.run(StopScheduler("the context was stopped"))
    assert_cancelled(out, [(ev1, taskset_of(c1)), (ev2, taskset_of(c2))])
    assert "the context was stopped" in str(only(out, FailJob)[0].error)
    assert h.dag.stopped
    ev3, cmds = h.submit([0])
    assert not only(cmds, SubmitTaskSet)
    (fail,) = only(cmds, FailJob)
    assert fail.waiter is ev3.waiter
    assert isinstance(fail.error, ContextStoppedError)
    assert ev3.job_id not in h.dag.jobs


# -- listeners -------------------------------------------------------------------------

def test_no_listener_events_when_nobody_listens(h):
    h.listening = False
    every: list = []
    ev, cmds = h.submit([0, 1])
    every += cmds
    ts = taskset_of(cmds)
    every += h.run(BeginEvent(ts.stage_id, 0, 0, 0, 0, 0, "exec-1"))
    every += h.run(failed(ts, 0))
    every += h.run(ok(ts, 0))
    every += h.run(ok(ts, 1))
    every += h.run(ExecutorAdded("exec-2", "host"))
    every += h.run(ExecutorLost("exec-2", "gone"))
    _, c = h.submit([0])
    every += c + h.run(JobCancelled(taskset_of(c).job_id))
    every += h.submit([])[1]
    every += h.run(StopScheduler())
    assert not only(every, PostListener)
    assert h.posted == []
    assert ev.waiter.future.done()


def test_listener_events_when_listening(h):
    ev, cmds = h.submit([4])
    ts = taskset_of(cmds)
    h.dag._execute(cmds)
    h.run(BeginEvent(ts.stage_id, 0, 17, 0, 4, 0, "exec-1"))
    h.run(ok(ts, 0, task_id=17))
    h.run(ExecutorAdded("exec-2", "host-2"))
    h.run(ExecutorLost("exec-2", "gone"))
    assert h.posted == [
        SparkListenerJobStart(ev.job_id, NOW, [ts.stage_id], {}, [
            {"stageId": ts.stage_id, "name": f"ResultStage({ts.stage_id}, job {ev.job_id})",
             "rddId": ev.rdd_id, "numTasks": 1, "parentIds": []}]),
        SparkListenerStageSubmitted(ts.stage_id, 0, 1, NOW),
        SparkListenerTaskStart(ts.stage_id, 0, 17, 0, 4, 0, "exec-1", NOW),
        SparkListenerTaskEnd(ts.stage_id, 0, 17, 0, 4, "exec-1", True, "Success", 0.0, NOW),
        SparkListenerStageCompleted(ts.stage_id, 0, 1, NOW, None),
        SparkListenerJobEnd(ev.job_id, NOW, "JobSucceeded"),
        SparkListenerExecutorAdded("exec-2", "host-2", NOW),
        SparkListenerExecutorRemoved("exec-2", "gone", NOW),
    ]


def test_cancelled_job_listener_events_name_the_failure(h):
    ev, cmds = h.submit([0])
    ts = taskset_of(cmds)
    out = h.dag.handle(JobCancelled(ev.job_id, "by request"))
    stage_done, job_end = listener_events(out)
    assert stage_done.stageId == ts.stage_id
    assert stage_done.failureReason.startswith("JobCancelledError: ")
    assert job_end.jobResult.startswith("JobFailed: JobCancelledError: ")


# -- history ---------------------------------------------------------------------------

def test_story_lists_the_events_of_one_stage(h):
    _, c1 = h.submit([0, 1])
    _, c2 = h.submit([0])
    ts1, ts2 = taskset_of(c1), taskset_of(c2)
    events = [BeginEvent(ts1.stage_id, 0, 0, 0, 0, 0, "e"), failed(ts1, 0),
              ok(ts2, 0), ok(ts1, 0), ok(ts1, 1)]
    for e in events:
        h.dag.handle(e)
    assert h.dag.story(ts1.stage_id) == [events[0], events[1], events[3], events[4]]
    assert h.dag.story(ts2.stage_id) == [events[2]]
    assert h.dag.story(999) == []


def test_history_is_bounded(loop):
    h = Harness(loop, history=3)
    _, cmds = h.submit(list(range(5)))
    ts = taskset_of(cmds)
    events = [ok(ts, i) for i in range(5)]
    for e in events:
        h.dag.handle(e)
    assert list(h.dag.history) == events[-3:]
    assert h.dag.story(ts.stage_id) == events[-3:]


# -- the real event loop ---------------------------------------------------------------

class EchoTaskScheduler:
    """Completes every task as soon as its task set is submitted, via ``post``."""

    def __init__(self) -> None:
        self.dag: DAGScheduler | None = None
        self.cancelled: list[int] = []

    def submit_tasks(self, taskset) -> None:
        for i, p in enumerate(taskset.partitions):
            self.dag.post(CompletionEvent(taskset.stage_id, taskset.stage_attempt, i, i, p,
                                          "exec-1", True, p * 10))

    def cancel_tasks(self, stage_id: int, reason: str) -> None:
        self.cancelled.append(stage_id)


async def test_event_loop_resolves_job_waiters():
    ts = EchoTaskScheduler()
    posted: list = []
    dag = DAGScheduler(ts, posted.append, lambda: True)
    ts.dag = dag
    loop = asyncio.get_running_loop()
    dag.start()
    try:
        waiters = []
        for job_id, parts in enumerate([[2, 0, 1], [], [5]]):
            w = JobWaiter(loop.create_future(), len(parts))
            dag.post(JobSubmitted(job_id, 1, 6, b"", parts, w))
            waiters.append(w)
        async with asyncio.timeout(5):
            results = await asyncio.gather(*(w.future for w in waiters))
        assert results == [[20, 0, 10], [], [50]]
        # A bug in a handler is logged; the loop keeps going.
        dag.post(object())
        pending = JobWaiter(loop.create_future(), 1)
        dag.post(JobSubmitted(9, 1, 6, b"", [3], pending))
        async with asyncio.timeout(5):
            assert await pending.future == [30]
    finally:
        stopping = JobWaiter(loop.create_future(), 1)

        class Idle(EchoTaskScheduler):
            def submit_tasks(self, taskset) -> None:
                pass

        dag.task_scheduler = Idle()
        dag.post(JobSubmitted(10, 1, 6, b"", [0], stopping))
        await dag.stop("test over")
    assert dag._task.done()
    with pytest.raises(JobCancelledError, match="test over"):
        stopping.future.result()
    await dag.stop()  # idempotent
    # A job posted after the loop ended fails at once instead of waiting forever.
    late = JobWaiter(loop.create_future(), 1)
    dag.post(JobSubmitted(11, 1, 6, b"", [0], late))
    with pytest.raises(ContextStoppedError):
        late.future.result()
    kinds = {type(e) for e in posted}
    assert {SparkListenerJobStart, SparkListenerJobEnd, SparkListenerTaskEnd} <= kinds
