"""FAIR scheduling (scheduler/pools.py) in the TaskScheduler core, driven by the
synchronous fake driver (core_driver.py): no processes, no loop, no real time. Also the
allocation file formats (Spark's XML, JSON, TOML) and their errors."""

from __future__ import annotations

import json
import pickle
from collections import Counter

import pytest
from core_driver import CoreDriver
from fake_conn import Conn

from asyncspark.conf import Config
from asyncspark.errors import ConfigError
from asyncspark.scheduler.pools import (
    FAIR,
    FIFO,
    PoolSpec,
    PoolTree,
    fair_key,
    load_allocation_file,
    parse_allocation,
    pools_from_config,
)
from asyncspark.scheduler.stage import ExecutorData, TaskSet
from asyncspark.transport.messages.tasks import FINISHED


class Harness:
    def __init__(self, pools: PoolTree | None, executors: int = 1, slots: int = 1) -> None:
        self.ts = CoreDriver(pools=pools)
        self.conns: dict[str, Conn] = {}
        for i in range(executors):
            self.conns[f"e{i}"] = conn = Conn()
            self.ts.executor_added(ExecutorData(f"e{i}", "host", conn, slots))

    def submit(self, stage_id: int, ntasks: int, job_id: int | None = None,
               pool: str | None = None) -> None:
        props = {} if pool is None else {"spark.scheduler.pool": pool}
        self.ts.submit_tasks(TaskSet(stage_id, 0, stage_id if job_id is None else job_id,
                                     stage_id, b"bin", list(range(ntasks)), props))

    def running(self) -> Counter:
        """Running tasks per stage."""
        return Counter(t.tsm.taskset.stage_id for t in self.ts.tasks.values())

    def finish(self, task_id: int) -> None:
        task = self.ts.tasks[task_id]
        payload = pickle.dumps(None)
        self.ts.status_update(task.executor_id,
                              [[task_id, FINISHED, len(payload), 10, None, None]], payload)

    def finish_one_of(self, stage_id: int) -> int:
        task_id = min(t for t, r in self.ts.tasks.items() if r.tsm.taskset.stage_id == stage_id)
        self.finish(task_id)
        return task_id

    def newest_stage(self) -> int:
        return self.ts.tasks[max(self.ts.tasks)].tsm.taskset.stage_id


def tree(*specs: PoolSpec) -> PoolTree:
    return PoolTree({s.name: s for s in specs})


# -- the comparator -------------------------------------------------------------------

def test_fair_key_is_sparks_comparator():
    # needy (running < minShare) first, by running/minShare
    assert fair_key(1, 2, 1, "b") < fair_key(0, 0, 100, "a")
    assert fair_key(1, 4, 1, "b") < fair_key(1, 2, 1, "a")  # 0.25 < 0.5
    # then running/weight; ties by name
    assert fair_key(2, 0, 4, "b") < fair_key(1, 0, 1, "a")  # 0.5 < 1
    assert fair_key(1, 0, 1, "a") < fair_key(1, 0, 1, "b")


# -- pools in the core ---------------------------------------------------------------

def test_weights_share_the_slots():
    h = Harness(tree(PoolSpec("a", FIFO, weight=2), PoolSpec("b", FIFO, weight=1)),
                executors=6)
    h.submit(0, 100, pool="a")
    # pool a alone takes every slot
    assert h.running() == {0: 6}
    h.submit(1, 100, pool="b")
    # b gets each slot that frees until running/weight evens out: 4 vs 2
    for _ in range(6):
        h.finish_one_of(0 if h.running()[0] > 4 else 1)
    assert h.running() == {0: 4, 1: 2}
    # the share holds as tasks keep finishing on both sides
    for _ in range(12):
        h.finish(min(h.ts.tasks))
        assert h.running() == {0: 4, 1: 2}


def test_weights_from_the_start():
    h = Harness(tree(PoolSpec("a", FIFO, weight=2), PoolSpec("b", FIFO, weight=1)))
    h.submit(0, 100, pool="a")
    h.submit(1, 100, pool="b")
    h.finish(min(h.ts.tasks))  # the one slot's task: no more slots to compare
    for _ in range(5):
        h.ts.executor_added(ExecutorData(f"x{len(h.ts.executors)}", "host", Conn(), 1))
    assert h.running() == {0: 4, 1: 2}


def test_min_share_comes_before_weight():
    h = Harness(tree(PoolSpec("small", FIFO, weight=1, minShare=3),
                     PoolSpec("heavy", FIFO, weight=100)), executors=1, slots=5)
    h.submit(0, 50, pool="heavy")
    h.submit(1, 50, pool="small")
    assert h.running() == {0: 5}
    for _ in range(5):
        h.finish_one_of(0)
    # small is needy until it runs minShare=3 tasks, then heavy's weight wins
    assert h.running() == {1: 3, 0: 2}
    for _ in range(4):
        h.finish_one_of(0)
    assert h.running() == {1: 3, 0: 2}


def test_fifo_inside_a_pool():
    h = Harness(tree(PoolSpec("p", FIFO)), executors=2)
    h.submit(0, 4, job_id=0, pool="p")
    h.submit(1, 1, job_id=1, pool="p")
    assert h.running() == {0: 2}
    h.finish_one_of(0)
    assert h.running() == {0: 2}  # the earlier job first, as FIFO mode
    h.finish_one_of(0)
    h.finish_one_of(0)
    assert h.running() == {0: 1, 1: 1}


def test_fair_inside_a_pool_alternates_jobs():
    h = Harness(tree(PoolSpec("p", FAIR)), executors=1, slots=4)
    h.submit(0, 10, job_id=0, pool="p")
    h.submit(1, 10, job_id=1, pool="p")
    assert h.running() == {0: 4}
    for _ in range(4):
        h.finish_one_of(0)
    assert h.running() == {0: 2, 1: 2}


def test_short_job_overtakes_a_long_one_as_soon_as_one_slot_frees():
    h = Harness(PoolTree(), executors=2)  # the default pool, FAIR between jobs
    h.submit(0, 4, job_id=0)
    assert h.running() == {0: 2}
    h.submit(1, 1, job_id=1)
    assert h.running() == {0: 2}
    h.finish_one_of(0)
    assert h.newest_stage() == 1
    assert h.running() == {0: 1, 1: 1}


def test_many_small_jobs_fair_order_and_no_ordering_for_busy_executors(monkeypatch):
    # A service's load: 20 two-task jobs in one FAIR pool, one slot on each of two
    # executors, short-task pipelining on but no stage with known run times.
    from asyncspark.scheduler import pools as pools_mod

    calls = Counter()
    original = pools_mod.Pool.ordered_tsms

    def counting(self):
        calls["ordered_tsms"] += 1
        return original(self)

    monkeypatch.setattr(pools_mod.Pool, "ordered_tsms", counting)
    h = Harness.__new__(Harness)
    h.ts = CoreDriver(pools=PoolTree(), pipeline_depth=64, short_task_us=2000.0)
    h.conns = {}
    for i in range(2):
        h.conns[f"e{i}"] = conn = Conn()
        h.ts.executor_added(ExecutorData(f"e{i}", "host", conn, 1))
    for job in range(20):
        h.submit(job, 2, job_id=job)
    assert h.running() == {0: 2}
    order = []
    calls.clear()
    for _ in range(38):
        task_id = min(h.ts.tasks)
        h.finish(task_id)
        order.append(h.newest_stage())
    # FAIR between task sets: fewest running first, ties by job: each job's 2 tasks in
    # turn (job 0 done, then 1's first task, ...); every slot refilled at once
    # FAIR between task sets: fewest running first, ties by job. Job 0's slot goes to
    # job 1; the next to job 2 (none running) before job 1's second task; and so on.
    assert order == [j for k in range(1, 19, 2) for j in (k, k + 1, k, k + 1)] + [19, 19]
    assert sum(h.running().values()) == 2
    # one ordering per launch; none for the busy executor when no stage is short
    # (before: 3 a launch, ordering again for each executor to find nothing to queue)
    assert calls["ordered_tsms"] == 38


def test_fifo_mode_keeps_the_long_job_first():
    h = Harness(None, executors=2)
    h.submit(0, 4, job_id=0)
    h.submit(1, 1, job_id=1)
    h.finish_one_of(0)
    assert h.running() == {0: 2}
    h.finish_one_of(0)
    h.finish_one_of(0)
    assert h.running() == {0: 1, 1: 1}


def test_pools_forget_finished_and_cancelled_task_sets():
    pools = tree(PoolSpec("p", FAIR))
    h = Harness(pools, executors=1)
    h.submit(0, 1, pool="p")
    h.submit(1, 3, pool="p")
    h.submit(2, 1, pool="unconfigured")
    h.finish_one_of(0)
    h.ts.cancel_tasks(1, "test")
    by_name = {p["name"]: p for p in pools.snapshot()}
    assert by_name["p"]["stages"] == []
    assert by_name["unconfigured"]["stages"] == [2]
    assert by_name["unconfigured"]["schedulingMode"] == FIFO  # Spark's defaults
    assert by_name["default"]["schedulingMode"] == FAIR


def test_a_resubmitted_stage_attempt_replaces_the_old_in_its_pool():
    pools = PoolTree()
    h = Harness(pools, executors=1)
    h.submit(0, 2)
    h.ts.submit_tasks(TaskSet(0, 1, 0, 0, b"bin", [0, 1], {}))
    (default,) = [p for p in pools.snapshot() if p["name"] == "default"]
    assert default["stages"] == [0]
    assert len(pools.pools["default"].tsms) == 1


# -- configuration --------------------------------------------------------------------

XML = """<?xml version="1.0"?>
<allocations>
  <pool name="production">
    <schedulingMode>FAIR</schedulingMode>
    <weight>1</weight>
    <minShare>2</minShare>
  </pool>
  <pool name="test">
    <schedulingMode>fifo</schedulingMode>
    <weight>2</weight>
  </pool>
</allocations>
"""
EXPECTED = {"production": PoolSpec("production", FAIR, 1, 2),
            "test": PoolSpec("test", FIFO, 2, 0)}


def test_sparks_xml_format(tmp_path):
    path = tmp_path / "fairscheduler.xml"
    path.write_text(XML)
    assert load_allocation_file(str(path)) == EXPECTED


def test_json_and_toml_equivalents(tmp_path):
    j = tmp_path / "pools.json"
    j.write_text(json.dumps({"pools": {
        "production": {"schedulingMode": "FAIR", "weight": 1, "minShare": 2},
        "test": {"schedulingMode": "FIFO", "weight": 2}}}))
    assert load_allocation_file(str(j)) == EXPECTED
    t = tmp_path / "pools.toml"
    t.write_text('[pools.production]\nschedulingMode = "FAIR"\nminShare = 2\n\n'
                 '[pools.test]\nweight = 2\n')
    assert load_allocation_file(str(t)) == EXPECTED
    # a list of pools with names works too
    assert parse_allocation('{"pools": [{"name": "test", "weight": 2}]}', "json") == {
        "test": EXPECTED["test"]}


@pytest.mark.parametrize(("text", "fmt", "message"), [
    ("<allocations><pool name='a'><weight>x</weight></pool></allocations>", "xml",
     "weight must be an integer"),
    ("<allocations><pool name='a'><weight>0</weight></pool></allocations>", "xml",
     "weight must be an integer >= 1"),
    ("<allocations><pool><weight>1</weight></pool></allocations>", "xml",
     "non-empty name"),
    ("<allocations><pool name='a'/><pool name='a'/></allocations>", "xml",
     "defined twice"),
    ("<allocations><pool name='a'><schedulingMode>LIFO</schedulingMode></pool>"
     "</allocations>", "xml", "schedulingMode must be FIFO or FAIR"),
    ("<pools/>", "xml", "root element must be <allocations>"),
    ("<allocations>", "xml", "not valid XML"),
    ('{"pools": {"a": {"minShare": -1}}}', "json", "minShare must be an integer >= 0"),
    ('{"pools": {"a": {"wieght": 2}}}', "json", "unknown setting(s) wieght"),
    ('{"pool": {}}', "json", "one top-level key 'pools'"),
    ("[pools.a\n", "toml", "not valid TOML"),
])
def test_bad_allocations_name_the_problem(text, fmt, message):
    with pytest.raises(ConfigError) as info:
        parse_allocation(text, fmt, "f.xml")
    assert message in str(info.value)
    assert "f.xml" in str(info.value)


def test_pools_from_config():
    assert pools_from_config(Config.from_items([])) is None  # FIFO: no pool tree
    # FIFO mode does not read the file (as Spark)
    assert pools_from_config(Config.from_items([
        ("spark.scheduler.allocation.file", "/no/such/file.xml")])) is None
    with pytest.raises(ConfigError, match="cannot read it"):
        pools_from_config(Config.from_items([
            ("spark.scheduler.mode", "FAIR"),
            ("spark.scheduler.allocation.file", "/no/such/file.xml")]))
    pools = pools_from_config(Config.from_items([
        ("spark.scheduler.mode", "fair"),
        ("asyncspark.scheduler.allocation", '{"pools": {"batch": {"weight": 3}}}')]))
    assert pools is not None
    assert pools.specs["batch"] == PoolSpec("batch", FIFO, 3, 0)
    with pytest.raises(ConfigError, match=r"spark\.scheduler\.mode: expected FIFO or FAIR"):
        Config.from_items([("spark.scheduler.mode", "round-robin")])
