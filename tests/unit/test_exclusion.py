"""Exclusion of failing executors (spark.excludeOnFailure.*): TaskSetManager bookkeeping
and the TaskScheduler failing an unschedulable task set instead of hanging."""

from __future__ import annotations

from core_driver import CoreDriver
from fake_conn import Conn

from asyncspark.scheduler.events import TaskSetFailed
from asyncspark.scheduler.exclusion import ExclusionConf
from asyncspark.scheduler.stage import ExecutorData, TaskSet
from asyncspark.scheduler.task_set_manager import TaskSetManager
from asyncspark.transport.messages.tasks import FAILED, encode_failure

ALIVE = ("a", "b", "c")


def make(n: int, conf: ExclusionConf | None = ExclusionConf(1, 2)) -> TaskSetManager:
    return TaskSetManager(TaskSet(0, 0, 0, 0, b"", list(range(n))), 4, exclusion=conf)


def test_task_never_runs_again_where_it_failed():
    tsm = make(2)
    assert tsm.next_task("a", ALIVE) == 0
    tsm.launched(0, 0, "a")
    tsm.failed(0, "a", counts=True, message="boom")
    # "a" may run task 1, never task 0 again
    assert tsm.next_task("a", ALIVE) == 1
    tsm.launched(1, 1, "a")
    assert tsm.next_task("a", ALIVE) is None
    assert tsm.next_task("b", ALIVE) == 0


def test_without_exclusion_a_failed_task_returns_when_no_other_executor_is_alive():
    tsm = make(1, conf=None)
    tsm.launched(0, tsm.next_task("a", ("a",)), "a")
    tsm.failed(0, "a", counts=True)
    assert tsm.next_task("a", ("a",)) == 0  # soft avoidance only


def test_executor_failing_two_tasks_of_the_stage_gets_none_of_them():
    tsm = make(4)
    for tid in (0, 1):
        tsm.launched(tid, tsm.next_task("a", ALIVE), "a")
        tsm.failed(tid, "a", counts=True)
    assert tsm.exclusion.executor_excluded("a")
    assert tsm.next_task("a", ALIVE) is None
    assert tsm.next_task("b", ALIVE) == 1  # the failed tasks first, elsewhere


def test_uncounted_failures_do_not_exclude():
    tsm = make(1)
    tsm.launched(0, tsm.next_task("a", ALIVE), "a")
    tsm.failed(0, "a", counts=False)  # e.g. executor lost, killed
    assert tsm.next_task("a", ALIVE) == 0


def test_unschedulable_when_every_live_executor_is_excluded():
    tsm = make(2, ExclusionConf(2, 5))
    ex = tsm.exclusion
    ex.record_failure(0, "a")
    assert ex.unschedulable([0, 1], ("a", "b")) is None  # one failure of two allowed
    ex.record_failure(0, "a")
    ex.record_failure(0, "b", "ValueError: bad")
    assert ex.unschedulable([1, 0], ("a", "b")) is None
    ex.record_failure(0, "b")
    assert ex.unschedulable([1, 0], ("a", "b")) == 0
    assert ex.unschedulable([1, 0], ("a", "b", "c")) is None  # c may still run it
    assert ex.unschedulable([0], ()) is None  # no executor yet: one may come
    assert "ValueError: bad" in ex.describe(0, ("a", "b"))


def _fail(ts: CoreDriver, eid: str, task_id: int) -> None:
    payload = encode_failure(ValueError(f"task {task_id} broke"))
    ts.status_update(eid, [[task_id, FAILED, len(payload), 10, None, None]], payload)


def test_scheduler_fails_the_task_set_when_nothing_can_run_it():
    events: list = []
    ts = CoreDriver(events.append, max_failures=4, exclusion=ExclusionConf(1, 2))
    conns = {e: Conn() for e in ("a", "b")}
    for eid, conn in conns.items():
        ts.executor_added(ExecutorData(eid, "host", conn, 1))
    ts.submit_tasks(TaskSet(3, 0, 0, 3, b"bin", [7]))
    assert conns["a"].launched() == [0]
    _fail(ts, "a", 0)
    assert conns["b"].launched() == [1]  # retried elsewhere
    assert conns["a"].launched() == [0]  # never again on a
    _fail(ts, "b", 1)
    (failed,) = [e for e in events if type(e) is TaskSetFailed]
    assert failed.stage_id == 3
    assert "task 0 (partition 7) cannot run anywhere" in failed.message
    assert "maxTaskAttemptsPerExecutor" in failed.message
    assert "ValueError: task 1 broke" in failed.message
    assert ts.tsms == {}
