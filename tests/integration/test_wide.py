"""Wide transformations (everything that shuffles) against PySpark's documented results,
on real executor processes.

Where an input is one of PySpark's doctests (``pyspark/core/rdd.py``) or unit tests
(``pyspark/tests/test_rdd.py``) the comment says so; the expected value is PySpark's output
for that input. Stage and task counts come from a listener (see ``recording``).
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import re
from collections import Counter, defaultdict

import pytest

import asyncspark
from asyncspark.dependency import OneToOneDependency, ShuffleDependency
from asyncspark.pairs import ResultIterable
from asyncspark.partitioner import HashPartitioner, RangePartitioner, portable_hash
from asyncspark.rdds.joined import JoinedRDD

pytestmark = pytest.mark.asyncio(loop_scope="module")

add = operator.add


class _Recorder:
    """A listener keeping the job starts, stage submissions and task starts it sees."""

    def __init__(self) -> None:
        self.jobs: list = []
        self.job_ends: list = []
        self.stages: list = []
        self.tasks: list = []
        self.task_ends: list = []

    def onJobStart(self, event) -> None:
        self.jobs.append(event)

    def onJobEnd(self, event) -> None:
        self.job_ends.append(event)

    def onStageSubmitted(self, event) -> None:
        self.stages.append(event)

    def onTaskStart(self, event) -> None:
        self.tasks.append(event)

    def onTaskEnd(self, event) -> None:
        self.task_ends.append(event)


@contextlib.asynccontextmanager
async def recording(sc):
    """Record the scheduler events of the jobs run inside the block. The listener bus
    delivers them asynchronously, in order: after the block, wait a moment, then until
    every recorded job has ended."""
    rec = _Recorder()
    sc.addSparkListener(rec)
    try:
        yield rec
        await asyncio.sleep(0.05)
        for _ in range(200):
            if len(rec.job_ends) == len(rec.jobs):
                break
            await asyncio.sleep(0.01)
    finally:
        sc.removeSparkListener(rec)


def sorted_groups(pairs) -> list:
    """``[(k, sorted(list(values)))]`` sorted by key, for results with ResultIterables."""
    return sorted((k, sorted(vs)) for k, vs in pairs)


# -- partitionBy -----------------------------------------------------------------------

async def test_partitionBy_doctest(sc):
    # doctest of RDD.partitionBy
    pairs = sc.parallelize([1, 2, 3, 4, 2, 4, 1]).map(lambda x: (x, x))
    sets = await pairs.partitionBy(2).glom().collect()
    assert len(set(sets[0]).intersection(set(sets[1]))) == 0


@pytest.mark.parametrize("n", [1, 3, 5])
async def test_partitionBy_places_keys_by_portable_hash(sc, n):
    keys = [*range(-20, 20), "a", "bb", "ccc", "", "zz", ("a", 1), (2, "b"), (None, 3),
            None, 2.5, -0.0, frozenset({"x"})]
    data = [(k, i) for i, k in enumerate(keys)]
    parted = sc.parallelize(data, 4).partitionBy(n)
    assert parted.getNumPartitions() == n
    assert parted.partitioner == HashPartitioner(n)
    glom = await parted.glom().collect()
    assert len(glom) == n
    for i, part in enumerate(glom):
        for k, _ in part:
            assert portable_hash(k) % n == i, (k, i)
    assert sorted(map(repr, (kv for part in glom for kv in part))) == sorted(map(repr, data))


async def test_partitionBy_is_a_no_op_when_already_partitioned_that_way(sc):
    pairs = sc.parallelize([(i, i) for i in range(20)], 3)
    parted = pairs.partitionBy(4)
    assert parted.partitionBy(4) is parted
    assert parted.partitionBy(4, portable_hash) is parted
    assert parted.partitionBy(5) is not parted
    assert parted.partitionBy(4, lambda k: 0) is not parted
    # preserved through partition-preserving transformations, so no new shuffle either
    assert parted.mapValues(str).partitionBy(4).partitioner == parted.partitioner
    assert parted.map(lambda kv: kv).partitioner is None
    await parted.count()
    async with recording(sc) as rec:
        glom = await parted.mapValues(str).partitionBy(4).glom().collect()
    assert len(rec.stages) == 1  # the result stage only: no shuffle
    assert glom == [[(k, str(v)) for k, v in part] for part in await parted.glom().collect()]


async def test_partitionBy_defaults_and_custom_partitionFunc(sc):
    pairs = sc.parallelize([(i, i) for i in range(10)], 3)
    assert pairs.partitionBy(None).getNumPartitions() == 3
    glom = await pairs.partitionBy(2, lambda k: 0 if k < 5 else 1).glom().collect()
    assert [sorted(p) for p in glom] == [[(i, i) for i in range(5)],
                                         [(i, i) for i in range(5, 10)]]
    with pytest.raises(ValueError, match="must be positive"):
        pairs.partitionBy(0)


# -- aggregation -----------------------------------------------------------------------

async def test_reduceByKey(sc):
    # doctest of RDD.reduceByKey
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(await rdd.reduceByKey(add).collect()) == [("a", 2), ("b", 1)]
    counted = sc.parallelize([(i % 7, 1) for i in range(100)], 5).reduceByKey(add, 3)
    assert counted.getNumPartitions() == 3
    assert counted.partitioner == HashPartitioner(3)
    assert sorted(await counted.collect()) == sorted(Counter(i % 7 for i in range(100)).items())
    # default: as many partitions as the input
    assert sc.parallelize([(1, 1)], 5).reduceByKey(add).getNumPartitions() == 5


async def test_reduceByKey_on_a_partitioned_rdd_does_not_shuffle_again(sc):
    parted = sc.parallelize([(i % 5, i) for i in range(50)], 3).partitionBy(4)
    await parted.count()
    reduced = parted.reduceByKey(add, 4)
    assert reduced.partitioner == parted.partitioner
    async with recording(sc) as rec:
        got = sorted(await reduced.collect())
    assert got == [(k, sum(range(k, 50, 5))) for k in range(5)]
    assert len(rec.stages) == 1
    # with another number of partitions it shuffles
    async with recording(sc) as rec:
        assert sorted(await parted.reduceByKey(add, 2).collect()) == got
    assert len(rec.stages) == 2


async def test_reduceByKeyLocally(sc):
    # doctest of RDD.reduceByKeyLocally
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted((await rdd.reduceByKeyLocally(add)).items()) == [("a", 2), ("b", 1)]
    big = sc.parallelize([(i % 10, i) for i in range(1000)], 7)
    got = await big.reduceByKeyLocally(add)
    assert isinstance(got, dict)
    assert got == {k: sum(range(k, 1000, 10)) for k in range(10)}
    assert await sc.emptyRDD().reduceByKeyLocally(add) == {}


async def test_groupByKey(sc):
    # doctest of RDD.groupByKey
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(await rdd.groupByKey().mapValues(len).collect()) == [("a", 2), ("b", 1)]
    assert sorted(await rdd.groupByKey().mapValues(list).collect()) == [
        ("a", [1, 1]), ("b", [1])]
    grouped = await rdd.groupByKey(3).collect()
    assert all(isinstance(vs, ResultIterable) for _, vs in grouped)
    assert sorted_groups(grouped) == [("a", [1, 1]), ("b", [1])]
    assert rdd.groupByKey(3).getNumPartitions() == 3


async def test_combineByKey(sc):
    # doctest of RDD.combineByKey
    x = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])

    def to_list(a):
        return [a]

    def append(a, b):
        a.append(b)
        return a

    def extend(a, b):
        a.extend(b)
        return a

    assert sorted(await x.combineByKey(to_list, append, extend).collect()) == [
        ("a", [1, 2]), ("b", [1])]
    # (sum, count) per key, over many partitions
    data = [(i % 4, i) for i in range(40)]
    got = await sc.parallelize(data, 6).combineByKey(
        lambda v: (v, 1), lambda c, v: (c[0] + v, c[1] + 1),
        lambda a, b: (a[0] + b[0], a[1] + b[1]), 3).collect()
    assert sorted(got) == [(k, (sum(range(k, 40, 4)), 10)) for k in range(4)]


async def test_aggregateByKey(sc):
    # doctest of RDD.aggregateByKey
    pairs = sc.parallelize([("a", 3), ("b", 4), ("a", 6)])

    def seq_func(x, y):
        return x[0] + y, x[1] + 1

    def comb_func(x, y):
        return x[0] + y[0], x[1] + y[1]

    assert sorted(await pairs.aggregateByKey((0, 0), seq_func, comb_func).collect()) == [
        ("a", (9, 2)), ("b", (4, 1))]


async def test_aggregateByKey_and_foldByKey_do_not_share_a_mutable_zero(sc):
    data = [(k, v) for v in range(6) for k in "abc"]
    rdd = sc.parallelize(data, 2)

    def seq(acc, v):
        acc.append(v)
        return acc

    def comb(a, b):
        a.extend(b)
        return a

    got = await rdd.aggregateByKey([], seq, comb).collect()
    assert sorted((k, sorted(vs)) for k, vs in got) == [(k, list(range(6))) for k in "abc"]

    folded = await rdd.mapValues(lambda v: [v]).foldByKey([], comb).collect()
    assert sorted((k, sorted(vs)) for k, vs in folded) == [(k, list(range(6))) for k in "abc"]

    zero: dict = {}
    counts = await rdd.aggregateByKey(
        zero, lambda d, v: {**d, v % 2: d.get(v % 2, 0) + 1},
        lambda a, b: {i: a.get(i, 0) + b.get(i, 0) for i in (0, 1)}).collectAsMap()
    assert counts == {k: {0: 3, 1: 3} for k in "abc"}
    assert zero == {}


async def test_foldByKey(sc):
    # doctest of RDD.foldByKey
    rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
    assert sorted(await rdd.foldByKey(0, add).collect()) == [("a", 2), ("b", 1)]
    # the zero value is folded in once per key and partition, as in PySpark
    rdd = sc.parallelize([("a", 1), ("a", 1), ("a", 1), ("a", 1)], 2)
    assert await rdd.foldByKey(10, add).collect() == [("a", 24)]


async def test_distinct(sc):
    # doctest of RDD.distinct
    assert sorted(await sc.parallelize([1, 1, 2, 3]).distinct().collect()) == [1, 2, 3]
    # test_rdd.py test_distinct
    rdd = sc.parallelize((1, 2, 3) * 10, 10)
    assert rdd.getNumPartitions() == 10
    assert await rdd.distinct().count() == 3
    result = rdd.distinct(5)
    assert result.getNumPartitions() == 5
    assert await result.count() == 3
    mixed = [1, "1", (1,), None, 1.0, "a", ("a", None), None, "a"]
    assert sorted(map(repr, await sc.parallelize(mixed, 3).distinct(2).collect())) == sorted(
        map(repr, [1, "1", (1,), None, "a", ("a", None)]))


async def test_groupBy(sc):
    # doctest of RDD.groupBy
    rdd = sc.parallelize([1, 1, 2, 3, 5, 8])
    result = await rdd.groupBy(lambda x: x % 2).collect()
    assert sorted([(x, sorted(y)) for (x, y) in result]) == [(0, [2, 8]), (1, [1, 1, 3, 5])]
    assert rdd.groupBy(lambda x: x % 2, 4).getNumPartitions() == 4


# -- sorting ---------------------------------------------------------------------------

TMP = [("a", 1), ("b", 2), ("1", 3), ("d", 4), ("2", 5)]


async def test_sortByKey_doctest(sc):
    # doctest of RDD.sortByKey
    assert await sc.parallelize(TMP).sortByKey().first() == ("1", 3)
    expected = [("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    assert await sc.parallelize(TMP).sortByKey(True, 1).collect() == expected
    assert await sc.parallelize(TMP).sortByKey(True, 2).collect() == expected
    tmp2 = [("Mary", 1), ("had", 2), ("a", 3), ("little", 4), ("lamb", 5)]
    tmp2.extend([("whose", 6), ("fleece", 7), ("was", 8), ("white", 9)])
    assert await sc.parallelize(tmp2).sortByKey(True, 3, keyfunc=lambda k: k.lower()).collect(
    ) == [("a", 3), ("fleece", 7), ("had", 2), ("lamb", 5), ("little", 4), ("Mary", 1),
          ("was", 8), ("white", 9), ("whose", 6)]


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("n", [1, 2, 5])
async def test_sortByKey_orders_globally_across_partitions(sc, ascending, n):
    keys = [(i * 7919) % 1000 for i in range(600)]
    rdd = sc.parallelize([(k, -k) for k in keys], 4)
    result = rdd.sortByKey(ascending, n)
    assert result.getNumPartitions() == n
    glom = await result.glom().collect()
    assert len(glom) == n
    flat = [kv for part in glom for kv in part]
    assert flat == sorted(((k, -k) for k in keys), reverse=not ascending)
    if n > 1:  # range partitioned from a sample: every partition gets a fair share
        assert min(map(len, glom)) > 600 / n / 3, list(map(len, glom))
    assert await result.collect() == flat
    assert await result.take(3) == flat[:3]


async def test_sortByKey_keyfunc_and_descending_strings(sc):
    words = "the quick Brown fox Jumps over The lazy dog A b C".split()
    rdd = sc.parallelize([(w, i) for i, w in enumerate(words)], 3)
    got = await rdd.sortByKey(False, 3, keyfunc=str.lower).keys().collect()
    assert [w.lower() for w in got] == sorted((w.lower() for w in words), reverse=True)
    assert sorted(got) == sorted(words)
    # a keyfunc changing the key type (int keys sorted as strings)
    nums = sc.parallelize([(i, None) for i in (5, 40, 300, 2, 1000)], 2)
    assert await nums.sortByKey(True, 2, keyfunc=str).keys().collect() == [
        1000, 2, 300, 40, 5]


async def test_sortByKey_on_empty_rdds(sc):
    # test_rdd.py test_sort_on_empty_rdd
    assert await sc.parallelize(zip([], [], strict=True)).sortByKey().collect() == []
    assert await sc.emptyRDD().sortByKey().collect() == []
    assert await sc.emptyRDD().sortByKey(False, 1).collect() == []
    assert await sc.parallelize([], 3).sortByKey(True, 4).collect() == []
    assert await sc.parallelize([], 3).sortBy(lambda x: x).collect() == []


async def test_sortByKey_into_one_partition_does_not_shuffle(sc):
    rdd = sc.parallelize([(k, k) for k in (3, 1, 2, 5, 4)], 3)
    async with recording(sc) as rec:
        assert await rdd.sortByKey(numPartitions=1).keys().collect() == [1, 2, 3, 4, 5]
    assert len(rec.stages) == 1
    assert rec.stages[0].numTasks == 1


async def test_sortByKey_samples_once(sc):
    rdd = sc.parallelize([(k % 97, k) for k in range(500)], 4).sortByKey(True, 3)
    async with recording(sc) as rec:  # concurrent first actions share one sampling
        first, count, found = await asyncio.gather(rdd.collect(), rdd.count(), rdd.lookup(5))
    assert len(rec.jobs) == 1 + 3  # one counting-and-sampling job, then the three actions
    assert [k for k, _ in first] == sorted(k % 97 for k in range(500))
    assert count == 500
    assert sorted(found) == list(range(5, 500, 97))
    assert isinstance(rdd.partitioner, RangePartitioner)
    async with recording(sc) as rec:
        assert await rdd.collect() == first
    assert len(rec.jobs) == 1  # no new count or sample job
    assert len(rec.stages) == 1  # and the map stage is reused


async def test_sortBy(sc):
    # doctest of RDD.sortBy
    assert await sc.parallelize(TMP).sortBy(lambda x: x[0]).collect() == [
        ("1", 3), ("2", 5), ("a", 1), ("b", 2), ("d", 4)]
    assert await sc.parallelize(TMP).sortBy(lambda x: x[1]).collect() == [
        ("a", 1), ("b", 2), ("1", 3), ("d", 4), ("2", 5)]
    data = [(i * 37) % 101 for i in range(101)]
    assert await sc.parallelize(data, 4).sortBy(lambda x: -x, True, 3).collect() == sorted(
        data, reverse=True)
    assert await sc.parallelize(data, 4).sortBy(lambda x: x, False).collect() == sorted(
        data, reverse=True)


async def test_repartitionAndSortWithinPartitions(sc):
    # test_rdd.py test_repartitionAndSortWithinPartitions_asc / _desc
    rdd = sc.parallelize([(0, 5), (3, 8), (2, 6), (0, 8), (3, 8), (1, 3)], 2)
    asc = await rdd.repartitionAndSortWithinPartitions(2, lambda key: key % 2, True).glom(
    ).collect()
    assert asc == [[(0, 5), (0, 8), (2, 6)], [(1, 3), (3, 8), (3, 8)]]
    desc = await rdd.repartitionAndSortWithinPartitions(2, lambda key: key % 2, False).glom(
    ).collect()
    assert desc == [[(2, 6), (0, 5), (0, 8)], [(3, 8), (3, 8), (1, 3)]]
    # defaults: the input's number of partitions, portable_hash, ascending
    words = sc.parallelize([(w, len(w)) for w in "d a cc b aa e".split()], 3)
    result = words.repartitionAndSortWithinPartitions()
    assert result.getNumPartitions() == 3
    for i, part in enumerate(await result.glom().collect()):
        assert part == sorted(part)
        assert all(portable_hash(k) % 3 == i for k, _ in part)
    keyed = await words.repartitionAndSortWithinPartitions(1, keyfunc=lambda k: -len(k)).collect()
    assert [len(k) for k, _ in keyed] == [2, 2, 1, 1, 1, 1]


async def test_repartitionAndSortWithinPartitions_on_a_partitioned_rdd(sc):
    parted = sc.parallelize([(i, -i) for i in range(30)], 3).partitionBy(3)
    await parted.count()
    result = parted.repartitionAndSortWithinPartitions(3, ascending=False)
    assert result.partitioner == parted.partitioner
    async with recording(sc) as rec:
        glom = await result.glom().collect()
    assert len(rec.stages) == 1
    assert glom == [sorted(p, reverse=True) for p in await parted.glom().collect()]


# -- repartition / coalesce(shuffle=True) -------------------------------------------------

async def test_repartition(sc):
    # doctest of RDD.repartition
    rdd = sc.parallelize([1, 2, 3, 4, 5, 6, 7], 4)
    assert sorted(await rdd.glom().collect()) == [[1], [2, 3], [4, 5], [6, 7]]
    assert len(await rdd.repartition(2).glom().collect()) == 2
    assert len(await rdd.repartition(10).glom().collect()) == 10
    assert sorted(await rdd.repartition(3).collect()) == [1, 2, 3, 4, 5, 6, 7]
    # test_rdd.py test_repartition_no_skewed
    data_rdd = sc.parallelize(range(0, 30), 30)
    repartitioned = data_rdd.repartition(10)
    zeros = [x for x in map(len, await repartitioned.glom().collect()) if x == 0]
    assert zeros == []
    with pytest.raises(ValueError, match="must be positive"):
        rdd.repartition(0)


@pytest.mark.parametrize(("size", "slices", "n"), [(1000, 7, 3), (1000, 3, 8), (50, 1, 4),
                                                   (10, 5, 1)])
async def test_coalesce_with_shuffle_balances_the_partitions(sc, size, slices, n):
    rdd = sc.parallelize([f"x{i}" for i in range(size)], slices)
    result = rdd.coalesce(n, shuffle=True)
    assert result.getNumPartitions() == n
    sizes = [len(p) for p in await result.glom().collect()]
    assert sum(sizes) == size
    # each input partition deals its elements round-robin: at most one apart per input
    assert max(sizes) - min(sizes) <= slices, sizes
    assert sorted(await result.collect()) == sorted(f"x{i}" for i in range(size))
    assert result.partitioner is None


# -- joins -----------------------------------------------------------------------------

async def test_join(sc):
    # doctest of RDD.join
    x = sc.parallelize([("a", 1), ("b", 4)])
    y = sc.parallelize([("a", 2), ("a", 3)])
    assert sorted(await x.join(y).collect()) == [("a", (1, 2)), ("a", (1, 3))]
    assert x.join(y, 5).getNumPartitions() == 5
    assert sorted(await x.join(y, 5).collect()) == [("a", (1, 2)), ("a", (1, 3))]


async def test_join_default_partitions_follow_pyspark(sc):
    # PySpark joins through union(...).groupByKey(): as many partitions as both inputs
    x = sc.parallelize([("a", 1)], 3)
    y = sc.parallelize([("a", 2)], 2)
    assert x.join(y).getNumPartitions() == 5
    assert x.cogroup(y).getNumPartitions() == 5
    assert x.groupWith(y, y).getNumPartitions() == 7
    assert x.subtractByKey(y).getNumPartitions() == 5
    assert x.intersection(y).getNumPartitions() == 5
    # an existing hash partitioning is reused instead (as Spark's defaultPartitioner)
    parted = x.partitionBy(4)
    assert parted.join(y).getNumPartitions() == 4
    assert y.join(parted).getNumPartitions() == 4


async def test_outer_joins(sc):
    # doctests of RDD.leftOuterJoin, RDD.rightOuterJoin, RDD.fullOuterJoin
    x = sc.parallelize([("a", 1), ("b", 4)])
    y = sc.parallelize([("a", 2)])
    assert sorted(await x.leftOuterJoin(y).collect()) == [("a", (1, 2)), ("b", (4, None))]
    assert sorted(await y.rightOuterJoin(x).collect()) == [("a", (2, 1)), ("b", (None, 4))]
    y = sc.parallelize([("a", 2), ("c", 8)])
    assert sorted(await x.fullOuterJoin(y).collect()) == [
        ("a", (1, 2)), ("b", (4, None)), ("c", (None, 8))]
    assert x.leftOuterJoin(y, 3).getNumPartitions() == 3
    assert x.rightOuterJoin(y, 3).getNumPartitions() == 3
    assert x.fullOuterJoin(y, 3).getNumPartitions() == 3


async def test_joins_with_duplicate_keys_and_none_values(sc):
    x = sc.parallelize([(1, "a"), (1, "b"), (2, None), (3, "c")], 3)
    y = sc.parallelize([(1, "x"), (1, None), (4, "y")], 2)
    assert sorted(await x.join(y).collect(), key=repr) == sorted(
        [(1, ("a", "x")), (1, ("a", None)), (1, ("b", "x")), (1, ("b", None))], key=repr)
    assert sorted(await x.leftOuterJoin(y).collect(), key=repr) == sorted(
        [(1, ("a", "x")), (1, ("a", None)), (1, ("b", "x")), (1, ("b", None)),
         (2, (None, None)), (3, ("c", None))], key=repr)
    assert sorted(await x.rightOuterJoin(y).collect(), key=repr) == sorted(
        [(1, ("a", "x")), (1, ("a", None)), (1, ("b", "x")), (1, ("b", None)),
         (4, (None, "y"))], key=repr)
    assert len(await x.fullOuterJoin(y).collect()) == 7


async def test_cogroup(sc):
    # doctest of RDD.cogroup
    x = sc.parallelize([("a", 1), ("b", 4)])
    y = sc.parallelize([("a", 2)])
    assert [(k, tuple(map(list, v))) for k, v in sorted(await x.cogroup(y).collect())] == [
        ("a", ([1], [2])), ("b", ([4], []))]
    groups = await x.cogroup(y, 3).collect()
    assert all(isinstance(g, ResultIterable) for _, vs in groups for g in vs)


async def test_groupWith(sc):
    # doctest of RDD.groupWith
    w = sc.parallelize([("a", 5), ("b", 6)])
    x = sc.parallelize([("a", 1), ("b", 4)])
    y = sc.parallelize([("a", 2)])
    z = sc.parallelize([("b", 42)])
    assert [(k, tuple(map(list, v))) for k, v in sorted(await w.groupWith(x, y, z).collect())
            ] == [("a", ([5], [1], [2], [])), ("b", ([6], [4], [], [42]))]
    assert [(k, tuple(map(list, v))) for k, v in sorted(await w.groupWith(x).collect())] == [
        ("a", ([5], [1])), ("b", ([6], [4]))]


async def test_subtractByKey(sc):
    # doctest of RDD.subtractByKey
    x = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 2)])
    y = sc.parallelize([("a", 3), ("c", None)])
    assert sorted(await x.subtractByKey(y).collect()) == [("b", 4), ("b", 5)]
    assert x.subtractByKey(y, 3).getNumPartitions() == 3


async def test_subtract(sc):
    # doctest of RDD.subtract
    x = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 3)])
    y = sc.parallelize([("a", 3), ("c", None)])
    assert sorted(await x.subtract(y).collect()) == [("a", 1), ("b", 4), ("b", 5)]
    # duplicates of self are kept
    dup = sc.parallelize([1, 2, 2, 3, 3, 3, 4], 3)
    assert sorted(await dup.subtract(sc.parallelize([3, 5])).collect()) == [1, 2, 2, 4]
    assert dup.subtract(sc.parallelize([3]), 2).getNumPartitions() == 2


async def test_intersection(sc):
    # doctest of RDD.intersection
    rdd1 = sc.parallelize([1, 10, 2, 3, 4, 5])
    rdd2 = sc.parallelize([1, 6, 2, 3, 7, 8])
    assert sorted(await rdd1.intersection(rdd2).collect()) == [1, 2, 3]
    # the result has no duplicates
    a = sc.parallelize(["x", "x", "y", "z", "z"], 2)
    b = sc.parallelize(["z", "x", "x", "w"], 3)
    assert sorted(await a.intersection(b).collect()) == ["x", "z"]


async def test_cartesian(sc):
    # doctest of RDD.cartesian
    rdd = sc.parallelize([1, 2])
    assert sorted(await rdd.cartesian(rdd).collect()) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    a = sc.parallelize(range(5), 3)
    b = sc.parallelize("xyz", 2)
    prod = a.cartesian(b)
    assert prod.getNumPartitions() == 6
    # partition i * 2 + j pairs partition i of a with partition j of b
    a_parts = await a.glom().collect()
    b_parts = await b.glom().collect()
    assert await prod.glom().collect() == [
        [(x, y) for x in pa for y in pb] for pa in a_parts for pb in b_parts]
    assert await sc.emptyRDD().cartesian(b).collect() == []
    assert await a.cartesian(sc.emptyRDD()).collect() == []
    assert await a.cartesian(sc.parallelize([], 2)).count() == 0


async def test_wide_transformations_of_empty_rdds(sc):
    for empty in (sc.emptyRDD(), sc.parallelize([], 3)):
        other = sc.parallelize([(1, 2)], 2)
        assert await empty.reduceByKey(add).collect() == []
        assert await empty.groupByKey().collect() == []
        assert await empty.partitionBy(3).collect() == []
        assert await empty.distinct().collect() == []
        assert await empty.repartition(2).collect() == []
        assert await empty.join(other).collect() == []
        assert await empty.leftOuterJoin(other).collect() == []
        assert await empty.rightOuterJoin(other).collect() == [(1, (None, 2))]
        assert await other.subtractByKey(empty).collect() == [(1, 2)]
        assert await empty.cogroup(empty).collect() == []
        assert await empty.intersection(other).collect() == []
        assert await empty.groupBy(len).collect() == []
        assert await empty.countApproxDistinct() == 0
        assert await empty.lookup(1) == []


# -- countApproxDistinct ---------------------------------------------------------------

async def test_countApproxDistinct_doctest(sc):
    # doctest of RDD.countApproxDistinct
    n = await sc.parallelize(range(1000)).map(str).countApproxDistinct()
    assert 900 < n < 1100
    n = await sc.parallelize([i % 20 for i in range(1000)]).countApproxDistinct()
    assert 16 < n < 24


@pytest.mark.parametrize(("n", "copies", "relative_sd"), [
    (1000, 3, 0.05), (10_000, 2, 0.05), (100_000, 1, 0.05), (20_000, 1, 0.01)])
async def test_countApproxDistinct_is_within_a_few_relativeSD(sc, n, copies, relative_sd):
    # each value `copies` times, spread over partitions; as ints and as strings
    rdd = sc.parallelize(range(copies * n), 4).map(lambda i: (i * 7) % n)
    for data in (rdd, rdd.map(lambda i: f"v{i}")) if n <= 10_000 else (rdd,):
        estimate = await data.countApproxDistinct(relative_sd)
        assert abs(estimate - n) <= 4 * relative_sd * n, (n, relative_sd, estimate)


async def test_countApproxDistinct_relativeSD_errors(sc):
    rdd = sc.parallelize(range(10))
    with pytest.raises(ValueError, match=r"relativeSD should be greater than 0\.000017"):
        await rdd.countApproxDistinct(0.00001)
    with pytest.raises(ValueError, match="relativeSD"):
        await rdd.countApproxDistinct(0.0001)  # finer than the supported registers
    assert 5 <= await rdd.countApproxDistinct(0.4) <= 15  # coarse: 16 registers


# -- lookup ----------------------------------------------------------------------------

async def test_lookup(sc):
    # doctest of RDD.lookup
    r = range(1000)
    rdd = sc.parallelize(list(zip(r, r, strict=True)), 10)
    assert await rdd.lookup(42) == [42]
    sorted_rdd = rdd.sortByKey()
    assert await sorted_rdd.lookup(42) == [42]
    assert await sorted_rdd.lookup(1024) == []
    rdd2 = sc.parallelize([(("a", "b"), "c")]).groupByKey()
    assert list((await rdd2.lookup(("a", "b")))[0]) == ["c"]
    # a partitioner is kept through mapValues, before and after sortByKey's sampling
    assert await rdd.sortByKey(False, 4).mapValues(str).lookup(7) == ["7"]
    assert await rdd.partitionBy(3).mapValues(str).lookup(7) == ["7"]


async def test_lookup_with_a_partitioner_runs_one_task(sc):
    pairs = sc.parallelize([(i % 50, i) for i in range(500)], 5)
    parted = pairs.partitionBy(4)
    await parted.count()  # run the map stage
    async with recording(sc) as rec:
        assert sorted(await parted.lookup(7)) == list(range(7, 500, 50))
    assert len(rec.tasks) == 1
    assert rec.tasks[0].partition == portable_hash(7) % 4
    reduced = pairs.reduceByKey(add, 6)
    await reduced.count()
    async with recording(sc) as rec:
        assert await reduced.lookup("missing") == []
    assert len(rec.tasks) == 1
    async with recording(sc) as rec:  # no partitioner: every partition is scanned
        assert sorted(await pairs.lookup(7)) == list(range(7, 500, 50))
    assert len(rec.tasks) == 5


# -- co-partitioning and stage reuse -----------------------------------------------------

async def test_join_of_co_partitioned_rdds_does_not_shuffle_again(sc):
    a = sc.parallelize([(i, i) for i in range(40)], 3).partitionBy(4)
    b = sc.parallelize([(i, -i) for i in range(0, 40, 2)], 5).partitionBy(4)
    joined = a.join(b)
    assert isinstance(joined, JoinedRDD)  # the hash join reads both parents narrowly
    assert all(isinstance(d, OneToOneDependency) for d in joined.dependencies)
    assert joined.partitioner == HashPartitioner(4)
    async with recording(sc) as rec:
        assert sorted(await joined.collect()) == [(i, (i, -i)) for i in range(0, 40, 2)]
    assert len(rec.jobs) == 1
    assert len(rec.jobs[0].stageIds) == 3  # two map stages (a, b) and the result stage
    assert len(rec.stages) == 3
    assert rec.stages[-1].numTasks == 4
    # a second action on the same RDD reuses both map stages
    async with recording(sc) as rec:
        assert await joined.count() == 20
    assert len(rec.stages) == 1


async def test_narrow_dependency_in_join(sc):
    # test_rdd.py test_narrow_dependency_in_join (stage counts of each job)
    rdd = sc.parallelize(range(10)).map(lambda x: (x, x))
    parted = rdd.partitionBy(2)
    assert parted.union(parted).getNumPartitions() == 4  # no partitioner-aware union here
    cases = [(parted.join(parted), 2), (parted.join(rdd), 3), (parted.cogroup(parted), 2),
             (parted.cogroup(rdd), 3)]
    for joined, stages in cases:
        async with recording(sc) as rec:
            d = sorted(await joined.collect())
        assert len(d) == 10
        assert d[0][0] == 0
        assert len(rec.jobs) == 1
        assert len(rec.jobs[0].stageIds) == stages
    mixed = parted.join(rdd)
    assert [type(d) for d in mixed.dependencies] == [OneToOneDependency, ShuffleDependency]


async def test_co_partitioned_cogroup_with_three_rdds_and_a_custom_partitionFunc(sc):
    def by_mod(k):
        return k % 7

    rdds = [sc.parallelize([(i, j) for i in range(20)], j + 1).partitionBy(3, by_mod)
            for j in range(3)]
    grouped = rdds[0].groupWith(rdds[1], rdds[2])
    assert grouped.partitioner == HashPartitioner(3, by_mod)
    assert all(isinstance(d, OneToOneDependency)
               for d in grouped.dependencies[0].rdd.dependencies)
    got = await grouped.mapValues(lambda vs: tuple(map(list, vs))).collect()
    assert sorted(got) == [(i, ([0], [1], [2])) for i in range(20)]
    glom = await grouped.keys().glom().collect()
    assert all(by_mod(k) % 3 == p for p, keys in enumerate(glom) for k in keys)


async def test_self_join_reads_its_parent_once(sc):
    x = sc.parallelize([(i % 3, i) for i in range(9)], 3)
    joined = x.join(x)
    assert len(joined.dependencies) == 1
    async with recording(sc) as rec:
        got = await joined.collect()
    assert len(rec.stages) == 2  # one map stage for both sides
    pairs = await x.collect()
    assert sorted(got) == sorted((k, (v, w)) for k, v in pairs for k2, w in pairs if k == k2)
    grouped = await x.groupWith(sc.parallelize([(0, "y")]), x).mapValues(
        lambda g: tuple(map(sorted, g))).collect()
    assert sorted(grouped) == [(0, ([0, 3, 6], ["y"], [0, 3, 6])),
                               (1, ([1, 4, 7], [], [1, 4, 7])), (2, ([2, 5, 8], [], [2, 5, 8]))]


async def test_iterated_self_joins_stay_linear(sc):
    # x.join(x) of a co-partitioned x reads x narrowly: once per task, not once per side
    # (else each level would compute the one below twice: 2**20 times here).
    x = sc.parallelize([(i, 1) for i in range(4)], 2).sortByKey(True, 2)
    for _ in range(20):
        x = x.join(x, 2).mapValues(lambda vw: vw[0] + vw[1])
    async with asyncio.timeout(60):
        assert sorted(await x.collect()) == [(i, 2 ** 20) for i in range(4)]
        assert await x.lookup(3) == [2 ** 20]


async def test_functions_of_wide_transformations_may_not_use_rdds(sc):
    other = sc.parallelize([1])
    rdd = sc.parallelize([(1, 1), (1, 2)])
    parted = rdd.partitionBy(2)
    cases = [
        ("reduceByKey()", rdd.reduceByKey(lambda a, b: a + other.count())),
        ("reduceByKey()", parted.reduceByKey(lambda a, b: a + other.count(), 2)),
        ("aggregateByKey()", rdd.aggregateByKey(0, add, lambda a, b: other.count())),
        ("combineByKey()", parted.combineByKey(lambda v: other, add, add, 2)),
        ("partitionBy()", rdd.partitionBy(2, lambda k: other.count())),
        ("sortByKey()", rdd.sortByKey(True, 2, keyfunc=lambda k: other.count())),
    ]
    for what, result in cases:
        with pytest.raises(RuntimeError, match=re.escape(f"the function passed to {what} "
                                                         "references ParallelCollectionRDD")):
            await result.collect()


async def test_map_stage_of_a_wide_transformation_is_reused_across_jobs(sc):
    grouped = sc.parallelize(range(100), 4).map(lambda x: (x % 3, x)).groupByKey(2)
    async with recording(sc) as rec:
        assert await grouped.count() == 3
    assert [s.numTasks for s in rec.stages] == [4, 2]
    async with recording(sc) as rec:
        assert sorted_groups(await grouped.collect()) == [
            (k, list(range(k, 100, 3))) for k in range(3)]
        assert await grouped.mapValues(len).collectAsMap() == {0: 34, 1: 33, 2: 33}
    assert [s.numTasks for s in rec.stages] == [2, 2]


# A context of its own (slow to start), and nothing here depends on the driver's event
# loop: one loop is enough.
@pytest.mark.asyncio(loop_scope="function", loop_factories=["uvloop"])
async def test_default_parallelism_sets_the_default_partitions():
    conf = {"spark.default.parallelism": "3"}
    async with asyncspark.Context("local[2]", conf=conf) as sc:
        pairs = sc.parallelize([(i % 4, i) for i in range(20)], 5)
        assert pairs.reduceByKey(add).getNumPartitions() == 3
        assert pairs.groupByKey().getNumPartitions() == 3
        assert pairs.join(pairs).getNumPartitions() == 3
        assert pairs.distinct().getNumPartitions() == 3
        assert pairs.sortByKey().getNumPartitions() == 3
        expected: dict = defaultdict(int)
        for i in range(20):
            expected[i % 4] += i
        assert dict(await pairs.reduceByKey(add).collect()) == expected


async def test_sortByKey_balances_skewed_parent_partitions(sc):
    # one parent partition holds almost everything: it is sampled again in proportion
    small = sc.parallelize([(k, None) for k in range(0, 40, 2)], 10)
    big = sc.parallelize([((k * 7919) % 20000, None) for k in range(20000)], 1)
    rdd = small.union(big).sortByKey(True, 4)
    async with recording(sc) as rec:
        sizes = await rdd.glom().map(len).collect()
    assert len(rec.jobs) == 3  # sketch, re-sample of the big partition, the action
    assert sum(sizes) == 20020
    assert max(sizes) < 2 * 20020 / 4, sizes
    keys = [k for k, _ in await rdd.collect()]
    assert keys == sorted(keys)
