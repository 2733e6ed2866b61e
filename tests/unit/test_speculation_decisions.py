"""Speculative execution decisions (TaskSetManager level, explicit clock) and the
TaskScheduler's speculation timer, copy launches and loser kills (fake executors)."""

from __future__ import annotations

import pickle

from core_driver import Clock, CoreDriver
from fake_conn import Conn

from asyncspark.scheduler.events import CompletionEvent
from asyncspark.scheduler.exclusion import ExclusionConf
from asyncspark.scheduler.speculation import SpeculationConf
from asyncspark.scheduler.stage import ExecutorData, TaskSet
from asyncspark.scheduler.task_core import SPECULATION
from asyncspark.scheduler.task_set_manager import TaskSetManager
from asyncspark.transport.messages.tasks import FINISHED, KILLED, KillTask

ALIVE = ("a", "b", "c")
CONF = SpeculationConf(multiplier=3.0, quantile=0.5, min_runtime=0.1, interval=0.1)


def make(n: int, conf: SpeculationConf = CONF) -> TaskSetManager:
    return TaskSetManager(TaskSet(0, 0, 0, 0, b"", list(range(n))), 4, speculation=conf)


def start_all(tsm: TaskSetManager, executors: list[str], now: float = 0.0) -> None:
    for tid, ex in enumerate(executors):
        index = tsm.next_task(ex, ALIVE)
        assert index == tid
        tsm.launched(tid, index, ex, now)


def test_no_speculation_before_the_quantile_has_finished():
    tsm = make(4)
    start_all(tsm, ["a", "b", "c", "a"])
    assert tsm.succeeded(0, now=1.0) == 0
    # 1 of 4 done, quantile 0.5 needs 2: even a very long task is not speculated
    assert tsm.spec.check(tsm.successful, tsm.num_success, now=100.0) == []
    assert tsm.next_task("b", ALIVE) is None


def test_straggler_past_multiplier_times_median_gets_one_copy_elsewhere():
    tsm = make(4)
    start_all(tsm, ["a", "b", "c", "a"])
    tsm.succeeded(0, now=1.0)
    tsm.succeeded(1, now=2.0)  # durations 1.0 and 2.0: median 1.5, threshold 4.5
    assert tsm.spec.check(tsm.successful, tsm.num_success, now=4.5) == []
    assert tsm.spec.check(tsm.successful, tsm.num_success, now=4.6) == [2, 3]
    # never on the executor already running an attempt of it
    assert tsm.next_task("c", ALIVE) == 3
    tsm.launched(10, 3, "c", 4.6)
    assert tsm.next_task("a", ALIVE) == 2
    tsm.launched(11, 2, "a", 4.6)
    assert tsm.spec.speculative == {10, 11}
    assert tsm.attempts == [1, 1, 2, 2]
    # one copy only: checking again marks nothing
    assert tsm.spec.check(tsm.successful, tsm.num_success, now=100.0) == []
    assert tsm.next_task("b", ALIVE) is None


def test_min_runtime_bounds_the_threshold():
    tsm = make(2, SpeculationConf(multiplier=3.0, quantile=0.5, min_runtime=5.0))
    start_all(tsm, ["a", "b"])
    tsm.succeeded(0, now=0.01)
    assert tsm.spec.check(tsm.successful, tsm.num_success, now=4.9) == []
    assert tsm.spec.check(tsm.successful, tsm.num_success, now=5.1) == [1]


def test_first_attempt_to_finish_wins_and_the_other_is_a_duplicate():
    tsm = make(2)
    start_all(tsm, ["a", "b"])
    tsm.succeeded(0, now=1.0)
    tsm.spec.check(tsm.successful, tsm.num_success, now=10.0)
    assert tsm.next_task("a", ALIVE) == 1
    tsm.launched(5, 1, "a", 10.0)
    assert tsm.spec.other_attempts(1) == [1, 5]
    assert tsm.succeeded(5, now=11.0) == 1  # the copy wins
    assert tsm.finished
    assert tsm.spec.other_attempts(1) == [1]
    assert tsm.succeeded(1, now=12.0) is None  # the original's late success: ignored
    assert tsm.num_success == 2
    assert tsm.spec.durations == [1.0, 1.0]


def test_failed_copy_does_not_requeue_while_the_original_runs():
    tsm = make(2)
    start_all(tsm, ["a", "b"])
    tsm.succeeded(0, now=1.0)
    tsm.spec.check(tsm.successful, tsm.num_success, now=10.0)
    assert tsm.next_task("a", ALIVE) == 1
    tsm.launched(5, 1, "a", 10.0)
    assert tsm.failed(5, "a", counts=True) == (1, False)
    assert list(tsm.pending) == []  # the original may still succeed
    assert tsm.failed(1, "b", counts=True) == (1, False)
    assert list(tsm.pending) == [1]  # now nothing runs it: retried


def test_speculative_copy_respects_exclusion():
    tsm = TaskSetManager(TaskSet(0, 0, 0, 0, b"", [0, 1, 2]), 4, speculation=CONF,
                         exclusion=ExclusionConf(1, 1))
    start_all(tsm, ["a", "b", "c"])
    tsm.succeeded(0, now=1.0)
    tsm.succeeded(1, now=1.0)
    tsm.failed(99, "a", counts=True)  # unknown task: nothing recorded
    tsm.exclusion.record_failure(2, "a")
    tsm.spec.check(tsm.successful, tsm.num_success, now=10.0)
    assert tsm.next_task("a", ALIVE) is None  # excluded for task 2
    assert tsm.next_task("b", ALIVE) == 2


# -- TaskScheduler: timer, launches, kills -------------------------------------------------


def scheduler(**kw) -> tuple[CoreDriver, list, Clock, dict[str, Conn]]:
    events: list = []
    clock = Clock()
    ts = CoreDriver(events.append, clock=clock, kill_grace_period=30.0, **kw)
    conns = {}
    for eid in ("a", "b"):
        conns[eid] = Conn()
        ts.executor_added(ExecutorData(eid, "host", conns[eid], 1))
    return ts, events, clock, conns


def status(ts: CoreDriver, eid: str, task_id: int, state: int, value=None) -> None:
    payload = pickle.dumps(value) if state == FINISHED else b""
    ts.status_update(eid, [[task_id, state, len(payload), 10, None, None]], payload)


def test_scheduler_speculates_on_its_timer_and_kills_the_loser():
    ts, events, clock, conns = scheduler(speculation=CONF)
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0, 1, 2]))
    assert ts.timers == {SPECULATION: CONF.interval}  # armed while task sets run
    assert [t[0] for t in conns["a"].launches()] == [0]
    assert [t[0] for t in conns["b"].launches()] == [1]
    clock.t = 1.0
    status(ts, "a", 0, FINISHED, "r0")  # task 2 goes to a
    clock.t = 1.5
    status(ts, "a", 2, FINISHED, "r2")  # 2 of 3 done, median 0.75: threshold 2.25
    ts.advance(2.0 - clock.t)  # the timer fires every interval up to 2.0
    assert len(conns["a"].launches()) == 2  # not yet
    ts.advance(0.5)
    copy = conns["a"].launches()[-1]
    assert copy[2] == 1
    assert copy[3] == 1
    copy_id = copy[0]
    assert ts.tsms[0].spec.speculative == {copy_id}
    clock.t = 2.7
    status(ts, "a", copy_id, FINISHED, "r1")  # the copy wins
    kills = [m for m in conns["b"].frames if type(m) is KillTask]
    assert [k.task_id for k in kills] == [1]
    assert "lost to the speculative copy" in kills[0].reason
    status(ts, "b", 1, KILLED)
    done = [e for e in events if type(e) is CompletionEvent]
    assert sorted((e.partition, e.result) for e in done if e.success) == [
        (0, "r0"), (1, "r1"), (2, "r2")]
    (loser,) = [e for e in done if not e.success]
    assert loser.task_id == 1
    assert loser.reason.kind == "killed"
    assert not loser.reason.counts
    assert "another attempt succeeded" in loser.reason.message
    assert ts.tsms == {}
    ts.advance(CONF.interval)
    assert ts.timers == {}  # nothing runs: the timer stops


def test_speculation_off_launches_no_copies():
    ts, _events, clock, conns = scheduler()
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0, 1, 2]))
    assert ts.timers == {}
    assert ts.tsms[0].spec is None
    clock.t = 1.0
    status(ts, "a", 0, FINISHED, "r0")
    status(ts, "a", 2, FINISHED, "r2")
    clock.t = 100.0
    ts.revive()
    assert len(conns["a"].launches()) == 2


def test_a_speculating_task_set_queues_no_short_tasks_behind_a_straggler():
    """Short-task pipelining would queue tasks behind a straggler on its executor, where
    they neither run nor finish: the stage never reaches the quantile and the straggler
    never gets its copy. With speculation on, tasks only go to free slots."""
    conf = SpeculationConf(multiplier=3.0, quantile=0.75, min_runtime=0.1, interval=0.1)
    ts, _events, clock, conns = scheduler(speculation=conf, pipeline_depth=32,
                                          short_task_us=2000.0)
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", list(range(8))))
    (straggler,) = [t[2] for t in conns["b"].launches()]  # its partition: b is stuck on it
    clock.t = 0.01
    while len(conns["a"].launches()) < 7:  # 10 µs tasks on a, well under the threshold
        status(ts, "a", next(iter(ts.executors["a"].running)), FINISHED)
        assert len(ts.executors["a"].running) <= 1  # never one queued behind another
    status(ts, "a", next(iter(ts.executors["a"].running)), FINISHED)
    assert ts.tsms[0].num_success == 7  # past the quantile: the straggler is copied
    ts.advance(1.0)
    (copy,) = [t for t in conns["a"].launches() if t[2] == straggler]
    assert copy[3] == 1


def test_without_speculation_short_tasks_queue_behind_a_running_one():
    ts, _events, _clock, _conns = scheduler(pipeline_depth=32, short_task_us=2000.0)
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", list(range(40))))
    for _ in range(4):
        status(ts, "a", next(iter(ts.executors["a"].running)), FINISHED)
    assert len(ts.executors["a"].running) > 1
