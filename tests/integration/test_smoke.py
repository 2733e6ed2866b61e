import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_collect(sc):
    assert await sc.parallelize(range(10), 3).map(lambda x: x * x).collect() == [
        x * x for x in range(10)]


async def test_count(sc):
    assert await sc.parallelize([1], 1).count() == 1
