"""Checkpoints on real executors: written after the next job, lineage truncated (in
``dependencies``, ``toDebugString`` and the stages), read back from the files."""

from __future__ import annotations

import asyncio
import os

import pytest

import asyncspark
from asyncspark import JobFailedError, SparkListener
from asyncspark.rdds.checkpoint import LocalCheckpointRDD, ReliableCheckpointRDD

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_checkpoint_needs_a_directory():
    rdd = asyncspark.Context("local[1]").parallelize([1, 2])  # no executors needed
    with pytest.raises(RuntimeError, match="Checkpoint directory has not been set"):
        rdd.checkpoint()


async def test_checkpoint_truncates_the_lineage(sc, tmp_path):
    sc.setCheckpointDir(str(tmp_path))
    assert sc.getCheckpointDir().startswith(str(tmp_path))
    sums = (sc.parallelize(range(100), 4).map(lambda x: (x % 5, x))
            .reduceByKey(lambda a, b: a + b, 3).mapValues(lambda v: v * 2))
    sums.checkpoint()
    assert not sums.isCheckpointed()
    assert sums.getCheckpointFile() is None
    expected = {k: 2 * sum(range(k, 100, 5)) for k in range(5)}
    assert dict(await sums.collect()) == expected

    assert sums.isCheckpointed()
    assert not sums.isLocallyCheckpointed()
    directory = sums.getCheckpointFile()
    assert directory == os.path.join(sc.getCheckpointDir(), f"rdd-{sums.id()}")
    files = sorted(await asyncio.to_thread(os.listdir, directory))
    assert files == ["part-00000", "part-00001", "part-00002"]
    (dep,) = sums.dependencies
    assert isinstance(dep.rdd, ReliableCheckpointRDD)
    assert dep.rdd.dependencies == []
    assert sums.getNumPartitions() == 3
    assert sums.partitioner is not None  # kept: mapValues preserved the partitioning
    debug = sums.toDebugString().decode()
    assert "ReliableCheckpointRDD" in debug
    assert "ShuffledRDD" not in debug
    assert sc._stages.shuffle_graph(sums) == ([], {})  # no stage before the result stage
    # read back from the files, also by children
    assert dict(await sums.collect()) == expected
    assert await sums.map(lambda kv: kv[1]).sum() == sum(expected.values())
    assert await sums.count() == 5


async def test_checkpoint_outlives_its_source(sc, tmp_path):
    sc.setCheckpointDir(str(tmp_path / "checkpoints"))
    source = tmp_path / "input.txt"
    source.write_text("".join(f"line {i}\n" for i in range(50)))
    lines = sc.textFile(str(source), 3).map(str.upper)
    lines.checkpoint()
    assert await lines.count() == 50
    assert lines.isCheckpointed()
    source.unlink()
    assert await lines.collect() == [f"LINE {i}" for i in range(50)]
    assert await lines.filter(lambda s: s.endswith("7")).count() == 5


async def test_checkpoint_after_a_job_that_needed_it_only_partly(sc, tmp_path):
    sc.setCheckpointDir(str(tmp_path))
    rdd = sc.parallelize(range(30), 3).map(lambda x: x + 1)
    rdd.checkpoint()
    assert await rdd.take(2) == [1, 2]  # as Spark: the whole RDD is written afterwards
    assert rdd.isCheckpointed()
    assert await rdd.collect() == list(range(1, 31))


async def test_local_checkpoint(sc):
    rdd = sc.parallelize(range(40), 4).map(lambda x: x * 3)
    rdd.localCheckpoint()
    assert await rdd.sum() == 3 * sum(range(40))
    assert rdd.isCheckpointed()
    assert rdd.isLocallyCheckpointed()
    assert rdd.getCheckpointFile() is None
    (dep,) = rdd.dependencies
    assert isinstance(dep.rdd, LocalCheckpointRDD)
    assert "LocalCheckpointRDD" in rdd.toDebugString().decode()
    for executor_id, _host, path in dep.rdd.locations:
        assert f"executor-{executor_id}" in path
        assert await asyncio.to_thread(os.path.exists, path)
    assert await rdd.collect() == [3 * x for x in range(40)]


class _Removed(SparkListener):
    def __init__(self) -> None:
        self.removed = asyncio.Event()

    def onExecutorRemoved(self, event) -> None:
        self.removed.set()


async def test_local_checkpoint_lost_with_its_executor():
    async with asyncspark.Context("local[2]") as ctx:
        rdd = ctx.parallelize(range(20), 4).map(lambda x: -x)
        rdd.localCheckpoint()
        assert await rdd.count() == 20
        locations = rdd.dependencies[0].rdd.locations
        victim = locations[0][0]
        listener = _Removed()
        ctx.addSparkListener(listener)
        ctx._backend.kill_executor(victim, "test: lose a local checkpoint")
        await listener.removed.wait()
        lost = [i for i, loc in enumerate(locations) if loc[0] == victim]
        with pytest.raises(JobFailedError,
                           match=rf"Checkpoint block rdd_{rdd.id()}_{lost[0]} not found"):
            await rdd.collect()
        kept = [i for i, loc in enumerate(locations) if loc[0] != victim]
        if kept:  # partitions of the surviving executor are still there
            got = await ctx.runJob(rdd, lambda it: list(it), kept)
            assert got == [-x for i in kept for x in range(5 * i, 5 * i + 5)]
