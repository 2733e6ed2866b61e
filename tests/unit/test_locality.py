"""Locality without processes: delay scheduling in the TaskSetManager and TaskScheduler
(an injected clock, the locality timer fired by hand), and the preferred locations the
DAGScheduler gives task sets from the BlockManagerMaster."""

from __future__ import annotations

import asyncio

import pytest
from core_driver import Clock, CoreDriver

from asyncspark.scheduler.dag_scheduler import DAGScheduler
from asyncspark.scheduler.events import JobSubmitted, SubmitTaskSet
from asyncspark.scheduler.stage import ExecutorData, JobWaiter, TaskSet
from asyncspark.scheduler.task_core import LOCALITY
from asyncspark.scheduler.task_set_manager import ANY, NODE_LOCAL, PROCESS_LOCAL, TaskSetManager
from asyncspark.storage.master import BlockManagerMaster
from asyncspark.transport.messages.tasks import LaunchTasks

WAIT = 3.0


def manager(prefs: list) -> TaskSetManager:
    ts = TaskSet(0, 0, 0, 0, b"", list(range(len(prefs))), preferred=prefs)
    return TaskSetManager(ts, 4, locality_wait=WAIT, now=0.0)


ALIVE = {"a": "h1", "b": "h1", "c": "h2"}


def offer(tsm: TaskSetManager, executor: str, now: float, alive=ALIVE) -> int | None:
    return tsm.next_task(executor, alive.keys(), alive[executor], now, set(alive.values()))


def test_process_local_first_whatever_the_order():
    tsm = manager([[("b", "h1")], [("a", "h1")], [("c", "h2")]])
    assert offer(tsm, "a", 0.0) == 1
    assert offer(tsm, "c", 0.0) == 2
    assert offer(tsm, "b", 0.0) == 0
    assert tsm.level == PROCESS_LOCAL


def test_delay_scheduling_waits_then_goes_node_local_then_any():
    tsm = manager([[("a", "h1")], [("a", "h1")], [("a", "h1")]])
    assert offer(tsm, "a", 0.0) == 0
    # b (same host) and c (other host) wait while a could take them
    assert offer(tsm, "b", 2.9) is None
    assert offer(tsm, "c", 2.9) is None
    assert tsm.locality_deadline() == pytest.approx(WAIT)
    assert offer(tsm, "c", 3.0) is None  # node-local now allowed: c is not on h1
    assert tsm.level == NODE_LOCAL
    assert offer(tsm, "b", 3.0) == 1  # node-local; resets the wait at that level
    assert offer(tsm, "c", 5.9) is None
    assert offer(tsm, "c", 6.0) == 2
    assert tsm.level == ANY
    assert tsm.locality_deadline() is None


def test_a_local_launch_resets_the_wait():
    tsm = manager([[("a", "h1")]] * 4)
    assert offer(tsm, "a", 0.0) == 0
    assert offer(tsm, "a", 2.0) == 1
    assert offer(tsm, "c", 4.0) is None  # the wait restarted at 2.0 ...
    assert offer(tsm, "c", 5.0) is None  # ... node-local from 5.0 (c is elsewhere)
    assert offer(tsm, "c", 8.0) == 2


def test_no_wait_when_no_live_executor_could_satisfy_the_preference():
    tsm = manager([[("gone", "h9")], [("gone", "h9")]])
    assert offer(tsm, "c", 0.0) == 0  # its executor and host are gone: no preference
    tsm = manager([[("gone", "h1")], [("gone", "h1")]])
    assert offer(tsm, "c", 0.0) is None  # h1 still has live executors (a, b) ...
    assert offer(tsm, "b", 0.0) == 0  # ... and b is on it: process level skipped at once


def test_tasks_without_preference_run_at_once_alongside_local_ones():
    tsm = manager([[("a", "h1")], [], [("a", "h1")]])
    assert offer(tsm, "c", 0.0) == 1
    assert offer(tsm, "c", 0.0) is None


def test_off_heap_copies_prefer_their_host():
    tsm = manager([[(None, "h2")], [(None, "h2")]])
    assert offer(tsm, "a", 0.0) is None
    assert offer(tsm, "c", 0.0) == 0  # node-local: process level has nothing to wait for


def test_without_a_wait_preferences_are_ignored():
    ts = TaskSet(0, 0, 0, 0, b"", [0, 1], preferred=[[("a", "h1")], [("a", "h1")]])
    tsm = TaskSetManager(ts, 4)
    assert tsm.next_task("c", ALIVE.keys(), "h2", 0.0, {"h1", "h2"}) == 0


# -- TaskScheduler: the locality timer ------------------------------------------------------

class FakeConn:
    def __init__(self) -> None:
        self.launched: list = []

    def send(self, msg) -> None:
        self.send_many([msg])

    def send_many(self, msgs) -> None:
        self.launched.extend(t[2] for m in msgs if type(m) is LaunchTasks for t in m.tasks)


def test_task_scheduler_revives_when_the_locality_wait_runs_out():
    blocks = BlockManagerMaster()
    ts = CoreDriver(lambda ev: None, clock=Clock(100.0), locality_wait=WAIT,
                    block_master=blocks)
    conns = {e: FakeConn() for e in "ab"}
    for e, host in (("a", "h1"), ("b", "h2")):
        ts.executor_added(ExecutorData(e, host, conns[e], 1))
    prefs = [[("a", "h1")], [("a", "h1")]]
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [10, 11], preferred=prefs))
    assert conns["a"].launched == [10]
    assert conns["b"].launched == []
    assert ts.core.locality_at == pytest.approx(100.0 + WAIT)
    assert ts.timers[LOCALITY] == pytest.approx(100.0 + WAIT, abs=0.01)
    ts.advance(WAIT / 2)
    assert conns["b"].launched == []  # still waiting for h1
    ts.advance(WAIT * 1.5 + 0.01)  # node level (h1) then any: b on h2 may take it
    assert conns["b"].launched == [11]


def test_executor_loss_drops_its_blocks_so_tasks_stop_waiting_for_it():
    blocks = BlockManagerMaster()
    blocks.register_executor("a", "h1", 1)
    blocks.update([["rdd_1_0", "a", "memory", 8]])
    ts = CoreDriver(lambda ev: None, locality_wait=WAIT, block_master=blocks)
    conns = {e: FakeConn() for e in "ab"}
    ts.executor_added(ExecutorData("a", "h1", conns["a"], 0))  # no free slot
    ts.executor_added(ExecutorData("b", "h2", conns["b"], 1))
    ts.submit_tasks(TaskSet(0, 0, 0, 0, b"bin", [0],
                            preferred=blocks.preferred_locations([1], [0])))
    assert conns["b"].launched == []
    ts.executor_lost("a", "killed")
    assert blocks.locations("rdd_1_0") == []
    assert conns["b"].launched == [0]


# -- DAGScheduler: preferred locations in task sets ------------------------------------------

class FakeTaskScheduler:
    def submit_tasks(self, taskset) -> None: ...
    def cancel_tasks(self, stage_id: int, reason: str) -> None: ...


async def test_dag_scheduler_gives_task_sets_their_cached_blocks_locations():
    blocks = BlockManagerMaster()
    blocks.register_executor("a", "h1", 1)
    blocks.register_executor("b", "h2", 2)
    blocks.update([["rdd_7_1", "b", "memory", 8], ["rdd_7_2", "a", "disk", 8],
                   ["rdd_7_2", "b", "memory", 8]])
    dag = DAGScheduler(FakeTaskScheduler(), block_master=blocks)
    loop = asyncio.get_running_loop()

    def submit(job_id: int, cached: list[int]):
        ev = JobSubmitted(job_id, 9, 4, b"bin", [0, 1, 2], JobWaiter(loop.create_future(), 3),
                          cached_rdds=cached)
        (cmd,) = [c for c in dag.handle(ev) if type(c) is SubmitTaskSet]
        return cmd.taskset.preferred

    assert submit(0, [7]) == [[], [("b", "h2")], [("a", "h1"), ("b", "h2")]]
    assert submit(1, []) is None  # nothing persisted upstream
    assert submit(2, [8]) is None  # persisted, nothing cached yet
