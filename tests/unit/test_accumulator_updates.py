"""Accumulators without processes: the value API, worker-side copies, the registry, and
the DAGScheduler deciding which task updates count (a fake task scheduler)."""

from __future__ import annotations

import asyncio
import pickle

import cloudpickle
import pytest
from test_dag_scheduler import FakeTaskScheduler  # the DAGScheduler tests' fake

from asyncspark.accumulators import AccumulatorParam, AccumulatorRegistry
from asyncspark.scheduler.dag_scheduler import DAGScheduler
from asyncspark.scheduler.events import (
    CompleteJob,
    CompletionEvent,
    JobSubmitted,
    SubmitTaskSet,
    UpdateAccumulators,
)
from asyncspark.scheduler.stage import JobWaiter, ShuffleInfo
from asyncspark.serializers import dumps_result
from asyncspark.taskcontext import TaskContext
from asyncspark.transport.messages.tasks import TaskEndReason, encode_updates


class ListParam(AccumulatorParam):
    def zero(self, value):
        return []

    def addInPlace(self, value1, value2):
        value1.extend(value2)
        return value1


@pytest.fixture
def registry() -> AccumulatorRegistry:
    return AccumulatorRegistry()


@pytest.fixture
def task():
    ctx = TaskContext(0, 0, 0, 1, "/nonexistent")
    TaskContext._set(ctx)
    yield ctx
    TaskContext._set(None)


def test_default_params_follow_the_initial_value_type(registry):
    for initial, term, expected in [(1, 2, 3), (1.5, 2, 3.5), (1j, 1, 1 + 1j)]:
        acc = registry.new(initial)
        acc += term
        assert acc.value == expected
        assert type(acc.value) is type(expected)


def test_no_default_param_for_other_types(registry):
    with pytest.raises(TypeError, match="No default accumulator param for type str"):
        registry.new("x")
    with pytest.raises(TypeError, match="zero\\(\\) and addInPlace\\(\\)"):
        registry.new([], accum_param=object())


def test_driver_side_value_can_be_set_and_printed(registry):
    acc = registry.new(10)
    acc.value = 3
    acc.add(4)
    assert (acc.value, str(acc), repr(acc)) == (7, "7", f"Accumulator<id={acc.aid}, value=7>")


def test_worker_copy_adds_into_the_running_task_only(registry, task):
    acc = registry.new(100)
    acc.add(5)  # the driver's own value
    worker = pickle.loads(cloudpickle.dumps(acc))
    worker += 2
    worker.add(3)
    assert task._accumulators == {acc.aid: 5}  # from zero, not from the driver's 105
    with pytest.raises(RuntimeError, match="cannot be accessed inside tasks"):
        _ = worker.value
    with pytest.raises(RuntimeError, match="cannot be set inside tasks"):
        worker.value = 1
    # the next task (the stage's binary is cached) starts from zero again
    nxt = TaskContext(0, 1, 0, 2, "/nonexistent")
    TaskContext._set(nxt)
    worker.add(1)
    assert nxt._accumulators == {acc.aid: 1}


def test_custom_param_gets_a_fresh_zero_per_task(registry, task):
    acc = registry.new([], ListParam())
    worker = pickle.loads(cloudpickle.dumps(acc))
    worker.add(["a"])
    first = task._accumulators[acc.aid]
    TaskContext._set(TaskContext(0, 1, 0, 2, "/nonexistent"))
    worker.add(["b"])
    assert first == ["a"]
    assert TaskContext.get()._accumulators[acc.aid] == ["b"]


def test_registry_merges_updates_and_forgets_dropped_accumulators(registry):
    a = registry.new(1)
    b = registry.new([], ListParam())
    dropped = registry.new(0)
    dropped_id = dropped.aid
    del dropped
    registry.apply(encode_updates({a.aid: 10, b.aid: ["x"], dropped_id: 1}, dumps_result))
    registry.apply(encode_updates({a.aid: 5, b.aid: ["y"]}, dumps_result))
    assert (a.value, b.value) == (16, ["x", "y"])


# -- the DAGScheduler decides what counts ------------------------------------------------

@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def dag(registry):
    return DAGScheduler(FakeTaskScheduler(), update_accumulators=registry.apply)


def run(dag: DAGScheduler, event) -> list:
    cmds = dag.handle(event)
    dag._execute(cmds)
    return cmds


def updates_of(cmds: list) -> list:
    return [c for c in cmds if type(c) is UpdateAccumulators]


def completion(ts, index: int, updates: dict | None, success: bool = True,
               attempt: int | None = None, task_id: int = 0) -> CompletionEvent:
    return CompletionEvent(
        ts.stage_id, ts.stage_attempt if attempt is None else attempt, task_id, index,
        ts.partitions[index], "exec-1", success, result=f"r{index}",
        reason=None if success else TaskEndReason("exception", "boom"),
        accumulator_updates=None if updates is None else encode_updates(updates, dumps_result))


def submit(dag: DAGScheduler, loop, partitions, shuffles=None, parents=()) -> JobSubmitted:
    ev = JobSubmitted(0, 1, len(partitions), b"binary", list(partitions),
                      JobWaiter(loop.create_future(), len(partitions)), {}, "",
                      dict(shuffles or {}), list(parents))
    run(dag, ev)
    return ev


def test_result_stage_counts_each_partition_once(dag, registry, loop):
    acc = registry.new(0)
    ev = submit(dag, loop, [0, 1])
    (ts,) = dag.task_scheduler.submitted
    assert updates_of(run(dag, completion(ts, 0, {acc.aid: 1})))
    # a speculative copy or a resubmitted task finishing the same partition again
    assert not updates_of(run(dag, completion(ts, 0, {acc.aid: 1}, task_id=7)))
    # an attempt of a stale stage attempt
    assert not updates_of(run(dag, completion(ts, 1, {acc.aid: 100}, attempt=5)))
    cmds = run(dag, completion(ts, 1, {acc.aid: 10}))
    # the update is applied before the job's waiter completes
    kinds = [type(c) for c in cmds]
    assert kinds.index(UpdateAccumulators) < kinds.index(CompleteJob)
    assert ev.waiter.future.result() == ["r0", "r1"]
    assert acc.value == 11
    # a late duplicate after the job finished
    assert not updates_of(run(dag, completion(ts, 1, {acc.aid: 10}, task_id=8)))
    assert acc.value == 11


def test_failed_attempts_never_count(dag, registry, loop):
    acc = registry.new(0)
    submit(dag, loop, [0])
    (ts,) = dag.task_scheduler.submitted
    assert not updates_of(run(dag, completion(ts, 0, {acc.aid: 1}, success=False)))
    assert acc.value == 0
    run(dag, completion(ts, 0, {acc.aid: 2}))
    assert acc.value == 2


def test_map_stage_counts_every_successful_run(dag, registry, loop):
    acc = registry.new(0)
    info = ShuffleInfo(0, 5, 2, 1, b"map-binary", [])
    submit(dag, loop, [0], shuffles={0: info}, parents=[0])
    (maps,) = dag.task_scheduler.submitted
    assert isinstance(dag.stages[maps.stage_id], type(dag.shuffle_stages[0]))
    run(dag, completion(maps, 0, {acc.aid: 1}))
    run(dag, completion(maps, 0, {acc.aid: 1}, task_id=3))  # a re-run counts again
    assert acc.value == 2
    cmds = run(dag, completion(maps, 1, {acc.aid: 1}))
    assert acc.value == 3
    (result,) = [c.taskset for c in cmds if type(c) is SubmitTaskSet]
    run(dag, completion(result, 0, {acc.aid: 10}))
    assert acc.value == 13
