"""Accumulators on real executors: updates of successful attempts only, result
partitions counted once under retries, custom params, no reading inside tasks."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from asyncspark import AccumulatorParam, JobFailedError

pytestmark = pytest.mark.asyncio(loop_scope="module")


class VectorParam(AccumulatorParam):
    def zero(self, value):
        return [0] * len(value)

    def addInPlace(self, value1, value2):
        for i, x in enumerate(value2):
            value1[i] += x
        return value1


async def test_tasks_add_and_the_driver_reads(sc):
    total = sc.accumulator(0)
    evens = sc.accumulator(0.0)

    def visit(x):
        total.add(x)
        if x % 2 == 0:
            evens.add(0.5)

    await sc.parallelize(range(100), 4).foreach(visit)
    assert total.value == sum(range(100))
    assert evens.value == 25.0
    # a second job adds to the same accumulator
    await sc.parallelize(range(10), 3).foreach(lambda x: total.add(1))
    assert total.value == sum(range(100)) + 10


async def test_custom_param(sc):
    vec = sc.accumulator([0, 0, 0], VectorParam())
    await sc.parallelize(range(30), 5).foreach(lambda x: vec.add([1, x, x % 3]))
    assert vec.value == [30, sum(range(30)), sum(x % 3 for x in range(30))]


async def test_map_stage_updates_count(sc):
    seen = sc.accumulator(0)

    def tag(x):
        seen.add(1)
        return (x % 3, 1)

    counts = await sc.parallelize(range(60), 4).map(tag).reduceByKey(
        lambda a, b: a + b).collectAsMap()
    assert counts == {0: 20, 1: 20, 2: 20}
    assert seen.value == 60


async def test_failed_attempt_updates_are_dropped_and_retries_count_once(sc, tmp_path):
    acc = sc.accumulator(0)
    marker = str(tmp_path / f"failed-once-{uuid.uuid4().hex}")

    def work(it):
        n = 0
        for x in it:
            acc.add(1)
            n += x
        if n == sum(range(10, 20)) and not os.path.exists(marker):
            open(marker, "w").close()
            acc.add(1000)  # added by the failing attempt: must not count
            raise RuntimeError("first attempt fails on purpose")
        yield n

    sums = await sc.parallelize(range(40), 4).mapPartitions(work).collect()
    assert await asyncio.to_thread(os.path.exists, marker)  # it failed and was retried
    assert sums == [sum(range(i, i + 10)) for i in range(0, 40, 10)]
    assert acc.value == 40


async def test_reading_value_inside_a_task_fails_the_job(sc):
    acc = sc.accumulator(0)
    with pytest.raises(JobFailedError, match="cannot be accessed inside tasks") as info:
        await sc.parallelize([1], 1).map(lambda x: acc.value + x).collect()
    assert "accumulator" in str(info.value)
    assert acc.value == 0
