"""persist/cache/unpersist with real executor processes: every storage level, eviction
and disk fallback under a small memory budget, replication and OFF_HEAP surviving
SIGKILLed executors, one computation per partition under concurrent jobs, unpersist
freeing memory, disk and shared memory, tasks running where their blocks are.

Computations are counted with a file per computation (a side effect the cache cannot
hide), written by a ``mapPartitionsWithIndex`` upstream of the persisted RDD.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import uuid

import pytest
import pytest_asyncio

from asyncspark import Context, StorageLevel

pytestmark = pytest.mark.asyncio(loop_scope="module")

N, PARTS = 400, 4
EXPECTED = [x * 3 for x in range(N)]


def counted(sc, marks: str, n: int = N, parts: int = PARTS, delay: float = 0.0):
    """An RDD of ``x * 3`` whose every partition computation leaves a file in ``marks``."""
    os.makedirs(marks, exist_ok=True)

    def mark(i, it):
        open(os.path.join(marks, f"{i}-{uuid.uuid4().hex}"), "w").close()
        if delay:
            time.sleep(delay)  # workload: keeps concurrent jobs overlapping
        return it

    return sc.parallelize(range(n), parts).mapPartitionsWithIndex(mark).map(lambda x: x * 3)


def computations(marks: str) -> collections.Counter:
    return collections.Counter(int(name.split("-")[0]) for name in os.listdir(marks))


def executor_of(_i, it):
    from asyncspark.runtime import get_env

    return [(_i, get_env().executor_id, sum(it))]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sc():
    async with Context("local[2]", app_name="storage") as ctx:
        yield ctx


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def small():
    """One executor whose memory store holds about two of the 4 partitions."""
    conf = {"asyncspark.storage.memoryBudget": "40k"}
    async with Context("local[1]", app_name="storage-small", conf=conf) as ctx:
        yield ctx


LEVELS = ["MEMORY_ONLY", "MEMORY_ONLY_SER", "MEMORY_ONLY_2", "MEMORY_AND_DISK",
          "MEMORY_AND_DISK_SER_2", "DISK_ONLY", "DISK_ONLY_2", "OFF_HEAP"]


@pytest.mark.parametrize("name", LEVELS)
async def test_every_level_computes_each_partition_once(sc, tmp_path, name):
    level = getattr(StorageLevel, name)
    rdd = counted(sc, str(tmp_path)).persist(level)
    assert rdd.is_cached
    assert rdd.getStorageLevel() == level
    assert await rdd.collect() == EXPECTED
    assert await rdd.sum() == sum(EXPECTED)
    assert await rdd.map(lambda x: x + 1).count() == N
    assert computations(str(tmp_path)) == {p: 1 for p in range(PARTS)}
    blocks = sc._block_master.rdd_blocks(rdd.id())
    assert sorted(blocks) == [f"rdd_{rdd.id()}_{p}" for p in range(PARTS)]
    for status in blocks.values():
        wheres = sorted(s.where for s in status.values())
        if level.useOffHeap:
            assert wheres == ["offheap"]
        else:
            assert len(wheres) == level.replication  # one copy per executor
            assert set(wheres) == {"memory" if level.useMemory else "disk"}
    rdd.unpersist()
    assert not rdd.is_cached
    assert rdd.getStorageLevel() == StorageLevel(False, False, False, False, 1)
    await sc._wait_unpersisted()
    assert sc._block_master.rdd_blocks(rdd.id()) == {}
    assert await rdd.count() == N
    assert computations(str(tmp_path)) == {p: 2 for p in range(PARTS)}


async def test_cache_is_memory_only_and_levels_cannot_change(sc):
    rdd = sc.parallelize(range(3)).cache()
    assert rdd.getStorageLevel() == StorageLevel.MEMORY_ONLY
    assert rdd.persist() is rdd
    with pytest.raises(ValueError, match="Cannot change storage level"):
        rdd.persist(StorageLevel.DISK_ONLY)
    with pytest.raises(TypeError, match="StorageLevel"):
        rdd.unpersist().persist("MEMORY_ONLY")


async def test_tasks_run_where_their_partitions_are_cached(sc, tmp_path):
    rdd = counted(sc, str(tmp_path), parts=6).cache()
    await rdd.count()
    where = {int(b.rsplit("_", 1)[1]): next(iter(s))
             for b, s in sc._block_master.rdd_blocks(rdd.id()).items()}
    assert len(set(where.values())) == 2  # spread over both executors
    ran = await rdd.mapPartitionsWithIndex(executor_of).collect()
    assert {i: e for i, e, _ in ran} == where
    assert computations(str(tmp_path)) == {p: 1 for p in range(6)}
    rdd.unpersist()


async def test_concurrent_jobs_compute_each_partition_once(sc, tmp_path):
    rdd = counted(sc, str(tmp_path), delay=0.2).persist(StorageLevel.MEMORY_ONLY)
    results = await asyncio.gather(rdd.collect(), rdd.sum(), rdd.count(), rdd.collect())
    assert results == [EXPECTED, sum(EXPECTED), N, EXPECTED]
    assert computations(str(tmp_path)) == {p: 1 for p in range(PARTS)}
    assert sc._block_master.leases == {}
    rdd.unpersist()


async def test_unpersist_frees_disk_and_shared_memory(sc, tmp_path):
    disk = counted(sc, str(tmp_path / "d")).persist(StorageLevel.DISK_ONLY)
    shm = counted(sc, str(tmp_path / "s")).persist(StorageLevel.OFF_HEAP)
    await disk.count()
    await shm.count()
    root = sc._backend.local_root
    offheap = sc._block_master.offheap_dir
    assert offheap.startswith(("/dev/shm/", os.environ.get("TMPDIR", "/tmp")))

    def files(prefix):
        return sorted(name for _, _, names in os.walk(root) for name in names
                      if name.startswith(prefix)), sorted(
            n for n in os.listdir(offheap) if n.startswith(prefix))

    assert len(files(f"rdd_{disk.id()}_")[0]) == PARTS
    assert len(files(f"rdd_{shm.id()}_")[1]) == PARTS
    disk.unpersist()
    shm.unpersist()
    await sc._wait_unpersisted()
    assert files(f"rdd_{disk.id()}_") == ([], [])
    assert files(f"rdd_{shm.id()}_") == ([], [])


async def test_replicas_survive_the_loss_of_an_executor(sc, tmp_path):
    rdd = counted(sc, str(tmp_path)).persist(StorageLevel.MEMORY_ONLY_2)
    assert await rdd.sum() == sum(EXPECTED)
    victim = sc._backend.procs[sorted(sc._backend.procs)[0]]
    os.kill(victim.pid, signal.SIGKILL)
    await victim.wait()
    assert await rdd.collect() == EXPECTED
    assert computations(str(tmp_path)) == {p: 1 for p in range(PARTS)}  # no recomputation
    rdd.unpersist()


async def test_off_heap_blocks_survive_the_crash_of_every_executor(sc, tmp_path):
    # Every executor registered first: the previous test's replacement may still be
    # starting, and this test is about the crash of registered executors.
    deadline = time.monotonic() + 30
    while len(sc._task_scheduler.executors) < 2:
        assert time.monotonic() < deadline, "the replacement executor never registered"
        await asyncio.sleep(0.05)
    rdd = counted(sc, str(tmp_path)).persist(StorageLevel.OFF_HEAP)
    assert await rdd.count() == N
    procs = list(sc._backend.procs.values())
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
    for proc in procs:
        await proc.wait()
    assert await rdd.collect() == EXPECTED  # read by the replacement executors
    assert computations(str(tmp_path)) == {p: 1 for p in range(PARTS)}
    rdd.unpersist()


# -- a small memory budget ------------------------------------------------------------------

def usage(sc):
    def report(_):
        from asyncspark.runtime import get_env

        return [get_env().block_manager.usage()]

    return sc.parallelize([0], 1).mapPartitions(report).collect()


async def test_memory_only_evicts_and_recomputes_under_a_small_budget(small, tmp_path):
    rdd = counted(small, str(tmp_path), n=4000).persist(StorageLevel.MEMORY_ONLY)
    assert await rdd.count() == 4000
    [u] = await usage(small)
    assert 0 < len(u["memory"]) < PARTS
    assert u["memory_used"] <= 40 * 1024
    assert u["disk"] == []
    assert await rdd.sum() == sum(x * 3 for x in range(4000))
    counts = computations(str(tmp_path))
    assert sorted(counts) == list(range(PARTS))
    assert sum(counts.values()) > PARTS  # evicted partitions were computed again
    rdd.unpersist()
    await small._wait_unpersisted()
    [u] = await usage(small)
    assert u == {"memory": [], "memory_used": 0, "disk": []}


async def test_memory_and_disk_spills_evicted_blocks_to_disk(small, tmp_path):
    rdd = counted(small, str(tmp_path), n=4000).persist(StorageLevel.MEMORY_AND_DISK)
    assert await rdd.count() == 4000
    [u] = await usage(small)
    assert u["disk"]
    assert len(u["memory"]) + len(u["disk"]) == PARTS
    assert await rdd.sum() == sum(x * 3 for x in range(4000))
    assert computations(str(tmp_path)) == {p: 1 for p in range(PARTS)}
    wheres = {s.where for st in small._block_master.rdd_blocks(rdd.id()).values()
              for s in st.values()}
    assert wheres == {"memory", "disk"}
    rdd.unpersist()
    await small._wait_unpersisted()
    [u] = await usage(small)
    assert u == {"memory": [], "memory_used": 0, "disk": []}
