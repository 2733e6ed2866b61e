"""Wide transformations against a plain-Python reference, on random data (Hypothesis),
and over more data than the shuffle's memory budget (spilling).

Keys are ints, short strings and tuples of both (mixed in one RDD where only hashing is
needed; one type per RDD where keys are sorted). Results whose order PySpark leaves
unspecified are compared as multisets; sortByKey and sortBy are compared in order (the
order of the keys: values of equal keys come in no specified order).
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asyncspark
from asyncspark.partitioner import portable_hash

pytestmark = pytest.mark.asyncio(loop_scope="module")

add = operator.add

def examples(n: int) -> settings:
    """Each example runs real jobs (a few ms each, more on a loaded machine): few."""
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


ints = st.integers(-30, 30)
strs = st.text("abcXY\u00e9", max_size=3)
tuples = st.tuples(st.integers(0, 3), st.text("ab", max_size=2))
any_key = st.one_of(ints, strs, tuples)
values = st.integers(-100, 100)
pairs = st.lists(st.tuples(any_key, values), max_size=40)
# one key type per RDD, so that keys compare
sortable_pairs = st.sampled_from([ints, strs, tuples]).flatmap(
    lambda keys: st.lists(st.tuples(keys, values), max_size=40))
slices = st.integers(1, 8)
num_partitions = st.integers(1, 8)


def multiset(xs) -> Counter:
    return Counter(map(repr, xs))


def group(data) -> dict:
    groups: dict = defaultdict(list)
    for k, v in data:
        groups[k].append(v)
    return groups


def check_placement(glom: list[list], n: int) -> None:
    """Every pair of a hash-partitioned RDD is in partition portable_hash(key) % n."""
    assert len(glom) == n
    for i, part in enumerate(glom):
        for kv in part:
            assert portable_hash(kv[0]) % n == i, (kv, i)


def _seq(acc, v):
    acc.append(v)
    return acc


def _comb(a, b):
    a.extend(b)
    return a


@examples(10)
@given(data=pairs, num_slices=slices, n=num_partitions)
async def test_aggregations_match_python(sc, data, num_slices, n):
    rdd = sc.parallelize(data, num_slices)
    groups = group(data)
    sums = {k: sum(vs) for k, vs in groups.items()}

    reduced = await rdd.reduceByKey(add, n).glom().collect()
    check_placement(reduced, n)
    assert dict(itertools.chain.from_iterable(reduced)) == sums
    assert await rdd.reduceByKeyLocally(add) == sums
    assert {k: sorted(vs) for k, vs in await rdd.groupByKey(n).collect()} == {
        k: sorted(vs) for k, vs in groups.items()}
    assert dict(await rdd.combineByKey(
        lambda v: (v, 1), lambda c, v: (c[0] + v, c[1] + 1),
        lambda a, b: (a[0] + b[0], a[1] + b[1]), n).collect()) == {
        k: (sum(vs), len(vs)) for k, vs in groups.items()}
    assert {k: sorted(vs) for k, vs in await rdd.aggregateByKey([], _seq, _comb, n).collect()
            } == {k: sorted(vs) for k, vs in groups.items()}
    assert dict(await rdd.foldByKey(0, add, n).collect()) == sums
    assert multiset(await rdd.keys().distinct(n).collect()) == multiset(groups)
    parted = rdd.partitionBy(n)
    glom = await parted.glom().collect()
    check_placement(glom, n)
    assert multiset(itertools.chain.from_iterable(glom)) == multiset(data)
    by_parity = await rdd.groupBy(lambda kv: kv[1] % 2, n).collect()
    assert {k: multiset(vs) for k, vs in by_parity} == {
        p: multiset(kv for kv in data if kv[1] % 2 == p) for p in {v % 2 for _, v in data}}
    estimate = await rdd.keys().countApproxDistinct()
    assert abs(estimate - len(groups)) <= max(2, 0.2 * len(groups))


@examples(10)
@given(left=pairs, right=pairs, third=pairs, left_slices=slices, right_slices=slices,
       n=st.none() | num_partitions, prepartition=st.booleans())
async def test_joins_match_python(sc, left, right, third, left_slices, right_slices, n,
                                  prepartition):
    a = sc.parallelize(left, left_slices)
    b = sc.parallelize(right, right_slices)
    if prepartition:  # co-partitioned: read narrowly
        a = a.partitionBy(n)
        b = b.partitionBy(n)
    ga, gb = group(left), group(right)
    both = ga.keys() & gb.keys()

    joined = [(k, (v, w)) for k in both for v in ga[k] for w in gb[k]]
    assert multiset(await a.join(b, n).collect()) == multiset(joined)
    left_only = [(k, (v, None)) for k in ga.keys() - gb.keys() for v in ga[k]]
    right_only = [(k, (None, w)) for k in gb.keys() - ga.keys() for w in gb[k]]
    assert multiset(await a.leftOuterJoin(b, n).collect()) == multiset(joined + left_only)
    assert multiset(await a.rightOuterJoin(b, n).collect()) == multiset(joined + right_only)
    assert multiset(await a.fullOuterJoin(b, n).collect()) == multiset(
        joined + left_only + right_only)
    cogrouped = await a.cogroup(b, n).collect()
    assert {k: (sorted(vs), sorted(ws)) for k, (vs, ws) in cogrouped} == {
        k: (sorted(ga.get(k, [])), sorted(gb.get(k, []))) for k in ga.keys() | gb.keys()}
    gc = group(third)
    grouped = await a.groupWith(b, sc.parallelize(third, 3)).collect()
    assert {k: tuple(map(sorted, g)) for k, g in grouped} == {
        k: (sorted(ga.get(k, [])), sorted(gb.get(k, [])), sorted(gc.get(k, [])))
        for k in ga.keys() | gb.keys() | gc.keys()}
    assert multiset(await a.subtractByKey(b, n).collect()) == multiset(
        kv for kv in left if kv[0] not in gb)
    right_set = set(right)
    assert multiset(await a.subtract(b, n).collect()) == multiset(
        kv for kv in left if kv not in right_set)
    assert multiset(await a.intersection(b).collect()) == multiset(set(left) & right_set)
    if prepartition and n is not None:  # the default reuses the partitioning
        assert a.join(b).getNumPartitions() == n


@examples(15)
@given(data=sortable_pairs, num_slices=slices, n=st.none() | num_partitions,
       ascending=st.booleans())
async def test_sorts_match_python(sc, data, num_slices, n, ascending):
    rdd = sc.parallelize(data, num_slices)
    keys = sorted((k for k, _ in data), reverse=not ascending)

    result = rdd.sortByKey(ascending, n)
    glom = await result.glom().collect()
    assert len(glom) == (n or num_slices)
    flat = list(itertools.chain.from_iterable(glom))
    assert [k for k, _ in flat] == keys
    assert multiset(flat) == multiset(data)
    assert await result.collect() == flat

    by_repr = await rdd.sortByKey(ascending, n, keyfunc=repr).collect()
    assert [repr(k) for k, _ in by_repr] == sorted(map(repr, keys), reverse=not ascending)
    assert multiset(by_repr) == multiset(data)

    by_value = await rdd.sortBy(lambda kv: kv[1], ascending, n).collect()
    assert [v for _, v in by_value] == sorted((v for _, v in data), reverse=not ascending)
    assert multiset(by_value) == multiset(data)


@examples(10)
@given(data=sortable_pairs, num_slices=slices, n=num_partitions, ascending=st.booleans())
async def test_repartitionAndSortWithinPartitions_matches_python(sc, data, num_slices, n,
                                                                 ascending):
    rdd = sc.parallelize(data, num_slices)
    glom = await rdd.repartitionAndSortWithinPartitions(n, ascending=ascending).glom().collect()
    check_placement(glom, n)
    for part in glom:
        assert [k for k, _ in part] == sorted((k for k, _ in part), reverse=not ascending)
    assert multiset(itertools.chain.from_iterable(glom)) == multiset(data)


@examples(10)
@given(data=st.lists(any_key, max_size=60), num_slices=slices, n=num_partitions)
async def test_repartition_and_coalesce_with_shuffle_match_python(sc, data, num_slices, n):
    rdd = sc.parallelize(data, num_slices)
    for result in (rdd.repartition(n), rdd.coalesce(n, shuffle=True)):
        glom = await result.glom().collect()
        assert len(glom) == n
        assert multiset(itertools.chain.from_iterable(glom)) == multiset(data)
        sizes = list(map(len, glom))
        assert max(sizes) - min(sizes) <= num_slices


@examples(10)
@given(a=st.lists(any_key, max_size=8), b=st.lists(values, max_size=8),
       a_slices=st.integers(1, 4), b_slices=st.integers(1, 4))
async def test_cartesian_matches_python(sc, a, b, a_slices, b_slices):
    product = sc.parallelize(a, a_slices).cartesian(sc.parallelize(b, b_slices))
    assert product.getNumPartitions() == a_slices * b_slices
    assert multiset(await product.collect()) == multiset(itertools.product(a, b))


@examples(8)
@given(data=pairs, num_slices=slices, n=num_partitions, probe=any_key)
async def test_lookup_matches_python(sc, data, num_slices, n, probe):
    rdd = sc.parallelize(data, num_slices)
    groups = group(data)
    parted = rdd.partitionBy(n)
    reduced = rdd.reduceByKey(add, n)
    for key in [probe, *list(groups)[:2]]:
        expected = sorted(groups.get(key, []))
        assert sorted(await rdd.lookup(key)) == expected
        assert sorted(await parted.lookup(key)) == expected
        assert await reduced.lookup(key) == ([sum(expected)] if expected else [])


# -- spilling --------------------------------------------------------------------------

SPILL_PARTITIONS = 4
SPILL_RECORDS = 30_000  # per partition: 120k pairs, ~9 MB pickled, ~25 MB as objects
SPILL_KEYS = 30_000


def spill_records(i: int):
    for j in range(i * SPILL_RECORDS, (i + 1) * SPILL_RECORDS):
        yield f"k{(j * 7919) % SPILL_KEYS:06d}", f"{j:08d}" * 6


class _TaskEnds:
    def __init__(self) -> None:
        self.ends: list = []
        self.stages: list = []

    def onTaskEnd(self, event) -> None:
        self.ends.append(event)

    def onStageSubmitted(self, event) -> None:
        self.stages.append(event)

    def spilled(self, stage_ids=None) -> int:
        return sum(e.metrics.get("shuffle_spill_bytes", 0) for e in self.ends
                   if stage_ids is None or e.stageId in stage_ids)


# Spilling happens on the executors, whatever loop the driver runs: one loop is enough.
@pytest.mark.asyncio(loop_scope="function", loop_factories=["uvloop"])
async def test_shuffles_beyond_the_memory_budget_spill_and_stay_correct():
    data = [kv for i in range(SPILL_PARTITIONS) for kv in spill_records(i)]
    groups = group(data)
    conf = {"asyncspark.shuffle.memoryBudget": "1m"}
    async with asyncspark.Context("local[2]", conf=conf) as sc:
        rdd = sc.parallelize(range(SPILL_PARTITIONS), SPILL_PARTITIONS).flatMap(spill_records)

        async def run(make, action):
            rec = _TaskEnds()
            sc.addSparkListener(rec)
            try:
                result = await action(make(rdd))
                await asyncio.sleep(0.05)
            finally:
                sc.removeSparkListener(rec)
            return result, rec

        got, rec = await run(lambda r: r.reduceByKey(max, 4), lambda r: r.collectAsMap())
        assert got == {k: max(vs) for k, vs in groups.items()}
        assert rec.spilled() > 0

        got, rec = await run(lambda r: r.groupByKey(3).mapValues(sorted),
                             lambda r: r.collectAsMap())
        assert got == {k: sorted(vs) for k, vs in groups.items()}
        assert rec.spilled() > 0
        # the reduce side (the result stage) spilled too, and said so
        assert rec.spilled({rec.stages[-1].stageId}) > 0

        got, rec = await run(lambda r: r.sortByKey(False, 3), lambda r: r.collect())
        assert [k for k, _ in got] == sorted((k for k, _ in data), reverse=True)
        assert sorted(got) == sorted(data)
        assert rec.spilled() > 0


def _join_reference(left: list, right: list) -> tuple[list, list, list]:
    """(inner pairs, left-only pairs, right-only pairs) of a join, computed in Python."""
    ga, gb = group(left), group(right)
    both = ga.keys() & gb.keys()
    inner = [(k, (v, w)) for k in both for v in ga[k] for w in gb[k]]
    left_only = [(k, (v, None)) for k in ga.keys() - gb.keys() for v in ga[k]]
    right_only = [(k, (None, w)) for k in gb.keys() - ga.keys() for w in gb[k]]
    return inner, left_only, right_only


def _half_of_the_keys(kv) -> bool:
    return kv[0][-1] in "01234"


@pytest.mark.asyncio(loop_scope="function", loop_factories=["uvloop"])
async def test_joins_beyond_the_memory_budget_spill_and_stay_correct():
    """The hash join's build side does not fit the budget: each variant falls back to
    cogrouping with the spilling merger, whichever side it built from, duplicates and
    unmatched keys included."""
    data = [kv for i in range(SPILL_PARTITIONS) for kv in spill_records(i)]
    small = [(k, len(v) + i) for i, (k, v) in enumerate(data) if _half_of_the_keys((k, v))]
    inner, big_only, small_only = _join_reference(data, small)
    assert not small_only  # every key of `small` is in `data`
    assert big_only
    conf = {"asyncspark.shuffle.memoryBudget": "1m"}
    async with asyncspark.Context("local[2]", conf=conf) as sc:
        big_rdd = sc.parallelize(range(SPILL_PARTITIONS), SPILL_PARTITIONS).flatMap(
            spill_records)
        small_rdd = sc.parallelize(small, 3)
        rec = _TaskEnds()
        sc.addSparkListener(rec)
        assert multiset(await big_rdd.join(small_rdd, 2).collect()) == multiset(inner)
        await asyncio.sleep(0.05)
        assert rec.spilled({rec.stages[-1].stageId}) > 0  # the join itself spilled
        got = await big_rdd.leftOuterJoin(small_rdd, 2).collect()
        assert multiset(got) == multiset(inner + big_only)
        got = await small_rdd.fullOuterJoin(big_rdd, 2).collect()
        assert multiset(got) == multiset([(k, (w, v)) for k, (v, w) in inner]
                                         + [(k, (None, v)) for k, (v, _) in big_only])
        got = await small_rdd.rightOuterJoin(big_rdd, 2).collect()
        assert multiset(got) == multiset([(k, (w, v)) for k, (v, w) in inner]
                                         + [(k, (None, v)) for k, (v, _) in big_only])
        sc.removeSparkListener(rec)


async def test_hash_join_builds_from_either_side_with_duplicates(sc):
    """Each variant, built from the left side (smaller) and from the right one, gives
    PySpark's pairs: every combination of duplicate values, None for a missing side."""
    small = [("a", 1), ("a", 2), ("b", 3), ("c", None)]
    big = [("a", "x"), ("a", "y"), ("a", "x"), ("c", "z"), ("d", "w")] * 20
    for left, right in ((small, big), (big, small)):
        inner, left_only, right_only = _join_reference(left, right)
        a, b = sc.parallelize(left, 2), sc.parallelize(right, 3)
        assert multiset(await a.join(b, 2).collect()) == multiset(inner)
        assert multiset(await a.leftOuterJoin(b, 3).collect()) == multiset(inner + left_only)
        assert multiset(await a.rightOuterJoin(b, 1).collect()) == multiset(
            inner + right_only)
        assert multiset(await a.fullOuterJoin(b, 2).collect()) == multiset(
            inner + left_only + right_only)
    x = sc.parallelize(small, 2)
    for variant in (x.join, x.leftOuterJoin, x.rightOuterJoin, x.fullOuterJoin):
        got = await variant(x).collect()  # one side read once; every key matches itself
        assert multiset(got) == multiset(_join_reference(small, small)[0])
