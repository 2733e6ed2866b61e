"""Dynamic allocation's decisions (scheduler/allocation.py) under a fake clock, and the
driver-state readings it is fed from (backends/dynamic.py): no processes, no sleeps."""

from __future__ import annotations

import math

import pytest

from asyncspark.conf import Config
from asyncspark.errors import ConfigError
from asyncspark.scheduler.allocation import AllocationConf, ExecutorAllocationManager
from asyncspark.scheduler.backends.dynamic import active_shuffles, shuffle_holders
from asyncspark.scheduler.stage import ActiveJob, ResultStage, ShuffleInfo, ShuffleMapStage
from asyncspark.shuffle.map_output_tracker import MapOutputTracker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def manager(**kw) -> tuple[ExecutorAllocationManager, Clock]:
    clock = Clock()
    defaults = dict(min_executors=0, max_executors=None, initial_executors=1,
                    executor_idle_timeout=5.0, scheduler_backlog_timeout=1.0,
                    sustained_scheduler_backlog_timeout=0.5)
    defaults.update(kw)
    return ExecutorAllocationManager(AllocationConf(**defaults), clock), clock


def add(m: ExecutorAllocationManager, *ids: str, running: int = 0) -> None:
    for eid in ids:
        m.executor_added(eid)
        m.activity(eid, running)


def test_initial_target_is_the_largest_of_initial_min_and_instances():
    conf = Config.from_items([("spark.dynamicAllocation.enabled", "true"),
                              ("spark.dynamicAllocation.minExecutors", "2"),
                              ("spark.dynamicAllocation.initialExecutors", "1"),
                              ("spark.executor.instances", "3")])
    ac = AllocationConf.from_config(conf)
    assert ac.initial_executors == 3
    assert ac.max_executors is None
    assert ac.sustained_scheduler_backlog_timeout == ac.scheduler_backlog_timeout == 1.0
    assert ac.shuffle_tracking
    assert ac.shuffle_tracking_timeout == math.inf
    assert ac.cached_executor_idle_timeout == math.inf
    assert ac.executor_idle_timeout == 60.0
    # local[N]: N is the maximum unless maxExecutors says otherwise; initial is capped.
    assert AllocationConf.from_config(conf, default_max=2).initial_executors == 2
    conf = Config.from_items([("spark.dynamicAllocation.maxExecutors", "5")])
    assert AllocationConf.from_config(conf, default_max=2).max_executors == 5


def test_bad_settings_are_refused_with_the_key_named():
    for items, words in (
            ([("spark.dynamicAllocation.maxExecutors", "0")], "maxExecutors"),
            ([("spark.dynamicAllocation.minExecutors", "4"),
              ("spark.dynamicAllocation.maxExecutors", "2")], "minExecutors"),
            ([("spark.dynamicAllocation.schedulerBacklogTimeout", "0")],
             "schedulerBacklogTimeout"),
            ([("spark.dynamicAllocation.executorIdleTimeout", "soon")], "executorIdleTimeout"),
            ([("spark.dynamicAllocation.executorAllocationRatio", "1.5")],
             "executorAllocationRatio"),
            ([("spark.dynamicAllocation.minExecutors", "-1")], "minExecutors")):
        with pytest.raises(ConfigError, match=words):
            Config.from_items(items)
    conf = Config.from_items([("spark.dynamicAllocation.shuffleTracking.timeout", "250"),
                              ("spark.dynamicAllocation.cachedExecutorIdleTimeout", "infinity")])
    assert conf.dyn_shuffle_tracking_timeout == 0.25  # plain numbers: milliseconds
    assert conf.dyn_cached_idle_timeout == math.inf


def test_target_grows_exponentially_while_the_backlog_lasts():
    m, clock = manager(max_executors=10)
    add(m, "0", running=1)
    m.stage_submitted()
    assert m.schedule(pending=100, running=1).target == 1  # backlog just started
    clock.t += 0.99
    assert m.schedule(100, 1).target == 1
    steps = []
    for _ in range(5):
        clock.t += 0.5 if steps else 0.01
        steps.append(m.schedule(100, 1).target)
    # +1 after schedulerBacklogTimeout, then +2, +4 each sustained timeout; max 10.
    assert steps == [2, 4, 8, 10, 10]
    assert m.added == 9


def test_growth_stops_at_what_the_tasks_need_and_restarts_at_one():
    m, clock = manager(tasks_per_executor=2)
    add(m, "0")
    m.stage_submitted()
    m.schedule(5, 0)
    for _ in range(6):
        clock.t += 1.0
        d = m.schedule(5, 0)
    assert d.target == 3  # ceil(5 tasks / 2 slots)
    clock.t += 1.0
    m.schedule(0, 4)  # the backlog cleared: the next growth starts at 1 again
    assert m.to_add == 1
    assert m.add_at is None
    # Fewer needed than the target: the target drops, nothing is removed for it.
    d = m.schedule(0, 1)
    assert d.target == 1
    assert d.remove == ()


def test_initializing_keeps_the_initial_target_until_a_stage_or_a_timeout():
    m, clock = manager(initial_executors=3, executor_idle_timeout=10.0)
    add(m, "0", "1", "2")
    clock.t += 5.0
    assert m.schedule(0, 0).target == 3  # no job yet: not ramped down
    clock.t += 5.0  # the executors time out: initializing ends, target -> 0, removals
    d = m.schedule(0, 0)
    assert d.target == 0
    assert d.remove == ("0", "1", "2")


def test_idle_executors_are_removed_but_never_below_min_or_target():
    m, clock = manager(min_executors=1, initial_executors=3)
    add(m, "0", "1", "2")
    add(m, "3", running=1)
    m.stage_submitted()
    clock.t += 4.9
    assert m.schedule(0, 1).remove == ()
    clock.t += 0.1
    d = m.schedule(0, 1)
    # Target 1 (one running task); three idle past 5 s; one executor (busy) stays.
    assert d.target == 1
    assert d.remove == ("0", "1", "2")
    assert m.schedule(0, 1).remove == ()  # pending removal: not offered again
    for eid in d.remove:
        m.executor_removed(eid)
    m.activity("3", 0)
    clock.t += 10
    assert m.schedule(0, 0).remove == ()  # minExecutors = 1


def test_a_task_ending_between_readings_restarts_the_idle_clock():
    m, clock = manager()
    add(m, "0", "1")
    m.stage_submitted()
    clock.t += 4.0
    m.activity("0", 0, last_task_end=clock.t - 0.5)  # ran a short task meanwhile
    m.activity("1", 0, last_task_end=clock.t - 10)  # older than its idle start: ignored
    clock.t += 1.0
    assert m.schedule(0, 0).remove == ("1",)
    clock.t += 3.5
    assert m.schedule(0, 0).remove == ("0",)


def test_busy_executors_are_never_removed():
    m, clock = manager(initial_executors=0)
    add(m, "0", running=1)
    m.stage_submitted()
    clock.t += 1000
    m.activity("0", 1)
    assert m.schedule(0, 1).remove == ()


def test_executor_with_outputs_of_an_active_shuffle_is_kept():
    m, clock = manager(initial_executors=2, shuffle_tracking_timeout=2.0)
    add(m, "0", "1", "2")
    m.holdings("0", [7], cached=False)
    m.holdings("1", [8], cached=False)
    m.set_active_shuffles([7])  # job reading shuffle 7 still runs; shuffle 8's is done
    m.activity("2", 1)
    m.stage_submitted()
    clock.t += 100
    d = m.schedule(0, 1)
    assert d.remove == ("1",)  # idle, its shuffle inactive for over 2 s
    assert m.has_active_shuffle("0")
    assert not m.has_active_shuffle("1")
    m.set_active_shuffles([])  # the consumers finished
    clock.t += 0.1
    assert m.schedule(0, 1).remove == ("0",)


def test_shuffle_outputs_keep_an_executor_until_cleaned_by_default():
    m, clock = manager(initial_executors=0)
    add(m, "0")
    m.holdings("0", [3], cached=False)
    m.stage_submitted()
    clock.t += 1e6
    assert m.timeout_of("0") == math.inf
    assert m.schedule(0, 0).remove == ()
    m.holdings("0", [], cached=False)  # the shuffle was cleaned up
    assert m.schedule(0, 0).remove == ("0",)


def test_without_shuffle_tracking_outputs_do_not_keep_an_executor():
    m, clock = manager(initial_executors=0, shuffle_tracking=False)
    add(m, "0")
    m.holdings("0", [3], cached=False)
    m.set_active_shuffles([3])
    m.stage_submitted()
    clock.t += 5
    assert m.schedule(0, 0).remove == ("0",)


def test_cached_blocks_use_the_cached_timeout_and_the_shorter_one_wins():
    m, clock = manager(initial_executors=0, cached_executor_idle_timeout=30.0,
                       shuffle_tracking_timeout=12.0)
    add(m, "0", "1", "2")
    m.holdings("0", [], cached=True)
    m.holdings("1", [4], cached=True)
    m.stage_submitted()
    assert (m.timeout_of("0"), m.timeout_of("1"), m.timeout_of("2")) == (30.0, 12.0, 5.0)
    clock.t += 12
    assert m.schedule(0, 0).remove == ("1", "2")
    clock.t += 18
    assert m.schedule(0, 0).remove == ("0",)


def test_active_shuffles_and_holders_read_from_the_scheduler_state():
    def info(sid: int, parents: list[int]) -> ShuffleInfo:
        return ShuffleInfo(sid, sid * 10, 2, 2, b"", parents)

    s1 = ShuffleMapStage(1, info(1, []), [])
    s2 = ShuffleMapStage(2, info(2, [1]), [s1])
    s9 = ShuffleMapStage(9, info(9, []), [])
    final = ResultStage(3, 30, 2, [0, 1], job_id=0, binary=b"", parents=[s2])

    class Dag:
        jobs = {0: ActiveJob(0, final, None, {}, 0.0)}  # type: ignore[arg-type]
        shuffle_stages = {1: s1, 2: s2, 9: s9}

    outputs = MapOutputTracker()
    for sid in (1, 2):
        outputs.register_shuffle(sid, 2, 2)
    outputs.register(1, 0, ["a", "h", 1, "p", [1, 1]])
    outputs.register(1, 1, ["b", "h", 1, "p", [1, 1]])
    outputs.register(2, 0, ["b", "h", 1, "p", [1, 1]])
    assert active_shuffles(Dag) == {1, 2}
    assert shuffle_holders(Dag, outputs) == {"a": {1}, "b": {1, 2}}  # 9 not registered
