"""Reports and blocks larger than a frame, end to end (issue 11, item 9): a user
exception with a huge message keeps its type; a ``_2`` replica of a block larger than a
frame is streamed to its peer instead of skipped."""

from __future__ import annotations

import asyncio

import pytest

import asyncspark
from asyncspark.errors import JobFailedError

SMALL_FRAMES = {"asyncspark.rpc.maxFrameSize": "256k",
                "asyncspark.task.maxDirectResultSize": "64k",
                "spark.task.maxFailures": "1"}


async def test_a_huge_user_exception_keeps_its_type():
    def boom(x):
        raise KeyError("k" * (1 << 20))  # a 1 MiB message, 4x the frame limit

    async with asyncspark.Context("local[1]", conf=SMALL_FRAMES) as sc:
        with pytest.raises(JobFailedError) as info:
            await sc.parallelize([1], 1).map(boom).collect()
        assert type(info.value.__cause__) is KeyError
        assert "bytes cut" in str(info.value)
        assert "ResultTooLargeError" not in str(info.value)
        # and the context goes on
        assert await sc.parallelize(range(10), 2).sum() == 45


async def test_a_replica_bigger_than_a_frame_is_streamed_to_its_peer():
    from asyncspark.storage.level import StorageLevel

    async with asyncspark.Context("local[2]", conf=SMALL_FRAMES) as sc:
        # Both block managers registered first: a replica goes to the peers the driver
        # knows when the block is stored (as Spark's, fewer is only a warning).
        for _ in range(600):
            if len(sc._block_master.executors) == 2:
                break
            await asyncio.sleep(0.05)
        # Each partition pickles to ~1 MiB, four times asyncspark.rpc.maxFrameSize.
        rdd = sc.parallelize(range(2), 2).map(lambda i: bytes([i]) * (1 << 20))
        rdd.persist(StorageLevel.MEMORY_ONLY_2)
        assert await rdd.count() == 2
        master = sc._block_master
        blocks = [f"rdd_{rdd.id()}_{p}" for p in range(2)]
        for _ in range(200):
            if all(len(master.blocks.get(b, {})) == 2 for b in blocks):
                break
            await asyncio.sleep(0.05)
        assert {b: len(master.blocks.get(b, {})) for b in blocks} == {b: 2 for b in blocks}
        # Lose one executor: every block is still there, on the other one.
        victim = sc._backend.procs[sorted(sc._backend.procs)[0]]
        victim.kill()
        await victim.wait()
        assert await rdd.map(lambda b: (b[0], len(b))).collect() == [(0, 1 << 20),
                                                                     (1, 1 << 20)]
