"""The TaskScheduler's core (task_core.py) driven by a synchronous fake driver
(core_driver.py): fake executor connections, a list as the event sink, an injected clock
and timers fired by advancing it; then the real thin driver's command execution."""

from __future__ import annotations

import pickle

import pytest
from core_driver import CoreDriver

from asyncspark.errors import LocalProtocolError, TaskResultLostError, TransportError
from asyncspark.scheduler.events import (
    BeginEvent,
    CompletionEvent,
    ExecutorAdded,
    ExecutorLost,
    TaskSetFailed,
)
from asyncspark.scheduler.stage import ExecutorData, TaskSet
from asyncspark.scheduler.task_scheduler import TaskScheduler
from asyncspark.transport.messages.tasks import (
    FAILED,
    FINISHED,
    INDIRECT,
    KILLED,
    ForgetBinaries,
    KillTask,
    LaunchTasks,
    TaskBinary,
    decode_failure,
    encode_failure,
    encode_ref,
)


class FakeConn:
    """Records what the scheduler writes to one executor, one list per write."""

    def __init__(self) -> None:
        self.writes: list[list] = []
        self.broken = False

    def send(self, msg) -> None:
        if self.broken:
            raise TransportError("closed")
        self.writes.append([msg])

    def send_many(self, msgs) -> None:
        if self.broken:
            raise TransportError("closed")
        self.writes.append(list(msgs))

    @property
    def frames(self) -> list:
        return [m for w in self.writes for m in w]

    def launches(self) -> list[list]:
        """Every task launched here: ``[task_id, binary_id, partition, attempt, stage]``."""
        return [t for m in self.frames if type(m) is LaunchTasks for t in m.tasks]


class Harness:
    def __init__(self, max_failures: int = 4, listeners: bool = False) -> None:
        self.events: list = []
        self.ts = CoreDriver(self.events.append, max_failures=max_failures,
                             kill_grace_period=0.05, listeners_active=lambda: listeners)
        self.killed = self.ts.killed
        self.conns: dict[str, FakeConn] = {}

    def add_executor(self, executor_id: str, slots: int = 1) -> FakeConn:
        conn = FakeConn()
        self.conns[executor_id] = conn
        self.ts.executor_added(ExecutorData(executor_id, "host", conn, slots))
        return conn

    def submit(self, stage_id: int, partitions, job_id: int | None = None) -> TaskSet:
        ts = TaskSet(stage_id, 0, stage_id if job_id is None else job_id, stage_id,
                     b"binary-%d" % stage_id, list(partitions))
        self.ts.submit_tasks(ts)
        return ts

    def finish(self, executor_id: str, task_id: int, value) -> None:
        payload = pickle.dumps(value)
        self.ts.status_update(executor_id, [[task_id, FINISHED, len(payload), 10, None, None]],
                              payload)

    def fail(self, executor_id: str, task_id: int, exc: BaseException) -> None:
        payload = encode_failure(exc)
        self.ts.status_update(executor_id, [[task_id, FAILED, len(payload), 10, None, None]],
                              payload)

    def of(self, kind: type) -> list:
        return [e for e in self.events if type(e) is kind]

    def running_on(self, executor_id: str) -> int:
        (task_id,) = self.ts.executors[executor_id].running
        return task_id


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as an executor would have it."""
    try:
        raise exc
    except BaseException as e:
        return e


# -- launching -------------------------------------------------------------------------

def test_binary_is_sent_once_per_executor_then_ids_only():
    h = Harness()
    a = h.add_executor("a")
    assert h.of(ExecutorAdded) == [ExecutorAdded("a", "host")]
    assert a.writes == []
    ts = h.submit(0, [5, 6, 7])
    assert a.writes == [[TaskBinary(0, b"binary-0"), LaunchTasks([[0, 0, 5, 0, 0]])]]
    h.finish("a", 0, "r5")
    assert a.writes[1] == [LaunchTasks([[1, 0, 6, 0, 0]])]
    b = h.add_executor("b")
    assert b.writes == [[TaskBinary(0, ts.binary), LaunchTasks([[2, 0, 7, 0, 0]])]]
    h.finish("a", 1, "r6")
    h.finish("b", 2, "r7")
    assert sum(type(m) is TaskBinary for m in a.frames) == 1
    assert sum(type(m) is TaskBinary for m in b.frames) == 1
    done = h.of(CompletionEvent)
    assert [(e.index, e.partition, e.result, e.success) for e in done] == [
        (0, 5, "r5", True), (1, 6, "r6", True), (2, 7, "r7", True)]
    assert h.ts.tsms == {}


def test_many_slots_get_one_launch_frame():
    h = Harness()
    a = h.add_executor("a", slots=3)
    h.submit(0, [0, 1, 2, 3])
    assert a.writes == [[TaskBinary(0, b"binary-0"),
                         LaunchTasks([[0, 0, 0, 0, 0], [1, 0, 1, 0, 0], [2, 0, 2, 0, 0]])]]
    assert h.ts.executors["a"].free == 0


def test_one_slot_per_executor():
    h = Harness()
    a = h.add_executor("a")
    b = h.add_executor("b")
    h.submit(0, range(5))
    assert len(a.launches()) == 1
    assert len(b.launches()) == 1
    assert h.ts.executors["a"].free == 0
    h.ts.revive()
    assert len(a.launches()) + len(b.launches()) == 2
    h.finish("b", h.running_on("b"), None)
    assert len(b.launches()) == 2
    assert len(a.launches()) == 1


def test_fifo_across_task_sets_lower_job_first():
    h = Harness()
    h.submit(5, [0, 1], job_id=7)
    h.submit(6, [0, 1], job_id=3)  # an earlier job, submitted later
    a = h.add_executor("a")
    order = []
    for _ in range(4):
        (task_id, _bid, _p, _att, stage) = a.launches()[-1]
        order.append(stage)
        h.finish("a", task_id, None)
    assert order == [6, 6, 5, 5]
    assert [type(m) for m in a.writes[0]] == [TaskBinary, LaunchTasks]
    assert a.writes[0][0].binary_id == 6


def test_begin_events_only_when_listening():
    quiet = Harness()
    quiet.add_executor("a")
    quiet.submit(0, [0])
    assert quiet.of(BeginEvent) == []
    loud = Harness(listeners=True)
    loud.add_executor("a")
    loud.submit(0, [4])
    assert loud.of(BeginEvent) == [BeginEvent(0, 0, 0, 0, 4, 0, "a")]


def test_finished_task_set_binary_is_forgotten():
    h = Harness()
    a = h.add_executor("a")
    h.submit(0, [0])
    h.finish("a", 0, 1)
    assert h.ts.executors["a"].forget == [0]
    h.submit(1, [0])
    assert [type(m) for m in a.writes[-1]] == [ForgetBinaries, TaskBinary, LaunchTasks]
    assert a.writes[-1][0] == ForgetBinaries([0])
    assert h.ts.executors["a"].forget == []


def test_status_update_with_several_payloads():
    h = Harness()
    h.add_executor("a", slots=2)
    h.submit(0, [0, 1])
    p0, p1 = pickle.dumps({"x": 1}), pickle.dumps([2, 3])
    h.ts.status_update("a", [[1, FINISHED, len(p1), 5, None, None],
                             [0, FINISHED, len(p0), 5, None, None]], p1 + p0)
    assert [(e.task_id, e.result) for e in h.of(CompletionEvent)] == [(1, [2, 3]),
                                                                      (0, {"x": 1})]


def test_unknown_and_duplicate_status_updates_are_ignored():
    h = Harness()
    h.add_executor("a")
    h.submit(0, [0, 1])
    h.finish("a", 0, "once")
    h.finish("a", 0, "twice")
    h.finish("a", 99, "never launched")
    assert [e.result for e in h.of(CompletionEvent)] == ["once"]
    assert h.ts.executors["a"].free == 0  # the second task holds the slot


def test_unpicklable_result_is_a_counted_failure():
    h = Harness(max_failures=1)
    h.add_executor("a")
    ts = h.submit(0, [0])
    h.ts.status_update("a", [[0, FINISHED, 3, 1, None, None]], b"bad")
    (done,) = h.of(CompletionEvent)
    assert not done.success
    assert done.reason.kind == "result_error"
    (failed,) = h.of(TaskSetFailed)
    assert failed.stage_id == ts.stage_id
    assert "cannot unpickle the task result" in failed.message


# -- failures --------------------------------------------------------------------------

def test_failed_task_is_retried_then_the_task_set_fails():
    h = Harness(max_failures=3)
    a = h.add_executor("a")
    h.submit(0, [9])
    for attempt in range(3):
        (task_id, _bid, part, att, _stage) = a.launches()[-1]
        assert (part, att) == (9, attempt)
        h.fail("a", task_id, raised(ValueError(f"bad value {attempt}")))
    failures = h.of(CompletionEvent)
    assert [e.success for e in failures] == [False, False, False]
    assert all(e.reason.counts for e in failures)
    assert failures[0].reason.message == "ValueError: bad value 0"
    assert "Traceback" in failures[0].reason.remote_traceback
    (tsf,) = h.of(TaskSetFailed)
    assert tsf.stage_id == 0
    assert "failed 3 times" in tsf.message
    assert "ValueError: bad value 2" in tsf.message
    assert isinstance(tsf.exception, ValueError)
    assert str(tsf.exception) == "bad value 2"
    assert 'raise exc' in tsf.remote_traceback
    assert len(a.launches()) == 3  # no fourth attempt
    assert h.ts.tsms == {}
    assert h.ts.executors["a"].free == 1


def test_one_failing_task_does_not_stop_the_others():
    h = Harness(max_failures=2)
    a = h.add_executor("a")
    b = h.add_executor("b")
    h.submit(0, [0, 1])
    (ta, *_) = a.launches()[-1]
    (tb, *_) = b.launches()[-1]
    h.fail("a", ta, raised(KeyError("k")))
    # The retry avoids "a" while "b" is alive: it waits for b's slot.
    assert len(a.launches()) == 1
    h.finish("b", tb, "ok")
    (retry, _bid, part, att, _stage) = b.launches()[-1]
    assert (part, att) == (0, 1)
    h.finish("b", retry, "ok too")
    assert [e.success for e in h.of(CompletionEvent)] == [False, True, True]
    assert h.of(TaskSetFailed) == []


def test_killed_task_is_requeued_without_counting():
    h = Harness(max_failures=1)
    a = h.add_executor("a")
    h.submit(0, [0])
    h.ts.status_update("a", [[0, KILLED, 0, 1, None, None]], b"")
    (ev,) = h.of(CompletionEvent)
    assert ev.reason.kind == "killed"
    assert not ev.reason.counts
    assert h.of(TaskSetFailed) == []
    assert a.launches()[-1][3] == 1  # relaunched as attempt 1


def test_decode_failure_of_garbage():
    reason = decode_failure(b"\xc1not msgpack")
    assert reason.kind == "exception"
    assert "undecodable failure report" in reason.message
    reason = decode_failure(encode_failure(raised(RuntimeError("x"))))
    assert reason.message == "RuntimeError: x"
    assert isinstance(reason.exception, RuntimeError)


# -- executors -------------------------------------------------------------------------

def test_executor_lost_requeues_running_tasks_without_counting():
    h = Harness(max_failures=1)
    a = h.add_executor("a", slots=2)
    h.submit(0, [0, 1, 2])
    assert [t[2] for t in a.launches()] == [0, 1]
    h.ts.executor_lost("a", "process died")
    lost = h.of(CompletionEvent)
    assert [(e.task_id, e.success, e.reason.kind, e.reason.counts) for e in lost] == [
        (0, False, "executor_lost", False), (1, False, "executor_lost", False)]
    assert "process died" in lost[0].reason.message
    assert h.of(ExecutorLost) == [ExecutorLost("a", "process died")]
    assert h.of(TaskSetFailed) == []
    assert "a" not in h.ts.executors
    # Late statuses from the dead executor are ignored.
    h.finish("a", 0, "zombie result")
    assert len(h.of(CompletionEvent)) == 2
    # A new executor gets the binary again and the requeued tasks first.
    b = h.add_executor("b", slots=3)
    assert type(b.writes[0][0]) is TaskBinary
    assert sorted((t[2], t[3]) for t in b.launches()) == [(0, 1), (1, 1), (2, 0)]


def test_executor_lost_twice_or_unknown_is_ignored():
    h = Harness()
    h.add_executor("a")
    h.ts.executor_lost("a", "x")
    h.ts.executor_lost("a", "x")
    h.ts.executor_lost("nobody", "x")
    assert h.of(ExecutorLost) == [ExecutorLost("a", "x")]


def test_broken_connection_on_launch_is_left_to_the_close_callback():
    h = Harness()
    a = h.add_executor("a")
    a.broken = True
    h.submit(0, [0])
    assert h.ts.executors["a"].running == {0}
    h.ts.executor_lost("a", "connection reset")
    (ev,) = h.of(CompletionEvent)
    assert ev.reason.kind == "executor_lost"
    b = h.add_executor("b")
    assert b.launches() == [[1, 0, 0, 1, 0]]


# -- cancellation ----------------------------------------------------------------------

def test_cancel_tasks_sends_kill_and_stops_launching():
    h = Harness()
    a = h.add_executor("a")
    b = h.add_executor("b")
    h.submit(0, range(4))
    h.ts.cancel_tasks(0, "job cancelled by the user")
    assert a.writes[-1] == [KillTask(0, "job cancelled by the user")]
    assert b.writes[-1] == [KillTask(1, "job cancelled by the user")]
    assert h.ts.tsms == {}
    # The killed tasks report back; nothing else of the stage is launched.
    h.ts.status_update("a", [[0, KILLED, 0, 1, None, None]], b"")
    h.finish("b", 1, "finished anyway")
    assert len(a.launches()) == 1
    assert len(b.launches()) == 1
    assert h.ts.executors["a"].free == 1
    h.ts.advance(0.1)
    assert h.killed == []  # both answered within the grace period
    h.ts.cancel_tasks(0, "again")  # unknown stage now: no-op
    h.ts.cancel_tasks(42, "never existed")


def test_task_that_ignores_kill_gets_its_executor_killed():
    h = Harness()
    a = h.add_executor("a")
    h.submit(0, [0])
    h.ts.cancel_tasks(0, "stop")
    assert a.writes[-1] == [KillTask(0, "stop")]
    h.ts.advance(0.2)
    assert len(h.killed) == 1
    assert h.killed[0][0] == "a"
    assert "task 0 did not stop" in h.killed[0][1]


def test_kill_reason_is_truncated():
    h = Harness()
    a = h.add_executor("a")
    h.submit(0, [0])
    h.ts.cancel_tasks(0, "x" * 2000)
    assert a.writes[-1] == [KillTask(0, "x" * 500)]
    h.ts.executor_lost("a", "gone")  # cancels the kill timer
    h.ts.advance(0.1)
    assert h.killed == []


def test_abort_kills_the_other_running_tasks():
    h = Harness(max_failures=1)
    a = h.add_executor("a")
    b = h.add_executor("b")
    h.submit(0, [0, 1, 2])
    h.fail("a", 0, raised(OSError("disk")))
    assert b.writes[-1] == [KillTask(1, "stage aborted")]
    assert len(h.of(TaskSetFailed)) == 1
    h.ts.status_update("b", [[1, KILLED, 0, 1, None, None]], b"")
    assert len(a.launches()) == 1
    assert len(b.launches()) == 1
    assert len(h.of(TaskSetFailed)) == 1


def test_abort_all_fails_every_task_set():
    h = Harness()
    h.submit(0, [0])
    h.submit(1, [0], job_id=0)
    h.ts.abort_all("no executors can be started")
    assert h.of(TaskSetFailed) == [TaskSetFailed(0, 0, "no executors can be started"),
                                   TaskSetFailed(1, 0, "no executors can be started")]
    h.add_executor("a")
    assert h.conns["a"].writes == []


@pytest.mark.parametrize("state", [FAILED, KILLED])
def test_failure_frees_the_slot(state):
    h = Harness()
    h.add_executor("a")
    h.submit(0, [0])
    payload = encode_failure(raised(RuntimeError("x"))) if state == FAILED else b""
    h.ts.status_update("a", [[0, state, len(payload), 1, None, None]], payload)
    assert h.ts.executors["a"].running == {1}
    assert h.ts.executors["a"].free == 0


def test_after_abort_all_new_task_sets_fail_until_an_executor_registers():
    h = Harness()
    h.ts.abort_all("cannot start executors")
    h.submit(3, [0])
    assert h.of(TaskSetFailed) == [TaskSetFailed(3, 0, "cannot start executors")]
    assert h.ts.tsms == {}
    a = h.add_executor("a")
    h.submit(4, [0])
    assert len(h.of(TaskSetFailed)) == 1
    assert a.launches() == [[0, 4, 0, 0, 4]]


def test_short_tasks_queue_as_many_as_run_in_the_threshold():
    events: list = []
    ts = CoreDriver(events.append, pipeline_depth=32, short_task_us=2000.0)
    conn = FakeConn()
    ts.executor_added(ExecutorData("a", "host", conn, 1))
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", list(range(200))))
    ts.submit_tasks(TaskSet(1, 0, 1, 1, b"bin1", list(range(20))))

    def finish_running(run_us: int) -> list:
        running = sorted(ts.executors["a"].running)
        ok = pickle.dumps(None)
        ts.status_update("a", [[t, FINISHED, len(ok), run_us, None, None] for t in running],
                         ok * len(running))
        return running

    assert len(conn.launches()) == 1  # unknown run time: one at a time
    for _ in range(4):
        finish_running(10)
    # 10 µs tasks: 200 fit in 2 ms, capped at 32 queued behind the running one.
    assert len(ts.executors["a"].running) == 33
    assert all(t[4] == 0 for t in conn.launches())
    # Slower tasks (500 µs on average from now on): fewer queued.
    for _ in range(30):
        finish_running(500)
    assert len(ts.executors["a"].running) < 33
    assert 1 <= len(ts.executors["a"].running) - 1 <= 32
    tsm = ts.tsms[0]
    core = ts.core
    assert core._short_depth(tsm) == int(2000 * core._run_stats[0][0] / core._run_stats[0][1])
    # A stage of long tasks (3 ms) is never queued behind a running task.
    ts2 = CoreDriver(events.append, pipeline_depth=32, short_task_us=2000.0)
    conn2 = FakeConn()
    ts2.executor_added(ExecutorData("b", "host", conn2, 1))
    ts2.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", list(range(50))))
    for _ in range(10):
        running = sorted(ts2.executors["b"].running)
        ok = pickle.dumps(None)
        ts2.status_update("b", [[t, FINISHED, len(ok), 3000, None, None] for t in running],
                          ok * len(running))
        assert len(ts2.executors["b"].running) == 1


# -- the thin driver (task_scheduler.TaskScheduler): commands become I/O -----------------

class KillRefusingConn(FakeConn):
    """Takes launches, but its control side is gone."""

    def send(self, msg) -> None:
        raise TransportError("control channel closed")


class OversizeConn(FakeConn):
    def send_many(self, msgs) -> None:
        raise LocalProtocolError("frame of 300 MiB over asyncspark.rpc.maxFrameSize")


async def test_driver_arms_kill_deadlines_as_loop_timers_and_cancels_them():
    events: list = []
    killed: list = []
    ts = TaskScheduler(events.append, kill_grace_period=30.0,
                       kill_executor=lambda e, r: killed.append((e, r)))
    conn = FakeConn()
    ts.executor_added(ExecutorData("a", "host", conn, 1))
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0]))
    ts.cancel_tasks(0, "stop")
    assert conn.writes[-1] == [KillTask(0, "stop")]
    assert set(ts._timers) == {0}  # the kill deadline, on the loop
    ts._fired(0)  # as the loop would after 30 s
    assert killed == [("a", "task 0 did not stop within 30.0s of being killed")]
    ts.status_update("a", [[0, KILLED, 0, 1, None, None]], b"")
    assert ts._timers == {}
    await ts.close()


async def test_driver_cancels_the_deadline_of_a_kill_it_could_not_send():
    killed: list = []
    ts = TaskScheduler(lambda ev: None, kill_grace_period=0.01,
                       kill_executor=lambda e, r: killed.append((e, r)))
    ts.executor_added(ExecutorData("a", "host", KillRefusingConn(), 1))
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0]))
    ts.cancel_tasks(0, "stop")
    assert ts._timers == {}
    assert ts.tasks[0].kill_armed is False
    assert killed == []
    await ts.close()


async def test_driver_reports_a_launch_it_cannot_encode_to_the_core():
    events: list = []
    ts = TaskScheduler(events.append)
    ts.executor_added(ExecutorData("a", "host", OversizeConn(), 1))
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0]))
    (failed,) = [e for e in events if type(e) is TaskSetFailed]
    assert "cannot launch tasks of stage 0" in failed.message
    assert "maxFrameSize" in failed.message
    assert ts.tasks == {}
    assert ts.tsms == {}
    assert ts.executors["a"].free == 1
    await ts.close()


def test_core_orders_a_kill_deadline_before_its_kill():
    """A kill the driver cannot send cancels its deadline: the deadline must come first."""
    d = CoreDriver()
    d.executor_added(ExecutorData("a", "host", FakeConn(), 1))
    d.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0]))
    cmds = d.core.cancel_tasks(0, "stop")
    assert [type(c).__name__ for c in cmds] == ["ArmTimer", "SendKill"]


# -- results sent as files -------------------------------------------------------------

def _indirect(h: Harness, executor_id: str, task_id: int, path: str, size: int) -> None:
    ref = encode_ref(path, size)
    h.ts.status_update(executor_id, [[task_id, INDIRECT, len(ref), 10, None, None]], ref)


def test_a_result_file_is_read_by_the_driver_then_completes_the_task():
    h = Harness()
    a = h.add_executor("a")
    h.submit(0, [0, 1])
    _indirect(h, "a", 0, "/scratch/result-0", 3)
    (read,) = h.ts.reads
    assert (read.path, read.size, read.executor_id) == ("/scratch/result-0", 3, "a")
    assert h.of(CompletionEvent) == []  # nothing reported before the file is read
    assert len(a.launches()) == 2  # the slot is free meanwhile: the next task runs
    h.ts.complete_read(read, pickle.dumps("big"))
    (done,) = h.of(CompletionEvent)
    assert (done.success, done.result) == (True, "big")


def test_a_lost_result_file_is_a_failure_and_a_late_one_is_removed_unread():
    h = Harness(max_failures=1)
    h.add_executor("a")
    h.submit(0, [0])
    _indirect(h, "a", 0, "/scratch/result-0", 3)
    (read,) = h.ts.reads
    h.ts.complete_read(read, failure=TaskResultLostError("file /scratch/result-0 is gone"))
    (done,) = h.of(CompletionEvent)
    assert done.reason.kind == "result_lost"
    assert len(h.of(TaskSetFailed)) == 1
    _indirect(h, "a", 0, "/scratch/result-0-again", 3)  # a task nobody waits for
    assert h.ts.discarded == ["/scratch/result-0-again"]
    assert h.ts.reads == []
