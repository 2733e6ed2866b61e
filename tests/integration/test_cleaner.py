"""The ContextCleaner with real executors (issue 11, item 6): shuffles, broadcasts and
cached RDDs that the driver no longer references are removed (map outputs, files on the
executors, the driver's state), so a long loop of jobs keeps disk and driver state
bounded; what is still referenced is kept and reused."""

from __future__ import annotations

import asyncio
import glob
import operator
import os
import uuid

import pytest

from asyncspark import Context, StorageLevel

pytestmark = pytest.mark.asyncio(loop_scope="function")

EXPECTED = {0: 63, 1: 70, 2: 57}


def _shuffle_files(sc) -> list[str]:
    return glob.glob(os.path.join(sc._backend.local_root, "executor-*", "shuffle_*"))


def _executor_state(_i, it):
    from asyncspark.runtime import get_env

    env = get_env()
    return [(env.executor_id, len(env.map_outputs), len(env.outputs))]


async def _small_job(sc) -> dict:
    rdd = sc.parallelize(range(20), 2).map(lambda x: (x % 3, x)).reduceByKey(operator.add, 2)
    return dict(await asyncio.wait_for(rdd.collect(), 60))


async def test_a_thousand_shuffle_jobs_keep_files_and_driver_state_bounded():
    async with Context("local[2]") as sc:
        most_files = 0
        for i in range(1000):
            assert await _small_job(sc) == EXPECTED
            if i % 50 == 49:
                most_files = max(most_files, len(_shuffle_files(sc)))
        await asyncio.sleep(0.1)  # the last job's clean-up
        assert sc.cleaner.shuffles_cleaned >= 990
        # Without the cleaner: 4,000 files (2 maps x data + index per job).
        assert most_files <= 24
        assert len(_shuffle_files(sc)) <= 24
        assert len(sc._dag.shuffle_stages) <= 5
        assert len(sc._dag.stages) <= 5
        assert len(sc._dag.map_outputs._shuffles) <= 5
        assert len(sc._stages._map_binaries) <= 5
        for ex in sc._task_scheduler.core.executors.values():
            assert len(ex.map_epochs) <= 5
        states = await sc.parallelize(range(8), 8).mapPartitionsWithIndex(
            _executor_state).collect()
        for _executor, locations, outputs in states:
            assert locations <= 5
            assert outputs <= 10


def _lookup(b):
    return lambda x: b.value[x]


async def test_broadcasts_and_cached_rdds_out_of_scope_are_removed():
    async with Context("local[2]") as sc:
        bdir = os.path.join(sc._backend.local_root, "driver-broadcasts")
        for _ in range(200):
            b = sc.broadcast(list(range(100)))
            rdd = sc.parallelize(range(20), 2).map(_lookup(b))
            rdd.persist(StorageLevel.DISK_ONLY)
            assert await asyncio.wait_for(rdd.sum(), 60) == 190
            assert await asyncio.wait_for(rdd.count(), 60) == 20
        del b, rdd
        for _ in range(100):
            if sc.cleaner.rdds_cleaned == 200 and sc.cleaner.broadcasts_cleaned == 200:
                break
            await asyncio.sleep(0.02)
        await sc._wait_unpersisted()
        assert sc.cleaner.broadcasts_cleaned == 200
        assert sc.cleaner.rdds_cleaned == 200
        assert os.listdir(bdir) == []
        assert sc._broadcasts._paths == {}
        blocks = glob.glob(os.path.join(sc._backend.local_root, "executor-*", "blocks", "*"))
        assert blocks == []
        assert sc._block_master.locations("rdd_0_0") == []


async def test_what_is_still_referenced_is_kept_and_reused(tmp_path):
    marks = str(tmp_path)

    def mark(i, it):
        open(os.path.join(marks, f"{i}-{uuid.uuid4().hex}"), "w").close()
        return it

    async with Context("local[2]") as sc:
        kept = sc.parallelize(range(20), 2).mapPartitionsWithIndex(mark) \
            .map(lambda x: (x % 3, x)).reduceByKey(operator.add, 2)
        cached = sc.parallelize(range(10), 2).mapPartitionsWithIndex(mark).cache()
        assert dict(await kept.collect()) == EXPECTED
        assert await cached.sum() == 45
        assert len(os.listdir(marks)) == 4
        for _ in range(50):
            assert await _small_job(sc) == EXPECTED
        await asyncio.sleep(0.1)
        assert sc.cleaner.shuffles_cleaned >= 45
        assert dict(await kept.collect()) == EXPECTED  # map outputs reused
        assert await cached.sum() == 45  # blocks still cached
        assert len(os.listdir(marks)) == 4  # nothing computed again
        assert sc.cleaner.rdds_cleaned == 0


async def test_reference_tracking_can_be_turned_off():
    async with Context("local[2]", conf={"spark.cleaner.referenceTracking": "false"}) as sc:
        assert sc.cleaner is None
        for _ in range(10):
            assert await _small_job(sc) == EXPECTED
        assert len(_shuffle_files(sc)) == 40
