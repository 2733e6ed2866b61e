"""Broadcast variables on real executors: one fetch per executor, values larger than a
frame, unpersist and destroy."""

from __future__ import annotations

import asyncio
import os

import cloudpickle
import pytest

import asyncspark
from asyncspark import Broadcast, JobFailedError
from asyncspark.errors import BroadcastDestroyedError
from asyncspark.planner import task_binary
from asyncspark.runtime import get_env

pytestmark = pytest.mark.asyncio(loop_scope="module")


def where_and(f):
    """``x -> (executor id, f(x))``, run in a task."""
    return lambda x: (get_env().executor_id, f(x))


async def test_value_is_fetched_once_per_executor(sc):
    table = {i: i * i for i in range(1000)}
    b = sc.broadcast(table)
    assert isinstance(b, Broadcast)
    assert b.value is table  # the driver keeps its own value
    out = await sc.parallelize(range(40), 8).map(
        where_and(lambda x: b.value[x])).collect()
    assert [v for _, v in out] == [x * x for x in range(40)]
    executors = {e for e, _ in out}
    assert sc._broadcasts.fetches[b.id] == len(executors)
    # later jobs on the same executors use their copies
    out = await sc.parallelize(range(40), 8).map(where_and(lambda x: len(b.value))).collect()
    assert {v for _, v in out} == {1000}
    assert sc._broadcasts.fetches[b.id] == len(executors | {e for e, _ in out})


async def test_task_binary_carries_a_reference_only(sc):
    b = sc.broadcast(os.urandom(1 << 20))
    rdd = sc.parallelize([0], 1).map(lambda x: len(b.value))
    assert len(task_binary(rdd, list)) < 20_000
    assert await rdd.collect() == [1 << 20]


async def test_unpersist_drops_executor_copies_and_they_are_fetched_again(sc):
    b = sc.broadcast(list(range(100)))
    first = await sc.parallelize(range(8), 8).map(where_and(lambda x: sum(b.value))).collect()
    assert {v for _, v in first} == {4950}
    fetched = sc._broadcasts.fetches[b.id]
    b.unpersist()
    second = await sc.parallelize(range(8), 8).map(where_and(lambda x: b.value[x])).collect()
    assert [v for _, v in second] == list(range(8))
    assert sc._broadcasts.fetches[b.id] == fetched + len({e for e, _ in second})
    assert b.value == list(range(100))  # the driver's value stays


async def test_destroyed_broadcast_raises_on_the_driver_and_in_tasks(sc):
    b = sc.broadcast({"k": 1})
    assert await sc.parallelize([1], 1).map(lambda x: b.value["k"] + x).collect() == [2]
    # a task pickled while the broadcast was alive, run after destroy()
    stale = cloudpickle.dumps(lambda x: b.value["k"])
    b.destroy()
    with pytest.raises(BroadcastDestroyedError, match=rf"Broadcast\({b.id}\).*destroyed"):
        _ = b.value
    with pytest.raises(BroadcastDestroyedError, match=rf"Broadcast\({b.id}\)"):
        await sc.parallelize([1], 1).map(lambda x: b.value).collect()
    with pytest.raises(JobFailedError, match=rf"Broadcast\({b.id}\) after it was destroyed"):
        await sc.parallelize([1], 1).map(
            lambda x: cloudpickle.loads(stale)(x)).collect()
    with pytest.raises(BroadcastDestroyedError):
        b.unpersist()
    files = await asyncio.to_thread(os.listdir, sc._broadcasts.directory)
    assert f"broadcast-{b.id}" not in files


async def test_value_larger_than_a_frame():
    conf = {"asyncspark.rpc.maxFrameSize": "64k"}
    async with asyncspark.Context("local[2]", conf=conf) as ctx:
        blob = os.urandom(600_000)  # about ten frames
        b = ctx.broadcast(blob)
        out = await ctx.parallelize(range(4), 4).map(
            lambda i: (len(b.value), b.value[i * 1000])).collect()
        assert out == [(len(blob), blob[i * 1000]) for i in range(4)]
        assert ctx._broadcasts.server.stats.chunks_sent >= 10
