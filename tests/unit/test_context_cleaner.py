"""The ContextCleaner with fakes: a collected shuffle dependency, broadcast or persisted
RDD is cleaned on the loop (also when the collection happens in another thread); a
shuffle the DAGScheduler still needs is kept and tried again; what is still referenced
is never cleaned; ``stop()`` detaches every finalizer. And ``forget_shuffle`` of the
DAGScheduler: never while a job or a registered stage needs the map stage."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from asyncspark import cleaner as cleaner_mod
from asyncspark.cleaner import ContextCleaner
from asyncspark.scheduler.dag_scheduler import DAGScheduler
from asyncspark.scheduler.events import CompletionEvent, JobSubmitted
from asyncspark.scheduler.stage import JobWaiter, ShuffleInfo


class FakeDep:
    """What track_lineage reads of a ShuffleDependency."""

    def __init__(self, sid: int, parent) -> None:
        self.shuffle_id = sid
        self.rdd = parent


class FakeRDD:
    def __init__(self, rdd_id: int, deps=(), level=None) -> None:
        self._id = rdd_id
        self._deps = list(deps)
        self._storage_level = level

    def id(self) -> int:
        return self._id


class FakeBroadcast:
    def __init__(self, bid: int) -> None:
        self.id = bid


class Recorder:
    def __init__(self) -> None:
        self.shuffles: list[int] = []
        self.broadcasts: list[int] = []
        self.rdds: list[int] = []
        self.busy: set[int] = set()

    def shuffle(self, sid: int) -> bool:
        if sid in self.busy:
            return False
        self.shuffles.append(sid)
        return True

    def broadcast(self, bid: int) -> bool:
        self.broadcasts.append(bid)
        return True

    def rdd(self, rdd_id: int):
        self.rdds.append(rdd_id)
        return None


@pytest.fixture
def shuffle_dep(monkeypatch):
    monkeypatch.setattr(cleaner_mod, "ShuffleDependency", FakeDep)


async def _settle(cond, rounds: int = 200) -> None:
    for _ in range(rounds):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the cleaner did not get there")


def _cleaner(rec: Recorder) -> ContextCleaner:
    c = ContextCleaner(asyncio.get_running_loop(), rec.shuffle, rec.broadcast, rec.rdd)
    c.start()
    return c


async def test_collected_things_are_cleaned_and_referenced_ones_are_not(shuffle_dep):
    rec = Recorder()
    c = _cleaner(rec)
    base = FakeRDD(1, level="MEMORY_ONLY")
    kept = FakeRDD(3, [FakeDep(7, base)])
    gone = FakeRDD(4, [FakeDep(8, FakeRDD(2, level="DISK_ONLY"))])
    c.track_lineage(kept)
    c.track_lineage(gone)
    c.track_lineage(gone)  # tracked once
    b_kept, b_gone = FakeBroadcast(0), FakeBroadcast(1)
    c.track_broadcast(b_kept)
    c.track_broadcast(b_gone)
    assert c.tracked == 6
    del gone, b_gone
    gc.collect()
    await _settle(lambda: rec.broadcasts and rec.shuffles and rec.rdds)
    assert (rec.shuffles, rec.broadcasts, rec.rdds) == ([8], [1], [2])
    assert (c.shuffles_cleaned, c.broadcasts_cleaned, c.rdds_cleaned) == (1, 1, 1)
    assert c.tracked == 3
    await c.stop()
    del kept, base, b_kept  # after stop(): nothing more is cleaned
    gc.collect()
    await asyncio.sleep(0.02)
    assert (rec.shuffles, rec.broadcasts, rec.rdds) == ([8], [1], [2])
    assert c.tracked == 0


async def test_a_collection_in_another_thread_is_cleaned_on_the_loop(shuffle_dep):
    rec = Recorder()
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def shuffle(sid: int) -> bool:
        seen.append(threading.get_ident())
        return rec.shuffle(sid)

    c = ContextCleaner(asyncio.get_running_loop(), shuffle, rec.broadcast, rec.rdd)
    c.start()
    holder = [FakeRDD(5, [FakeDep(3, FakeRDD(4))])]
    c.track_lineage(holder[0])
    t = threading.Thread(target=holder.clear)  # the last reference dies in that thread
    t.start()
    t.join()
    await _settle(lambda: rec.shuffles)
    assert rec.shuffles == [3]
    assert seen == [loop_thread]
    await c.stop()


async def test_a_shuffle_still_in_use_is_tried_again(shuffle_dep, monkeypatch):
    monkeypatch.setattr(cleaner_mod, "_RETRY_S", 0.01)
    rec = Recorder()
    rec.busy.add(9)
    c = _cleaner(rec)
    rdd = FakeRDD(2, [FakeDep(9, FakeRDD(1))])
    c.track_lineage(rdd)
    del rdd
    gc.collect()
    await asyncio.sleep(0.05)
    assert rec.shuffles == []  # in use: kept
    assert c.shuffles_cleaned == 0
    rec.busy.clear()  # the job that needed it ended
    await _settle(lambda: rec.shuffles)
    assert rec.shuffles == [9]
    assert c.shuffles_cleaned == 1
    await c.stop()


async def test_blocking_waits_for_each_rdd_removal(shuffle_dep):
    order: list[str] = []
    gate = asyncio.Event()

    async def removal(rdd_id: int) -> None:
        order.append(f"start {rdd_id}")
        await gate.wait()
        order.append(f"end {rdd_id}")

    def clean_rdd(rdd_id: int):
        return asyncio.get_running_loop().create_task(removal(rdd_id))

    c = ContextCleaner(asyncio.get_running_loop(), lambda s: True, lambda b: True, clean_rdd,
                       blocking=True)
    c.start()
    a, b = FakeRDD(1, level="x"), FakeRDD(2, level="x")
    c.track_lineage(a)
    c.track_lineage(b)
    del a, b
    gc.collect()
    await _settle(lambda: order)
    await asyncio.sleep(0.02)
    assert len(order) == 1  # the second waits for the first
    gate.set()
    await _settle(lambda: len(order) == 4)
    assert order[1].startswith("end")
    assert order[2].startswith("start")
    await c.stop()


# -- DAGScheduler.forget_shuffle ---------------------------------------------------------

class FakeTaskScheduler:
    def __init__(self) -> None:
        self.submitted: list = []

    def submit_tasks(self, taskset) -> None:
        self.submitted.append(taskset)

    def cancel_tasks(self, stage_id: int, reason: str) -> None:
        pass


def _run(dag: DAGScheduler, event) -> list:
    cmds = dag.handle(event)
    dag._execute(cmds)
    return cmds


def test_forget_shuffle_never_drops_a_map_stage_a_job_needs():
    loop = asyncio.new_event_loop()
    try:
        dag = DAGScheduler(FakeTaskScheduler(), clock=lambda: 0.0)
        infos = {0: ShuffleInfo(0, 5, 1, 1, b"m0", []), 1: ShuffleInfo(1, 6, 1, 1, b"m1", [0])}
        waiter = JobWaiter(loop.create_future(), 1)
        _run(dag, JobSubmitted(0, 7, 1, b"r", [0], waiter, {}, "", infos, [1]))
        (maps0,) = dag.task_scheduler.submitted
        assert dag.forget_shuffle(0) is False  # running, for job 0
        assert dag.forget_shuffle(1) is False  # waiting
        _run(dag, CompletionEvent(maps0.stage_id, 0, 1, 0, 0, "e1", True,
                                  ["e1", "h", 1, "p", [1]]))
        maps1 = dag.task_scheduler.submitted[-1]
        _run(dag, CompletionEvent(maps1.stage_id, 0, 2, 0, 0, "e1", True,
                                  ["e1", "h", 1, "p", [1]]))
        result = dag.task_scheduler.submitted[-1]
        _run(dag, CompletionEvent(result.stage_id, 0, 3, 0, 0, "e1", True, "done"))
        assert waiter.future.result() == ["done"]
        assert sorted(dag.shuffle_stages) == [0, 1]
        assert dag.forget_shuffle(0) is False  # shuffle 1's registered stage reads it
        assert dag.forget_shuffle(1) is True
        assert dag.forget_shuffle(0) is True
        assert dag.shuffle_stages == {}
        assert dag.stages == {}
        assert dag.forget_shuffle(0) is True  # unknown: nothing to do
    finally:
        loop.close()
