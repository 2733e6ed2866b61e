"""FetchFailed, ExecutorLost and stale stage attempts, with the fake task scheduler: the
DAGScheduler unregisters lost map outputs, fails the stage attempt, resubmits the map
stage and then the failed stage after one timer, and gives up after
``max_consecutive_attempts``."""

from __future__ import annotations

import asyncio

import pytest

from asyncspark.errors import FetchFailedError, JobFailedError
from asyncspark.scheduler.dag_scheduler import DAGScheduler
from asyncspark.scheduler.events import (
    CompleteJob,
    CompletionEvent,
    ExecutorLost,
    FailJob,
    JobSubmitted,
    PostListener,
    ResubmitFailedStages,
    ScheduleEvent,
    SubmitTaskSet,
)
from asyncspark.scheduler.stage import JobWaiter, ShuffleInfo
from asyncspark.transport.messages.tasks import TaskEndReason

NUM_MAPS, NUM_REDUCES = 3, 2


class FakeTaskScheduler:
    def __init__(self) -> None:
        self.submitted: list = []
        self.cancelled: list = []

    def submit_tasks(self, taskset) -> None:
        self.submitted.append(taskset)

    def cancel_tasks(self, stage_id: int, reason: str) -> None:
        self.cancelled.append((stage_id, reason))


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def dag() -> DAGScheduler:
    return DAGScheduler(FakeTaskScheduler(), clock=lambda: 0.0, resubmit_delay=0.2)


def status(executor: str, map_id: int) -> list:
    return [executor, "host", 7000, f"/tmp/shuffle_0_{map_id}.data", [1] * NUM_REDUCES]


def submit(dag: DAGScheduler, loop, job_id: int = 0) -> JobSubmitted:
    info = ShuffleInfo(0, 5, NUM_MAPS, NUM_REDUCES, b"map-binary", [])
    ev = JobSubmitted(job_id, 6, NUM_REDUCES, b"result-binary", list(range(NUM_REDUCES)),
                      JobWaiter(loop.create_future(), NUM_REDUCES), {}, "", {0: info}, [0])
    run(dag, ev)
    return ev


def run(dag: DAGScheduler, event) -> list:
    """handle() then execute the commands, as ``_event_loop`` does; a timer
    (``ScheduleEvent``) is left to the test, which posts its event when it likes."""
    cmds = dag.handle(event)
    dag._execute([c for c in cmds if type(c) is not ScheduleEvent])
    return cmds


def submitted(cmds: list) -> list:
    return [c.taskset for c in cmds if type(c) is SubmitTaskSet]


def ok(ts, index: int, result, executor: str = "e1") -> CompletionEvent:
    return CompletionEvent(ts.stage_id, ts.stage_attempt, 100 + index, index,
                           ts.partitions[index], executor, True, result)


def fetch_failed(ts, index: int, map_id: int, executor: str | None = "e1",
                 attempt: int | None = None) -> CompletionEvent:
    exc = FetchFailedError(f"cannot fetch shuffle 0 block (map {map_id}, reduce {index})",
                           0, map_id, ts.partitions[index], ("host", 7000), executor)
    return CompletionEvent(
        ts.stage_id, ts.stage_attempt if attempt is None else attempt, 200 + index, index,
        ts.partitions[index], "e9", False,
        reason=TaskEndReason("fetch_failed", f"FetchFailedError: {exc}", exception=exc,
                             counts=False))


def run_maps(dag: DAGScheduler, maps, executors=("e1", "e2", "e3")) -> list:
    """Complete every task of the map task set ``maps``; the commands of the last one."""
    cmds: list = []
    for i, p in enumerate(maps.partitions):
        cmds = run(dag, ok(maps, i, status(executors[p % len(executors)], p)))
    return cmds


def to_result_stage(dag: DAGScheduler, loop):
    ev = submit(dag, loop)
    (maps,) = dag.task_scheduler.submitted
    (result,) = submitted(run_maps(dag, maps))
    return ev, maps, result


def test_fetch_failure_unregisters_the_output_and_schedules_one_resubmission(dag, loop):
    ev, maps, result = to_result_stage(dag, loop)
    cmds = run(dag, fetch_failed(result, 0, map_id=1, executor="e2"))
    assert [c for c in cmds if type(c) is ScheduleEvent] == [
        ScheduleEvent(0.2, ResubmitFailedStages())]
    assert not [c for c in cmds if type(c) in (FailJob, SubmitTaskSet)]
    # map 1 lived on e2: it is gone, and so is every other output of e2 (none here)
    assert dag.map_outputs.missing(0) == [1]
    stage = dag.stages[result.stage_id]
    assert stage not in dag.running
    assert stage.failed_attempts == {0}
    # a burst: the other reducer fails too, before the timer fires -> no second timer
    cmds = run(dag, fetch_failed(result, 1, map_id=1, executor="e2"))
    assert not [c for c in cmds if type(c) is ScheduleEvent]
    # the timer fires: the missing map partition runs as attempt 1 of the map stage
    (remap,) = submitted(run(dag, ResubmitFailedStages()))
    assert (remap.stage_id, remap.stage_attempt, remap.partitions) == (maps.stage_id, 1, [1])
    assert dag.resubmissions == 2  # the map stage and the failed result stage
    # then the failed stage, as a new attempt, once the output is back
    (again,) = submitted(run(dag, ok(remap, 0, status("e3", 1))))
    assert (again.stage_id, again.stage_attempt, again.partitions) == (result.stage_id, 1,
                                                                       [0, 1])
    run(dag, ok(again, 0, "a"))
    cmds = run(dag, ok(again, 1, "b"))
    assert [c for c in cmds if type(c) is CompleteJob] == [CompleteJob(ev.waiter, ["a", "b"])]
    assert ev.waiter.future.result() == ["a", "b"]


def test_fetch_failure_drops_every_output_of_the_executor(dag, loop):
    _, _, result = to_result_stage(dag, loop)  # maps 0, 1, 2 on e1, e2, e3
    run(dag, ok(result, 1, "kept"))  # reducer 1 finished
    run(dag, fetch_failed(result, 0, map_id=0, executor="e1"))
    assert dag.map_outputs.missing(0) == [0]
    dag.map_outputs.register(0, 1, status("e1", 1))  # now e1 holds map 1 as well
    run(dag, fetch_failed(result, 0, map_id=0, executor="e1"))
    assert dag.map_outputs.missing(0) == [0, 1]


def test_a_newer_output_of_the_map_task_is_not_unregistered(dag, loop):
    _, _, result = to_result_stage(dag, loop)
    dag.map_outputs.remove_executor("e2")
    dag.map_outputs.register(0, 1, status("e3", 1))  # recomputed elsewhere meanwhile
    run(dag, fetch_failed(result, 0, map_id=1, executor="e2"))
    assert dag.map_outputs.missing(0) == []


def test_fetch_failure_without_a_known_executor_drops_only_that_output(dag, loop):
    _, _, result = to_result_stage(dag, loop)
    run(dag, fetch_failed(result, 0, map_id=2, executor=None))
    assert dag.map_outputs.missing(0) == [2]


def test_late_results_of_a_failed_attempt(dag, loop):
    ev, _maps, result = to_result_stage(dag, loop)
    run(dag, fetch_failed(result, 0, map_id=1, executor="e2"))
    # reducer 1 of the failed attempt still finishes: its result is correct, it counts
    run(dag, ok(result, 1, "late"))
    (remap,) = submitted(run(dag, ResubmitFailedStages()))
    (again,) = submitted(run(dag, ok(remap, 0, status("e3", 1))))
    assert (again.stage_attempt, again.partitions) == (1, [0])  # partition 1 is done
    # a fetch failure of the superseded attempt is ignored
    cmds = run(dag, fetch_failed(result, 0, map_id=0, executor="e1"))
    assert cmds == [c for c in cmds if type(c) is PostListener]
    assert dag.map_outputs.missing(0) == []  # e1's outputs were not dropped
    assert dag.stages[result.stage_id].failed_attempts == {0}
    run(dag, ok(again, 0, "fresh"))
    assert ev.waiter.future.result() == ["fresh", "late"]


def test_late_map_output_of_a_failed_map_attempt_is_registered(dag, loop):
    ev = submit(dag, loop)
    (maps,) = dag.task_scheduler.submitted
    run(dag, ok(maps, 0, status("e1", 0)))
    run(dag, ok(maps, 1, status("e2", 1)))
    # the executor of map 0 is lost while map 2 runs; map 2's output is registered and
    # map 0 is recomputed once the attempt has no pending task left
    run(dag, ExecutorLost("e1", "killed"))
    cmds = run(dag, ok(maps, 2, status("e3", 2), executor="e3"))
    assert dag.map_outputs.missing(0) == [0]
    (remap,) = submitted(cmds)  # the stage ran out of pending tasks: rerun the missing
    assert (remap.stage_attempt, remap.partitions) == (1, [0])
    (result,) = submitted(run(dag, ok(remap, 0, status("e3", 0), executor="e3")))
    run(dag, ok(result, 0, 1))
    run(dag, ok(result, 1, 2))
    assert ev.waiter.future.result() == [1, 2]


def test_map_output_from_a_lost_executor_is_not_registered(dag, loop):
    submit(dag, loop)
    (maps,) = dag.task_scheduler.submitted
    run(dag, ExecutorLost("e1", "gone"))
    run(dag, ok(maps, 0, status("e1", 0), executor="e1"))
    assert dag.map_outputs.missing(0) == [0, 1, 2]


def test_executor_lost_unregisters_its_outputs_and_reducers_fetch_fail(dag, loop):
    ev, _maps, result = to_result_stage(dag, loop)
    run(dag, ExecutorLost("e3", "executor 3 was killed by signal SIGKILL"))
    assert dag.map_outputs.missing(0) == [2]
    # a reducer then finds no location for map 2
    cmds = run(dag, fetch_failed(result, 0, map_id=2, executor=None))
    assert [c for c in cmds if type(c) is ScheduleEvent]
    (remap,) = submitted(run(dag, ResubmitFailedStages()))
    assert remap.partitions == [2]
    (again,) = submitted(run(dag, ok(remap, 0, status("e1", 2))))
    run(dag, ok(again, 0, "x"))
    run(dag, ok(again, 1, "y"))
    assert ev.waiter.future.result() == ["x", "y"]


def test_fourth_consecutive_failed_attempt_fails_the_job_naming_stage_and_cause(dag, loop):
    ev, _maps, result = to_result_stage(dag, loop)
    stage = dag.stages[result.stage_id]
    current = result
    for attempt in range(3):
        cmds = run(dag, fetch_failed(current, 0, map_id=1, executor="e2"))
        assert not [c for c in cmds if type(c) is FailJob]
        (remap,) = submitted(run(dag, ResubmitFailedStages()))
        (current,) = submitted(run(dag, ok(remap, 0, status("e2", 1))))
        assert current.stage_attempt == attempt + 1
    cmds = run(dag, fetch_failed(current, 0, map_id=1, executor="e2"))
    (fail,) = [c for c in cmds if type(c) is FailJob]
    assert fail.waiter is ev.waiter
    message = str(fail.error)
    assert isinstance(fail.error, JobFailedError)
    assert f"ResultStage({stage.stage_id}, job 0)" in message
    assert "maximum allowable number of times: 4" in message
    assert "spark.stage.maxConsecutiveAttempts" in message
    assert "cannot fetch shuffle 0 block (map 1" in message
    assert isinstance(fail.error.__cause__, FetchFailedError)
    assert not [c for c in cmds if type(c) is ScheduleEvent]
    assert dag.jobs == {}
    assert dag.failed_stages == set()


def test_a_successful_map_stage_resets_its_consecutive_failures(dag, loop):
    submit(dag, loop)
    (maps,) = dag.task_scheduler.submitted
    stage = dag.shuffle_stages[0]
    stage.failed_attempts.add(0)
    run_maps(dag, maps)
    assert stage.failed_attempts == set()


def test_resubmission_after_the_job_was_cancelled_does_nothing(dag, loop):
    from asyncspark.scheduler.events import JobCancelled

    ev, _, result = to_result_stage(dag, loop)
    run(dag, fetch_failed(result, 0, map_id=1, executor="e2"))
    run(dag, JobCancelled(ev.job_id))
    assert submitted(run(dag, ResubmitFailedStages())) == []
    assert dag.resubmissions == 0


async def test_the_resubmission_timer_posts_into_the_queue():
    loop = asyncio.get_running_loop()
    ts = FakeTaskScheduler()
    queue: asyncio.Queue = asyncio.Queue()
    ts.submit_tasks = queue.put_nowait  # type: ignore[method-assign]
    dag = DAGScheduler(ts, resubmit_delay=0.01)
    dag.start()
    try:
        ev = submit(dag, loop)
        maps = await queue.get()
        dag.post_many([ok(maps, i, status("e1", i)) for i in range(NUM_MAPS)])
        result = await asyncio.wait_for(queue.get(), 5)
        dag.post(fetch_failed(result, 0, map_id=0, executor="e1"))
        # the timer fires and resubmits the map stage: e1 held every output
        remap = await asyncio.wait_for(queue.get(), 5)
        assert (remap.stage_id, remap.partitions) == (maps.stage_id, [0, 1, 2])
        dag.post_many([ok(remap, i, status("e2", p)) for i, p in enumerate(remap.partitions)])
        again = await asyncio.wait_for(queue.get(), 5)
        dag.post_many([ok(again, 0, "a"), ok(again, 1, "b")])
        assert await asyncio.wait_for(ev.waiter.future, 5) == ["a", "b"]
    finally:
        await dag.stop()


def test_a_waiting_stage_resubmits_another_parent_whose_outputs_were_lost(dag, loop):
    """The result stage reads shuffles 0 and 1; shuffle 0's outputs are lost while
    shuffle 1's map stage runs: when that finishes, shuffle 0's missing maps run."""
    infos = {0: ShuffleInfo(0, 5, 2, 2, b"m0", []), 1: ShuffleInfo(1, 6, 2, 2, b"m1", [])}
    ev = JobSubmitted(0, 7, 2, b"r", [0, 1], JobWaiter(loop.create_future(), 2), {}, "",
                      infos, [0, 1])
    first = submitted(run(dag, ev))
    m0, m1 = sorted(first, key=lambda t: t.stage_id)
    run(dag, ok(m0, 0, ["e1", "h", 1, "p", [1, 1]]))
    run(dag, ok(m0, 1, ["e2", "h", 1, "p", [1, 1]], executor="e2"))
    run(dag, ExecutorLost("e1", "killed"))
    run(dag, ok(m1, 0, ["e2", "h", 1, "p", [1, 1]], executor="e2"))
    (again,) = submitted(run(dag, ok(m1, 1, ["e2", "h", 1, "p", [1, 1]], executor="e2")))
    assert (again.stage_id, again.partitions) == (m0.stage_id, [0])
    (result,) = submitted(run(dag, ok(again, 0, ["e2", "h", 1, "p", [1, 1]], executor="e2")))
    run(dag, ok(result, 0, "a"))
    run(dag, ok(result, 1, "b"))
    assert ev.waiter.future.result() == ["a", "b"]
