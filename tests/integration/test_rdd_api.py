"""The RDD API against the results PySpark documents, on real executor processes.

Where an input is one of PySpark's doctests (``pyspark/core/rdd.py``,
``pyspark/core/context.py``) or unit tests (``pyspark/tests/test_rdd.py``) the comment says
so; the expected value is PySpark's output for that input.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import operator
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark import JobFailedError, StatCounter, TaskContext
from asyncspark.planner import task_binary

pytestmark = pytest.mark.asyncio(loop_scope="module")

add = operator.add


class _JobRecorder:
    """A listener recording job starts/ends and the task count of each stage."""

    def __init__(self) -> None:
        self.jobs: list = []
        self.ends: list = []
        self.stage_tasks: list[int] = []

    def onJobStart(self, event) -> None:
        self.jobs.append(event)

    def onJobEnd(self, event) -> None:
        self.ends.append(event)

    def onStageSubmitted(self, event) -> None:
        self.stage_tasks.append(event.numTasks)


@contextlib.asynccontextmanager
async def recording(sc):
    """Record the jobs run inside the block; events are delivered once the block exits.

    The listener bus delivers asynchronously and in order: wait a moment, then until every
    recorded job has ended (its end is queued after its start).
    """
    rec = _JobRecorder()
    sc.addSparkListener(rec)
    try:
        yield rec
        await asyncio.sleep(0.05)
        for _ in range(200):
            if len(rec.ends) == len(rec.jobs):
                break
            await asyncio.sleep(0.01)
    finally:
        sc.removeSparkListener(rec)


def read_lines(path: str) -> list[str]:
    with open(path) as f:
        return f.read().splitlines()


def pyspark_range_slices(r: range, n: int) -> list[list[int]]:
    """PySpark's ``parallelize(range)`` slicing (``SparkContext.parallelize``), for reference."""
    size = len(r)
    if size == 0:
        return [[] for _ in range(n)]
    step = r[1] - r[0] if size > 1 else 1
    start0 = r[0]

    def start(i):
        return start0 + int(i * size / n) * step

    return [list(range(start(i), start(i + 1), step)) for i in range(n)]


# -- creating RDDs -------------------------------------------------------------------------


async def test_parallelize_list_partitions(sc):
    # doctests of SparkContext.parallelize
    assert await sc.parallelize([0, 2, 3, 4, 6], 5).glom().collect() == [[0], [2], [3], [4], [6]]
    assert await sc.parallelize(["a", "b", "c"], 2).glom().collect() == [["a"], ["b", "c"]]
    # Spark's ParallelCollectionRDD.slice: partition i holds [i*n/k, (i+1)*n/k)
    assert await sc.parallelize(list(range(10)), 3).glom().collect() == [
        [0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert await sc.parallelize([1, 2], 4).glom().collect() == [[], [1], [], [2]]
    assert await sc.parallelize([], 3).glom().collect() == [[], [], []]


async def test_parallelize_range_partitions(sc):
    # doctest of SparkContext.parallelize
    assert await sc.parallelize(range(0, 6, 2), 5).glom().collect() == [[], [0], [], [2], [4]]
    for r, n in [(range(10), 3), (range(10), 4), (range(1, 100, 7), 6), (range(10, 0, -3), 2),
                 (range(5), 8), (range(7, 8), 3), (range(0), 2), (range(-5, 5, 2), 3)]:
        assert await sc.parallelize(r, n).glom().collect() == pyspark_range_slices(r, n), (r, n)


async def test_parallelize_other_iterables(sc):
    # doctest of RDD.reduce: a generator is materialized on the driver
    assert await sc.parallelize(2 for _ in range(10)).map(lambda x: 1).reduce(add) == 10
    assert sorted(await sc.parallelize({3, 1, 2}, 2).collect()) == [1, 2, 3]
    assert await sc.parallelize("abc", 1).collect() == ["a", "b", "c"]
    # a list changed after parallelize() does not change the RDD
    data = [1, 2, 3]
    rdd = sc.parallelize(data, 2)
    data.append(4)
    assert await rdd.collect() == [1, 2, 3]


async def test_parallelize_num_slices(sc):
    assert sc.parallelize([1, 2, 3]).getNumPartitions() == sc.defaultParallelism == 2
    assert sc.parallelize([1, 2, 3], 7).getNumPartitions() == 7
    assert sc.parallelize([1, 2, 3], 2.0).getNumPartitions() == 2  # int(numSlices), as PySpark
    with pytest.raises(ValueError):
        sc.parallelize([1, 2, 3], 0)


async def test_range(sc):
    # doctests of SparkContext.range
    assert await sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert await sc.range(2, 4).collect() == [2, 3]
    assert await sc.range(1, 7, 2).collect() == [1, 3, 5]
    assert await sc.range(5, 0, -1).collect() == [5, 4, 3, 2, 1]
    assert await sc.range(0, 5, -1).collect() == []
    assert sc.range(5, numSlices=1).getNumPartitions() == 1
    assert sc.range(5, numSlices=10).getNumPartitions() == 10
    assert await sc.range(0, 10, 3, 4).glom().collect() == pyspark_range_slices(
        range(0, 10, 3), 4)
    # a range is never materialized: a large one is cheap
    big = sc.range(10**12, 10**12 + 10**6, numSlices=4)
    assert await big.count() == 10**6
    assert await big.sum() == sum(range(10**12, 10**12 + 10**6))


async def test_empty_rdd(sc):
    # doctest of SparkContext.emptyRDD: ``sc.emptyRDD().count()`` is 0
    e = sc.emptyRDD()
    assert "EmptyRDD" in repr(e)
    assert e.getNumPartitions() == 0
    assert await e.count() == 0
    assert await e.collect() == []
    assert await e.take(3) == []
    assert await e.isEmpty()
    assert await e.map(lambda x: x).glom().collect() == []
    assert await e.fold(0, add) == 0
    assert await e.aggregate((0, 0), add, add) == (0, 0)
    assert await e.sum() == 0
    assert await e.top(2) == []
    assert await e.takeOrdered(2) == []
    with pytest.raises(ValueError, match="empty"):
        await e.reduce(add)
    with pytest.raises(ValueError, match="RDD is empty"):
        await e.first()


async def test_union(sc):
    # doctests of RDD.union and RDD.__add__
    rdd = sc.parallelize([1, 1, 2, 3])
    assert await rdd.union(rdd).collect() == [1, 1, 2, 3, 1, 1, 2, 3]
    assert await (rdd + rdd).collect() == [1, 1, 2, 3, 1, 1, 2, 3]
    with pytest.raises(TypeError):
        rdd + [1]  # noqa: RUF005
    a = sc.parallelize([1, 2], 2)
    b = sc.parallelize([3, 4, 5], 3)
    u = sc.union([a, b, sc.emptyRDD(), a.map(lambda x: -x)])
    assert u.getNumPartitions() == 2 + 3 + 0 + 2
    assert await u.glom().collect() == [[1], [2], [3], [4], [5], [-1], [-2]]
    assert await sc.union([a]).collect() == [1, 2]
    assert await u.count() == 7


# -- transformations -----------------------------------------------------------------------


async def test_map_flatmap_filter(sc):
    # doctests of RDD.map, RDD.flatMap, RDD.filter
    rdd = sc.parallelize(["b", "a", "c"])
    assert sorted(await rdd.map(lambda x: (x, 1)).collect()) == [("a", 1), ("b", 1), ("c", 1)]
    rdd = sc.parallelize([2, 3, 4])
    assert sorted(await rdd.flatMap(lambda x: range(1, x)).collect()) == [1, 1, 1, 2, 2, 3]
    assert sorted(await rdd.flatMap(lambda x: [(x, x), (x, x)]).collect()) == [
        (2, 2), (2, 2), (3, 3), (3, 3), (4, 4), (4, 4)]
    assert await sc.parallelize([1, 2, 3, 4, 5]).filter(lambda x: x % 2 == 0).collect() == [2, 4]


async def test_map_partitions(sc):
    # doctests of RDD.mapPartitions, RDD.mapPartitionsWithIndex, RDD.glom
    rdd = sc.parallelize([1, 2, 3, 4], 2)

    def f(iterator):
        yield sum(iterator)

    assert await rdd.mapPartitions(f).collect() == [3, 7]

    def g(splitIndex, iterator):
        yield splitIndex

    assert await sc.parallelize([1, 2, 3, 4], 4).mapPartitionsWithIndex(g).sum() == 6
    assert await sc.parallelize([1, 2, 3, 4], 4).mapPartitionsWithSplit(g).sum() == 6
    assert await rdd.glom().collect() == [[1, 2], [3, 4]]
    # a function returning a list (not an iterator) is fine too
    assert await rdd.mapPartitions(lambda it: [list(it)]).collect() == [[1, 2], [3, 4]]
    assert await sc.parallelize(range(6), 3).mapPartitionsWithIndex(
        lambda i, it: ((i, x) for x in it)).collect() == [
        (0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)]


async def test_pair_transformations(sc):
    # RDD.keyBy (values of its doctest without the cogroup)
    assert await sc.parallelize(range(0, 3)).keyBy(lambda x: x * x).collect() == [
        (0, 0), (1, 1), (4, 2)]
    # doctest of RDD.mapValues
    x = sc.parallelize([("a", ["apple", "banana", "lemon"]), ("b", ["grapes"])])
    assert await x.mapValues(len).collect() == [("a", 3), ("b", 1)]
    # doctest of RDD.flatMapValues
    x = sc.parallelize([("a", ["x", "y", "z"]), ("b", ["p", "r"])])
    assert await x.flatMapValues(lambda v: v).collect() == [
        ("a", "x"), ("a", "y"), ("a", "z"), ("b", "p"), ("b", "r")]
    # doctests of RDD.keys and RDD.values
    assert await sc.parallelize([(1, 2), (3, 4)]).keys().collect() == [1, 3]
    assert await sc.parallelize([(1, 2), (3, 4)]).values().collect() == [2, 4]


async def test_stop_iteration_in_user_code_fails_the_task(sc):
    # pyspark/tests/test_rdd.py test_stopiteration_in_user_code: a StopIteration raised by
    # a user function must fail the task, not silently end the partition
    def stopit(*x):
        raise StopIteration()

    seq = sc.parallelize(range(10), 2)
    for action in (lambda: seq.map(stopit).collect(), lambda: seq.filter(stopit).collect(),
                   lambda: seq.flatMap(stopit).collect(), lambda: seq.foreach(stopit),
                   lambda: seq.reduce(stopit), lambda: seq.fold(0, stopit),
                   lambda: seq.keyBy(stopit).collect(),
                   lambda: seq.aggregate(0, stopit, lambda *x: 1)):
        with pytest.raises(JobFailedError, match="StopIteration"):
            await action()


async def test_sample(sc):
    rdd = sc.parallelize(range(100), 4)
    # doctest of RDD.sample
    assert 6 <= await rdd.sample(False, 0.1, 81).count() <= 14
    # pyspark/tests/test_rdd.py test_sample: a seed fixes the sample, seeds differ
    assert await rdd.sample(False, 0.1, 2).collect() == await rdd.sample(False, 0.1, 2).collect()
    assert await rdd.sample(True, 0.2, 5).collect() == await rdd.sample(True, 0.2, 5).collect()
    assert set(await rdd.sample(False, 0.3, 10).collect()) != set(
        await rdd.sample(False, 0.3, 20).collect())
    assert set(await rdd.sample(True, 0.4, 11).collect()) != set(
        await rdd.sample(True, 0.4, 21).collect())
    # PySpark's published output for sc.range(0, 100) on local[1] (one partition), as
    # printed in sparkbyexamples.com's "PySpark sample()" article:
    one = sc.range(0, 100, numSlices=1)
    assert await one.sample(False, 0.1, 0).collect() == [24, 29, 41, 64, 86]
    assert await one.sample(True, 0.3, 123).collect() == [
        0, 11, 13, 14, 16, 18, 21, 23, 27, 31, 32, 32, 48, 49, 49, 53, 54, 72, 74, 77, 77, 83,
        88, 91, 93, 98, 99]
    # without replacement: a subset in order; with: duplicates allowed
    s = await rdd.sample(False, 0.5, 7).collect()
    assert s == sorted(set(s))
    assert set(s) <= set(range(100))
    big = sc.range(20000, numSlices=4)
    n = await big.sample(False, 0.25, 3).count()
    assert 0.22 * 20000 < n < 0.28 * 20000
    n = await big.sample(True, 0.25, 3).count()
    assert 0.22 * 20000 < n < 0.28 * 20000
    n = await big.sample(True, 2.0, 3).count()  # fractions > 1 with replacement
    assert 1.9 * 20000 < n < 2.1 * 20000
    assert await big.sample(False, 0.0, 1).count() == 0
    assert await big.sample(False, 1.0, 1).count() == 20000
    # no seed: still a sample (different every time)
    assert await big.sample(False, 0.5).count() > 0
    with pytest.raises(ValueError, match="nonnegative"):
        rdd.sample(False, -0.1)


async def test_coalesce(sc):
    # doctest of RDD.coalesce
    assert await sc.parallelize([1, 2, 3, 4, 5], 3).glom().collect() == [[1], [2, 3], [4, 5]]
    assert await sc.parallelize([1, 2, 3, 4, 5], 3).coalesce(1).glom().collect() == [
        [1, 2, 3, 4, 5]]
    # Spark's DefaultPartitionCoalescer without locality: parent partitions
    # [i*n/k, (i+1)*n/k) go to partition i, in order
    rdd = sc.parallelize(range(10), 5)  # [0,1] [2,3] [4,5] [6,7] [8,9]
    assert await rdd.coalesce(2).glom().collect() == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]]
    assert await rdd.coalesce(3).glom().collect() == [[0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    # more partitions than the parent has: no shuffle, so the parent's count stays
    assert rdd.coalesce(10).getNumPartitions() == 5
    assert await rdd.coalesce(10).glom().collect() == await rdd.glom().collect()
    assert sc.emptyRDD().coalesce(3).getNumPartitions() == 0
    assert await rdd.coalesce(4).map(lambda x: x * 2).sum() == 90
    with pytest.raises(ValueError):
        rdd.coalesce(0)


async def test_zip(sc):
    # doctest of RDD.zip
    x = sc.parallelize(range(0, 5))
    y = sc.parallelize(range(1000, 1005))
    assert await x.zip(y).collect() == [(0, 1000), (1, 1001), (2, 1002), (3, 1003), (4, 1004)]
    a = sc.parallelize(range(6), 3)
    assert await a.zip(a.map(str)).glom().collect() == [
        [(0, "0"), (1, "1")], [(2, "2"), (3, "3")], [(4, "4"), (5, "5")]]
    # differing partition counts: refused at once (PySpark raises ValueError in zip())
    with pytest.raises(ValueError, match="same number of partitions"):
        sc.parallelize(range(4), 2).zip(sc.parallelize(range(4), 3))
    # differing element counts in a partition: the job fails (Spark's SparkException)
    bad = sc.parallelize(range(4), 2).zip(sc.parallelize(range(5), 2))
    with pytest.raises(JobFailedError, match="same number of elements in each partition"):
        await bad.collect()


async def test_zip_with_index(sc):
    # doctest of RDD.zipWithIndex
    assert await sc.parallelize(["a", "b", "c", "d"], 3).zipWithIndex().collect() == [
        ("a", 0), ("b", 1), ("c", 2), ("d", 3)]
    rdd = sc.parallelize(range(20), 6).filter(lambda x: x % 3 != 0)
    expected = [(v, i) for i, v in enumerate(x for x in range(20) if x % 3 != 0)]
    zipped = rdd.zipWithIndex()
    assert await zipped.collect() == expected
    assert await zipped.collect() == expected  # offsets are computed once, reused
    assert await zipped.map(lambda vi: vi[1]).sum() == sum(range(len(expected)))
    assert await sc.parallelize([7], 1).zipWithIndex().collect() == [(7, 0)]
    assert await sc.parallelize([], 3).zipWithIndex().collect() == []
    # zipWithIndex under further transformations and in a union
    assert await sc.union([zipped, zipped]).count() == 2 * len(expected)
    # zipWithIndex of a zipWithIndex: both offsets computed, in lineage order
    assert await zipped.zipWithIndex().map(lambda t: t[1] - t[0][1]).collect() == [0] * len(
        expected)


async def test_zip_with_unique_id(sc):
    # doctest of RDD.zipWithUniqueId
    assert await sc.parallelize(["a", "b", "c", "d", "e"], 3).zipWithUniqueId().collect() == [
        ("a", 0), ("b", 1), ("c", 4), ("d", 2), ("e", 5)]
    ids = await sc.parallelize(range(50), 7).zipWithUniqueId().values().collect()
    assert len(set(ids)) == 50


async def test_pipe(sc):
    # doctest of RDD.pipe
    assert await sc.parallelize(["1", "2", "", "3"]).pipe("cat").collect() == [
        "1", "2", "", "3"]
    # pyspark/tests/test_rdd.py test_pipe_functions and test_pipe_unicode
    rdd = sc.parallelize(["1", "2", "3"])
    assert sorted(await rdd.pipe("cat").collect()) == ["1", "2", "3"]
    assert await rdd.pipe("grep 4").collect() == []
    with pytest.raises(JobFailedError, match="exited with error code 1"):
        await rdd.pipe("grep 4", checkCode=True).collect()
    data = ["\u6d4b\u8bd5", "1"]
    assert await sc.parallelize(data).pipe("cat").collect() == data
    # elements go through str(); env reaches the command
    assert await sc.parallelize([1, 2.5, None], 1).pipe("cat").collect() == ["1", "2.5", "None"]
    out = await sc.parallelize([1], 1).pipe(
        "sh -c 'echo $ASYNCSPARK_PIPE_TEST'", env={"ASYNCSPARK_PIPE_TEST": "la la"}).collect()
    assert out == ["la la"]
    # a command that stops reading early does not hang or fail the task
    assert await sc.parallelize(range(100000), 2).pipe("head -n 2").collect() == [
        "0", "1", "50000", "50001"]
    # a consumer that stops early (take) does not wait for the whole input
    assert await sc.parallelize(range(10**6), 1).pipe("cat").take(2) == ["0", "1"]


async def test_pipe_upstream_runs_as_part_of_the_task(sc):
    # the elements piped in are computed by the task: its TaskContext is there...
    parts = sc.parallelize(range(4), 2).map(lambda x: TaskContext.get().partitionId())
    assert await parts.pipe("cat").collect() == ["0", "0", "1", "1"]

    # ...and an error computing them fails the task instead of cutting the input short
    def boom(x):
        if x == 5:
            raise ValueError("upstream boom")
        return x

    with pytest.raises(JobFailedError, match="upstream boom"):
        await sc.parallelize(range(10), 1).map(boom).pipe("cat").collect()


async def test_chained_pipeline(sc):
    rdd = sc.parallelize(range(100), 4)
    chained = rdd.map(lambda x: x * 3).filter(lambda x: x % 2 == 0).map(lambda x: x + 1)
    expected = [x * 3 + 1 for x in range(100) if (x * 3) % 2 == 0]
    assert await chained.collect() == expected
    # branching off a shared parent leaves the parent and the other branch unchanged
    other = chained.map(str)
    deeper = chained.flatMap(lambda x: [x, -x]).filter(lambda x: x > 0).keyBy(lambda x: x % 5)
    assert await chained.collect() == expected
    assert await other.collect() == [str(x) for x in expected]
    assert await deeper.values().collect() == expected
    assert await deeper.keys().collect() == [x % 5 for x in expected]
    # a long chain
    r = sc.parallelize(range(10), 3)
    for i in range(50):
        r = r.map(lambda x, i=i: x + i)
    assert await r.collect() == [x + sum(range(50)) for x in range(10)]


async def test_nested_closures(sc):
    def make_adder(n):
        return lambda x: x + n

    def compose(*fs):
        def composed(x):
            for f in reversed(fs):
                x = f(x)
            return x
        return composed

    def fib(n):  # a local recursive function
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    class Scaler:  # a local class
        def __init__(self, k):
            self.k = k

        def __call__(self, x):
            return x * self.k

    table = {i: chr(ord("a") + i) for i in range(10)}
    scaler = Scaler(3)
    rdd = sc.parallelize(range(10), 3)
    result = await (rdd.map(compose(make_adder(1), scaler, make_adder(-1)))
                    .map(lambda x: (table[x % 10], fib(x % 15)))
                    .collect())
    assert result == [(table[(3 * (x - 1) + 1) % 10], fib((3 * (x - 1) + 1) % 15))
                      for x in range(10)]
    # closures over loop variables bind the value they had when the RDD was defined
    rdds = [rdd.map(lambda x, k=k: x * k) for k in range(3)]
    assert [await r.sum() for r in rdds] == [0, 45, 90]


async def test_action_inside_transformation_is_refused(sc):
    other = sc.parallelize([1, 2, 3])
    for bad in (lambda x: other.count(), lambda x: asyncio.run(other.count()),
                lambda x: other.map(lambda y: y)):
        with pytest.raises(RuntimeError, match="SPARK-5063"):
            await sc.parallelize([1, 2], 2).map(bad).collect()
    # the same through a pipelined chain, a global-free nested helper and foreach
    def helper(x):
        return other.count()

    with pytest.raises(RuntimeError, match="SPARK-5063"):
        await sc.parallelize([1]).filter(bool).map(lambda x: helper(x)).collect()
    with pytest.raises(RuntimeError, match="SPARK-5063"):
        await sc.parallelize([1]).foreach(lambda x: other.collect())
    # the context is refused too
    with pytest.raises(RuntimeError, match="SPARK-5063"):
        await sc.parallelize([1]).map(lambda x: sc.parallelize([x])).collect()
    # and the RDDs themselves are untouched
    assert await other.collect() == [1, 2, 3]


# -- actions -------------------------------------------------------------------------------


async def test_collect_count_first(sc):
    # doctests of RDD.count and RDD.first
    assert await sc.parallelize([2, 3, 4]).count() == 3
    assert await sc.parallelize([2, 3, 4]).first() == 2
    with pytest.raises(ValueError, match="RDD is empty"):
        await sc.parallelize([]).first()
    with pytest.raises(ValueError, match="RDD is empty"):
        await sc.parallelize(range(10), 4).filter(lambda x: x > 100).first()
    assert await sc.parallelize(range(10), 4).filter(lambda x: x > 7).first() == 8
    # arbitrary (picklable) objects come back equal
    objs = [None, 1.5, "s", b"b", (1, (2,)), {"k": [1]}, {1, 2}, frozenset([3]), 10**30]
    assert await sc.parallelize(objs, 3).collect() == objs


async def test_take(sc):
    # doctests of RDD.take
    assert await sc.parallelize([2, 3, 4, 5, 6]).take(2) == [2, 3]
    assert await sc.parallelize([2, 3, 4, 5, 6]).take(10) == [2, 3, 4, 5, 6]
    assert await sc.parallelize(range(100), 100).filter(lambda x: x > 90).take(3) == [91, 92, 93]
    assert await sc.parallelize(range(10), 3).take(0) == []


@pytest.mark.parametrize(("data", "slices", "num", "stage_tasks"), [
    # one partition first; then, with nothing found, 4x the partitions scanned so far
    # (1, 4, 20, then the remaining 75): PySpark's RDD.take
    (range(100), 100, 3, [1, 4, 20, 75]),
    # 2 of 3 found in the first partition: int(1.5 * 3 * 1 / 2) - 1 = 1 more partition
    (range(10), 5, 3, [1, 1]),
    # 2 of 10 found: the estimate int(1.5*10*1/2) - 1 = 6 is capped at 4x, then at the end
    (range(5), 2, 10, [1, 1]),
    (range(10), 5, 1, [1]),
    (range(10), 5, 0, []),
])
async def test_take_scans_one_partition_then_more(sc, data, slices, num, stage_tasks):
    rdd = sc.parallelize(data, slices)
    if slices == 100:
        rdd = rdd.filter(lambda x: x > 90)
    async with recording(sc) as rec:
        got = await rdd.take(num)
    assert len(got) == min(num, len(await rdd.collect()))
    assert len(rec.jobs) == len(stage_tasks)
    assert rec.stage_tasks == stage_tasks


async def test_first_runs_one_job_on_one_partition(sc):
    async with recording(sc) as rec:
        assert await sc.parallelize(range(100), 10).first() == 0
    assert len(rec.jobs) == 1
    assert rec.stage_tasks == [1]


async def test_top_and_take_ordered(sc):
    # doctests of RDD.top
    assert await sc.parallelize([10, 4, 2, 12, 3]).top(1) == [12]
    assert await sc.parallelize([2, 3, 4, 5, 6], 2).top(2) == [6, 5]
    assert await sc.parallelize([10, 4, 2, 12, 3]).top(3, key=str) == [4, 3, 2]
    # doctests of RDD.takeOrdered
    assert await sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).takeOrdered(6) == [
        1, 2, 3, 4, 5, 6]
    assert await sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).takeOrdered(
        6, key=lambda x: -x) == [10, 9, 7, 6, 5, 4]
    rdd = sc.parallelize(list(range(50)) * 2, 7)
    assert await rdd.top(5) == [49, 49, 48, 48, 47]
    assert await rdd.takeOrdered(3) == [0, 0, 1]
    assert await rdd.top(1000) == sorted(list(range(50)) * 2, reverse=True)
    assert await rdd.takeOrdered(0) == []


async def test_reduce_fold_aggregate(sc):
    # doctests of RDD.reduce
    assert await sc.parallelize([1, 2, 3, 4, 5]).reduce(add) == 15
    with pytest.raises(ValueError, match="Can not reduce\\(\\) empty RDD"):
        await sc.parallelize([]).reduce(add)
    # empty partitions are skipped
    assert await sc.parallelize([5], 4).reduce(add) == 5
    # doctest of RDD.fold
    assert await sc.parallelize([1, 2, 3, 4, 5]).fold(0, add) == 15
    # the zero value is applied once per partition and once more on the driver
    assert await sc.parallelize([1, 2, 3, 4], 2).fold(1, add) == 1 + (1 + 3) + (1 + 7)
    # doctests of RDD.aggregate
    seq_op = (lambda x, y: (x[0] + y, x[1] + 1))  # noqa: E731 (the doctest's spelling)
    comb_op = (lambda x, y: (x[0] + y[0], x[1] + y[1]))  # noqa: E731
    assert await sc.parallelize([1, 2, 3, 4]).aggregate((0, 0), seq_op, comb_op) == (10, 4)
    assert await sc.parallelize([]).aggregate((0, 0), seq_op, comb_op) == (0, 0)


async def test_fold_and_aggregate_may_modify_their_first_argument(sc):
    # PySpark's docs: "op(t1, t2) is allowed to modify t1 and return it as its result value
    # to avoid object allocation" -- each partition must start from its own zero value,
    # even when one executor runs several partitions
    def append(acc, x):
        acc.append(x)
        return acc

    def extend(a, b):
        a.extend(b)
        return a

    rdd = sc.parallelize(range(12), 6)
    zero: list = []
    assert sorted(await rdd.aggregate(zero, append, extend)) == list(range(12))
    assert zero == []
    assert sorted(await rdd.map(lambda x: [x]).fold([], extend)) == list(range(12))
    assert sorted(await rdd.treeAggregate([], append, extend)) == list(range(12))
    assert sorted(await rdd.treeAggregate([], append, extend, depth=3)) == list(range(12))
    assert sorted(await rdd.map(lambda x: [x]).treeReduce(extend)) == list(range(12))


async def test_tree_reduce_and_aggregate(sc):
    # doctests of RDD.treeReduce and RDD.treeAggregate
    rdd = sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10)
    for depth in (1, 2, 5):
        assert await rdd.treeReduce(add, depth) == -5
        assert await rdd.treeAggregate(0, add, add, depth) == -5
    assert await rdd.treeReduce(add) == -5
    assert await rdd.treeAggregate(0, add, add) == -5
    with pytest.raises(ValueError, match="Depth cannot be smaller than 1 but got 0"):
        await rdd.treeReduce(add, 0)
    with pytest.raises(ValueError, match="Depth cannot be smaller than 1 but got 0"):
        await rdd.treeAggregate(0, add, add, 0)
    # many more partitions than the scale: several intermediate levels
    many = sc.parallelize(range(1000), 64)
    for depth in (1, 2, 3, 4, 10):
        assert await many.treeAggregate(0, add, add, depth) == sum(range(1000))
        assert await many.treeReduce(max, depth) == 999
    assert await many.treeAggregate((0, 0), lambda a, x: (a[0] + x, a[1] + 1),
                                    lambda a, b: (a[0] + b[0], a[1] + b[1]), 3) == (499500, 1000)
    # the order partial results are combined in is not part of the contract (PySpark's
    # tree levels go through a shuffle): compare a concatenation sorted
    assert sorted(await many.treeAggregate([], lambda a, x: [*a, x], add, 3)) == list(range(1000))
    with pytest.raises(ValueError, match="Cannot reduce empty RDD"):
        await sc.parallelize([], 4).treeReduce(add)
    assert await sc.emptyRDD().treeAggregate(7, add, add) == 7


async def test_sum_max_min(sc):
    # doctests of RDD.sum, RDD.max, RDD.min
    assert await sc.parallelize([1.0, 2.0, 3.0]).sum() == 6.0
    rdd = sc.parallelize([1.0, 5.0, 43.0, 10.0])
    assert await rdd.max() == 43.0
    assert await rdd.max(key=str) == 5.0
    rdd = sc.parallelize([2.0, 5.0, 43.0, 10.0])
    assert await rdd.min() == 2.0
    assert await rdd.min(key=str) == 10.0
    assert await sc.parallelize([], 3).sum() == 0
    with pytest.raises(ValueError):
        await sc.parallelize([], 3).max()


async def test_stats(sc):
    # doctests of RDD.mean, variance, stdev, sampleStdev, sampleVariance
    rdd = sc.parallelize([1, 2, 3])
    assert await rdd.mean() == 2.0
    assert await rdd.variance() == pytest.approx(0.666666666666666)
    assert await rdd.stdev() == pytest.approx(0.816496580927726)
    assert await rdd.sampleStdev() == 1.0
    assert await rdd.sampleVariance() == 1.0
    s = await rdd.stats()
    assert isinstance(s, StatCounter)
    assert (s.count(), s.mean(), s.sum(), s.min(), s.max()) == (3, 2.0, 6.0, 1, 3)
    assert repr(s).startswith("(count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3")
    # many partitions, some empty, large offsets: merged statistics are accurate
    data = [1e9 + x * 0.5 for x in range(1000)]
    s = await sc.parallelize(data, 13).stats()
    n = len(data)
    mu = sum(data) / n
    var = sum((x - mu) ** 2 for x in data) / n
    assert s.count() == n
    assert s.mean() == pytest.approx(mu, rel=1e-15)
    assert s.variance() == pytest.approx(var, rel=1e-9)
    assert s.sampleVariance() == pytest.approx(var * n / (n - 1), rel=1e-9)
    assert (s.min(), s.max()) == (min(data), max(data))
    s = await sc.parallelize([5.0], 4).stats()
    assert (s.count(), s.mean(), s.variance()) == (1, 5.0, 0.0)
    assert math.isnan(s.sampleVariance())
    # an empty RDD: PySpark's StatCounter.mean() is its running mean, 0.0
    s = await sc.parallelize([], 2).stats()
    assert (s.count(), s.mean(), s.sum()) == (0, 0.0, 0.0)
    assert math.isnan(s.variance())
    assert await sc.parallelize([], 2).mean() == 0.0


async def test_stat_counter_as_dict(sc):
    # doctest of StatCounter.asDict: by default the *sample* stdev and variance
    assert (await sc.parallelize([1., 2., 3., 4.]).stats()).asDict() == {
        "count": 4, "max": 4.0, "mean": 2.5, "min": 1.0, "stdev": 1.2909944487358056,
        "sum": 10.0, "variance": 1.6666666666666667}
    d = (await sc.parallelize([1., 2., 3., 4.], 3).stats()).asDict(sample=True)
    assert d["variance"] == 1.25
    assert d["stdev"] == math.sqrt(1.25)
    # merging: mergeStats, merge, copy, StatCounter(values)
    a = StatCounter([1.0, 2.0])
    b = a.copy().merge(3.0).merge(4.0)
    assert (a.count(), b.count()) == (2, 4)
    assert a.mergeStats(StatCounter([3.0, 4.0])).asDict() == b.asDict()
    assert a.mergeStats(a).count() == 8
    with pytest.raises(TypeError):
        a.mergeStats([1.0])


async def test_histogram_docstring(sc):
    # doctests of RDD.histogram
    rdd = sc.parallelize(range(51))
    assert await rdd.histogram(2) == ([0, 25, 50], [25, 26])
    assert await rdd.histogram([0, 5, 25, 50]) == ([0, 5, 25, 50], [5, 20, 26])
    assert await rdd.histogram([0, 15, 30, 45, 60]) == ([0, 15, 30, 45, 60], [15, 15, 15, 6])
    rdd = sc.parallelize(["ab", "ac", "b", "bd", "ef"])
    assert await rdd.histogram(("a", "b", "c")) == (("a", "b", "c"), [2, 2])


async def test_histogram_pyspark_unit_tests(sc):
    # pyspark/tests/test_rdd.py test_histogram, case by case
    async def hist(data, buckets):
        return await sc.parallelize(data).histogram(buckets)

    nan, inf = float("nan"), float("inf")
    # empty
    assert (await hist([], [0, 10]))[1] == [0]
    assert (await hist([], [0, 4, 10]))[1] == [0, 0]
    with pytest.raises(ValueError):
        await hist([], 1)
    # out of range
    assert (await hist([10.01, -0.01], [0, 10]))[1] == [0]
    assert (await hist([10.01, -0.01], (0, 4, 10)))[1] == [0, 0]
    # in range with one bucket
    assert (await hist(range(1, 5), [0, 10]))[1] == [4]
    assert (await hist(range(1, 5), [0, 4, 10]))[1] == [3, 1]
    assert (await hist(range(1, 5), [1, 4]))[1] == [4]
    # out of range with two (uneven) buckets
    assert (await hist([10.01, -0.01], [0, 5, 10]))[1] == [0, 0]
    assert (await hist([10.01, -0.01], [0, 4, 10]))[1] == [0, 0]
    # in range with two buckets, with None and NaN, uneven
    assert (await hist([1, 2, 3, 5, 6], [0, 5, 10]))[1] == [3, 2]
    assert (await hist([1, 2, 3, 5, 6, None, nan], [0, 5, 10]))[1] == [3, 2]
    assert (await hist([1, 2, 3, 5, 6], [0, 5, 11]))[1] == [3, 2]
    assert (await hist([-0.01, 0.0, 1, 2, 3, 5, 6, 11.0, 11.01], [0, 5, 11]))[1] == [4, 3]
    four = [-0.01, 0.0, 1, 2, 3, 5, 6, 11.01, 12.0, 199.0, 200.0, 200.1]
    assert (await hist(four, [0.0, 5.0, 11.0, 12.0, 200.0]))[1] == [4, 2, 1, 3]
    assert (await hist([*four, None, nan], [0.0, 5.0, 11.0, 12.0, 200.0]))[1] == [4, 2, 1, 3]
    # out of range with infinite buckets
    assert (await hist([10.01, -0.01, nan, inf], [-inf, 0, inf]))[1] == [1, 2]
    # invalid buckets
    for bad, exc in (([], ValueError), ([1], ValueError), (0, ValueError), ({}, TypeError),
                     ([0, None], ValueError), ([0, nan], ValueError), ([2, 1], ValueError),
                     ([1, 1, 2], ValueError)):
        with pytest.raises(exc):
            await hist([1, 2], bad)
    # without buckets
    assert await hist(range(1, 5), 1) == ([1, 4], [4])
    assert await hist([1], 1) == ([1, 1], [1])
    assert await hist([1] * 4, 1) == ([1, 1], [4])
    assert await hist(range(1, 5), 2) == ([1, 2.5, 4], [2, 2])
    assert await hist([1, 2], 5) == ([1 + 0.2 * i for i in range(6)], [1, 0, 0, 0, 1])
    # invalid RDDs
    with pytest.raises(ValueError):
        await hist([1, inf], 2)
    with pytest.raises(ValueError):
        await hist([nan], 2)
    # strings
    strings = sc.parallelize(["ab", "ac", "b", "bd", "ef"], 2)
    assert (await strings.histogram(["a", "b", "c"]))[1] == [2, 2]
    assert await strings.histogram(1) == (["ab", "ef"], [5])
    with pytest.raises(TypeError):
        await strings.histogram(2)


async def test_histogram_many_partitions_and_floats(sc):
    data = [x / 7 for x in range(-300, 700)]
    buckets, counts = await sc.parallelize(data, 9).histogram(10)
    assert len(buckets) == 11
    assert (buckets[0], buckets[-1]) == (min(data), max(data))
    assert sum(counts) == len(data)
    ref = [0] * 10
    for x in data:
        i = min(int((x - buckets[0]) / ((buckets[-1] - buckets[0]) / 10)), 9)
        ref[i] += 1
    assert counts == ref
    uneven = [-100, -1, 0, 0.5, 3, 100]
    _, counts = await sc.parallelize(data, 9).histogram(uneven)
    ref = [sum(1 for x in data if lo <= x < hi) for lo, hi in itertools.pairwise(uneven)]
    ref[-1] += sum(1 for x in data if x == uneven[-1])
    assert counts == ref


async def test_count_by_value_and_key(sc):
    # doctests of RDD.countByValue and RDD.countByKey
    cbv = await sc.parallelize([1, 2, 1, 2, 2], 2).countByValue()
    assert isinstance(cbv, defaultdict)
    assert sorted(cbv.items()) == [(1, 2), (2, 3)]
    cbk = await sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).countByKey()
    assert sorted(cbk.items()) == [("a", 2), ("b", 1)]
    assert dict(await sc.parallelize([], 3).countByValue()) == {}


async def test_collect_as_map_and_is_empty(sc):
    # doctests of RDD.collectAsMap and RDD.isEmpty
    m = await sc.parallelize([(1, 2), (3, 4)]).collectAsMap()
    assert m[1] == 2
    assert m[3] == 4
    assert await sc.parallelize([(1, 2), (1, 3)]).collectAsMap() == {1: 3}  # last one wins
    assert await sc.parallelize([]).isEmpty()
    assert not await sc.parallelize([1]).isEmpty()
    assert await sc.parallelize(range(10), 5).filter(lambda x: x > 10).isEmpty()


async def test_foreach_and_foreach_partition(sc, tmp_path):
    path = str(tmp_path / "foreach.txt")

    def write(x):
        with open(path, "a") as f:
            f.write(f"{x}\n")

    assert await sc.parallelize(range(20), 4).foreach(write) is None
    assert sorted(int(line) for line in read_lines(path)) == list(range(20))

    part_path = str(tmp_path / "partitions.txt")

    def write_partition(it):
        items = list(it)
        with open(part_path, "a") as f:
            f.write(f"{len(items)} {sum(items)}\n")

    assert await sc.parallelize(range(20), 4).foreachPartition(write_partition) is None
    assert sorted(read_lines(part_path)) == sorted(["5 10", "5 35", "5 60", "5 85"])

    gen_path = str(tmp_path / "gen.txt")

    def gen_partition(it):  # a generator function's body runs too (PySpark consumes it)
        with open(gen_path, "a") as f:
            for x in it:
                f.write(f"{x}\n")
                yield x

    await sc.parallelize(range(6), 3).foreachPartition(gen_partition)
    assert await sc.parallelize(range(6), 3).foreachPartition(lambda it: 42) is None

    def bad_partition(it):  # an error inside the generator fails the job
        for x in it:
            yield x + "not a number"

    with pytest.raises(JobFailedError, match="TypeError"):
        await sc.parallelize(range(6), 3).foreachPartition(bad_partition)
    assert sorted(int(line) for line in read_lines(gen_path)) == list(range(6))


async def test_run_job(sc):
    # doctests of SparkContext.runJob
    my_rdd = sc.parallelize(range(6), 3)
    assert await sc.runJob(my_rdd, lambda part: [x * x for x in part]) == [0, 1, 4, 9, 16, 25]
    assert await sc.runJob(my_rdd, lambda part: [x * x for x in part], [0, 2], True) == [
        0, 1, 16, 25]
    assert await sc.runJob(my_rdd, lambda part: [sum(part)], [2, 0]) == [9, 1]
    assert await sc.runJob(my_rdd, lambda part: [1], []) == []
    with pytest.raises(ValueError):
        await sc.runJob(my_rdd, lambda part: [1], [3])


async def test_get_num_partitions(sc):
    # doctest of RDD.getNumPartitions
    assert sc.parallelize([1, 2, 3, 4], 2).getNumPartitions() == 2
    rdd = sc.parallelize(range(10), 5)
    assert rdd.map(str).filter(bool).getNumPartitions() == 5
    assert rdd.union(rdd).getNumPartitions() == 10
    assert rdd.zip(rdd).getNumPartitions() == 5
    assert rdd.glom().getNumPartitions() == 5


async def test_task_errors_reach_the_caller(sc):
    def boom(x):
        if x == 3:
            raise KeyError("no such thing")
        return x

    with pytest.raises(JobFailedError, match="no such thing") as info:
        await sc.parallelize(range(5), 2).map(boom).collect()
    assert isinstance(info.value.__cause__, KeyError)
    # the context keeps working afterwards
    assert await sc.parallelize(range(5), 2).map(lambda x: x).count() == 5


# -- property test -------------------------------------------------------------------------


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.integers(-1000, 1000), max_size=60),
       num_slices=st.integers(1, 8), k=st.integers(0, 10))
async def test_narrow_pipeline_matches_python(sc, data, num_slices, k):
    rdd = sc.parallelize(data, num_slices)
    piped = (rdd.map(lambda x: x * 3 - 1)
             .filter(lambda x: x % 4 != 0)
             .flatMap(lambda x: [x] * (abs(x) % 3))
             .mapPartitionsWithIndex(lambda i, it: ((i, x) for x in it))
             .values())
    expected = [y for x in data for y in [x * 3 - 1] * (abs(x * 3 - 1) % 3)
                if (x * 3 - 1) % 4 != 0]
    assert await piped.collect() == expected
    assert await piped.count() == len(expected)
    assert await piped.sum() == sum(expected)
    assert await piped.take(k) == expected[:k]
    assert await piped.top(k) == sorted(expected, reverse=True)[:k]
    assert await piped.takeOrdered(k, key=abs) == sorted(expected, key=abs)[:k]
    assert await piped.isEmpty() == (not expected)
    glommed = await rdd.glom().collect()
    assert len(glommed) == num_slices
    assert [x for part in glommed for x in part] == data
    n = len(data)
    assert [len(p) for p in glommed] == [
        (i + 1) * n // num_slices - i * n // num_slices for i in range(num_slices)]
    assert await rdd.zipWithIndex().collect() == [(x, i) for i, x in enumerate(data)]
    c = max(1, num_slices // 2)
    assert await rdd.coalesce(c).collect() == data
    assert await rdd.fold(0, add) == sum(data)
    if data:
        assert await rdd.reduce(max) == max(data)
        assert await rdd.treeReduce(add, 3) == sum(data)
        s = await rdd.stats()
        assert s.count() == n
        assert s.mean() == pytest.approx(sum(data) / n)
    else:
        with pytest.raises(ValueError):
            await rdd.reduce(max)


async def test_small_driver_data_pickles_plainly_but_local_classes_by_value(sc):
    import pickle

    class Local:  # not importable on an executor: must travel by value (cloudpickle)
        def __init__(self, x):
            self.x = x

        def __eq__(self, other):
            return isinstance(other, Local) and other.x == self.x

    from asyncspark._accel import count

    plain = sc.parallelize([1, "a", None], 1)
    binary = task_binary(plain, count)
    assert pickle.loads(binary)[0]._data == [1, "a", None]
    assert b"cloudpickle" not in binary  # the plain pickle fast path
    local = sc.parallelize([Local(1), Local(2)], 2)
    assert b"cloudpickle" in task_binary(local, count)
    assert await local.collect() == [Local(1), Local(2)]
    assert await local.count() == 2
    assert await plain.count() == 3
