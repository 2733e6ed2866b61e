import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_collect(sc):
    assert await sc.parallelize(range(10), 3).map(lambda x: x * x).collect() == [
        x * x for x in range(10)]


async def test_count(sc):
    assert await sc.parallelize([1], 1).count() == 1


def _preload_told(it):
    from asyncspark.runtime import get_env

    return [get_env().settings.preload]


async def test_executors_are_told_to_preload_the_task_modules(sc):
    from asyncspark.planner import TASK_MODULES

    told = await sc.parallelize(range(4), 4).mapPartitions(_preload_told).collect()
    assert told == [TASK_MODULES] * 4
