"""ExternalMerger and ExternalSorter against plain-Python references, under budgets small
enough to spill many times; memory stays near the budget; no spill file outlives them."""

from __future__ import annotations

import copy
import gc
import operator
import os
import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark.errors import SerializationError
from asyncspark.functions import Aggregator, identity
from asyncspark.shuffle.sorter import ExternalMerger, ExternalSorter
from asyncspark.sizes import estimate_size

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


def _append(c, v):
    c.append(v)
    return c


def _extend(a, b):
    a.extend(b)
    return a


SUM = Aggregator(identity, operator.add, operator.add)
SUM_LAMBDA = Aggregator(lambda v: v, operator.add, operator.add)
GROUP = Aggregator(lambda v: [v], _append, _extend)  # groupByKey, as PySpark builds it
MAX = Aggregator(identity, max, max)
AGGREGATORS = {"sum": SUM, "sum_lambda": SUM_LAMBDA, "group": GROUP, "max": MAX}


def reference(agg, values=(), combiners=()):
    d = {}
    for k, v in values:
        d[k] = agg.mergeValue(d[k], v) if k in d else agg.createCombiner(v)
    for k, c in combiners:
        d[k] = agg.mergeCombiners(d[k], c) if k in d else c
    return d


def files_under(root) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs] + \
        [d for d, _, _ in os.walk(root) if d != str(root)]


@pytest.fixture
def spill_dir(tmp_path):
    yield tmp_path
    assert files_under(tmp_path) == []


keys = st.one_of(st.integers(-20, 20), st.text(max_size=3), st.tuples(st.integers(0, 3)))
records = st.lists(st.tuples(keys, st.integers(-1000, 1000)), max_size=400)
budgets = st.sampled_from([1, 500, 3_000, 20_000, 10**12])


# -- ExternalMerger ------------------------------------------------------------------

@FAST
@given(records, records, budgets, st.sampled_from(sorted(AGGREGATORS)),
       st.sampled_from([2, 3, 64]))
def test_merger_matches_dict(spill_dir, values, more_values, budget, agg_name, parts):
    agg = AGGREGATORS[agg_name]
    m = ExternalMerger(agg, budget, spill_dir, parts)
    m.merge_values(values)
    # Combiners from elsewhere (map-side), then more raw values.
    combiners = list(reference(agg, more_values).items())
    # The merger owns what it is fed (it may grow a combiner in place, as Spark's and
    # PySpark's do): give it copies, the reference below needs the originals.
    m.merge_combiners(copy.deepcopy(combiners))
    m.merge_values(more_values)
    expected = reference(agg, values, combiners)
    expected = reference(agg, (), list(expected.items()) + list(
        reference(agg, more_values).items())) if more_values else expected
    out = list(m.items())
    assert len(out) == len({k for k, _ in out})  # each key once
    assert dict(out) == expected  # lists too: values stay in the order they came
    if budget >= 10**12:
        assert m.spill_count == 0
        assert m.spilled_bytes == 0


def test_merger_spills_and_counts(spill_dir):
    m = ExternalMerger(GROUP, 2_000, spill_dir, 8)
    data = [(i % 97, i) for i in range(5_000)]
    m.merge_values(data)
    assert m.spill_count > 0
    assert m.spilled_bytes > 0
    assert files_under(spill_dir)  # spill files exist while merging
    assert dict(m.items()) == reference(GROUP, data)


def test_merger_recursion_rehashes_a_crowded_partition(spill_dir):
    # Every key lands in spill partition 0 (hash(k) % 64 == 0): merging that partition
    # alone is over budget again, so it is re-spilled with another hash.
    data = [(64 * (i % 3000), i) for i in range(12_000)]
    m = ExternalMerger(SUM, 20_000, spill_dir)
    m.merge_values(data)
    first_level = m.spill_count
    out = dict(m.items())
    assert out == reference(SUM, data)
    assert m.spill_count > first_level + 1


def test_merger_single_huge_key(spill_dir):
    # One key's combiner is larger than the budget: it cannot be split, it is merged
    # in memory after bounded recursion, not spilled forever.
    data = [("hot" if i % 4 else f"k{i}", i) for i in range(20_000)]
    m = ExternalMerger(GROUP, 5_000, spill_dir, 4)
    m.merge_values(data)
    assert dict(m.items()) == reference(GROUP, data)


def test_merger_without_spill_is_plain_iteration(spill_dir):
    m = ExternalMerger(SUM, 10**9, spill_dir)
    m.merge_values([("a", 1), ("b", 2), ("a", 3)])
    assert sorted(m.items()) == [("a", 4), ("b", 2)]
    assert m.spill_count == 0


def test_merger_abandoned_iteration_removes_files(spill_dir):
    m = ExternalMerger(SUM, 1_000, spill_dir, 4)
    m.merge_values((i, i) for i in range(3_000))
    it = m.items()
    next(it)
    it.close()
    assert files_under(spill_dir) == []


def test_merger_close_and_collection_remove_files(spill_dir):
    m = ExternalMerger(SUM, 1_000, spill_dir, 4)
    m.merge_values((i, i) for i in range(3_000))
    m.close()
    assert files_under(spill_dir) == []
    m = ExternalMerger(SUM, 1_000, spill_dir, 4)
    m.merge_values((i, i) for i in range(3_000))
    assert files_under(spill_dir)
    del m
    gc.collect()
    assert files_under(spill_dir) == []


def test_merger_default_spill_dir_is_temp(spill_dir):
    with ExternalMerger(SUM, 1_000, num_spill_partitions=4) as m:
        m.merge_values((i, i) for i in range(3_000))
        assert m.spill_count > 0
        assert dict(m.items()) == {i: i for i in range(3_000)}


def test_merger_unpicklable_key_when_spilling(spill_dir):
    class Key:
        def __reduce__(self):
            raise TypeError("no pickling")

    m = ExternalMerger(SUM, 1_000, spill_dir, 4)
    with pytest.raises(SerializationError, match="cannot spill"):
        m.merge_values((Key(), i) for i in range(3_000))
    m.close()


def test_merger_bad_arguments(spill_dir):
    with pytest.raises(ValueError, match="memory_budget"):
        ExternalMerger(SUM, 0, spill_dir)
    with pytest.raises(TypeError, match="memory_budget"):
        ExternalMerger(SUM, "1g", spill_dir)
    with pytest.raises(ValueError, match="num_spill_partitions"):
        ExternalMerger(SUM, 100, spill_dir, 1)


# -- ExternalSorter ------------------------------------------------------------------

sortable = st.one_of(
    st.lists(st.integers(-50, 50)),
    st.lists(st.tuples(st.integers(0, 8), st.integers())),  # ties on the key
    st.lists(st.text(max_size=3)),
)


@FAST
@given(sortable, st.sampled_from([1, 300, 5_000, 10**12]), st.booleans(),
       st.sampled_from(["none", "first", "neg"]))
def test_sorter_matches_sorted(spill_dir, items, budget, reverse, key_name):
    if key_name == "neg" and items and not isinstance(items[0], int):
        key_name = "none"
    key = {"none": None, "first": lambda x: x[0] if isinstance(x, tuple) else x,
           "neg": operator.neg}[key_name]
    s = ExternalSorter(budget, spill_dir)
    indexed = [(x, i) for i, x in enumerate(items)]  # to check stability, compare on x
    out = list(s.sorted(indexed, key=lambda p: p[0] if key is None else key(p[0]),
                        reverse=reverse))
    assert out == sorted(indexed, key=lambda p: p[0] if key is None else key(p[0]),
                         reverse=reverse)
    assert list(s.sorted(items, key=key, reverse=reverse)) == sorted(
        items, key=key, reverse=reverse)
    if budget >= 10**12:
        assert s.spill_count == 0


def test_sorter_many_runs_merge_in_passes(spill_dir):
    rnd = random.Random(3)
    xs = [(rnd.randrange(100), i) for i in range(3_000)]
    s = ExternalSorter(200, spill_dir)
    out = list(s.sorted(xs, key=operator.itemgetter(0)))
    assert s.spill_count > 3_000 // 16  # runs of 16 records, plus those of merge passes
    assert out == sorted(xs, key=operator.itemgetter(0))
    assert files_under(spill_dir) == []  # removed once the iterator is exhausted


def test_sorter_abandoned_and_closed(spill_dir):
    s = ExternalSorter(500, spill_dir)
    it = s.sorted(range(2_000, 0, -1))
    assert next(it) == 1
    assert s.spilled_bytes > 0
    it.close()
    s.close()
    assert files_under(spill_dir) == []
    s = ExternalSorter(500, spill_dir)
    s.sorted(range(2_000))
    del s
    gc.collect()


def test_sorter_unorderable_items_with_key(spill_dir):
    items = [({"n": i % 5}, i) for i in range(1_000)]
    out = list(ExternalSorter(300, spill_dir).sorted(items, key=lambda p: p[0]["n"]))
    assert out == sorted(items, key=lambda p: p[0]["n"])


# -- memory ----------------------------------------------------------------------------

BUDGET = 512 << 10
OVERHEAD = 256 << 10  # spill and pickle buffers, one batch of records


def _distinct_str_keys(n):
    rnd = random.Random(1)
    for i in range(n):
        yield f"key-{rnd.randrange(10**12)}", i


def _grouped(n, nkeys):
    rnd = random.Random(2)
    for i in range(n):
        yield rnd.randrange(nkeys), f"value-{i}"


@pytest.mark.parametrize(("agg", "data", "unspilled"), [
    (SUM, lambda: _distinct_str_keys(19_000), 4),
    (GROUP, lambda: _grouped(40_000, 1_000), 4),  # big enough on 3.12 too
], ids=["sum-distinct-keys", "group-2k-keys"])
def test_merger_memory_stays_near_budget(spill_dir, agg, data, unspilled):
    tracemalloc.start()
    try:
        reference(agg, data())
        assert tracemalloc.get_traced_memory()[1] > unspilled * BUDGET  # the data is big
        tracemalloc.reset_peak()
        m = ExternalMerger(agg, BUDGET, spill_dir)
        m.merge_values(data())
        n = sum(1 for _ in m.items())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n > 0
    assert m.spill_count >= unspilled - 1
    assert peak < 2 * BUDGET + OVERHEAD, f"peak {peak / BUDGET:.2f}x the budget"


def test_sorter_memory_stays_near_budget(spill_dir):
    rnd = random.Random(5)
    tracemalloc.start()
    try:
        s = ExternalSorter(BUDGET, spill_dir)
        n = sum(1 for _ in s.sorted(((rnd.random(), str(i)) for i in range(30_000)),
                                    key=operator.itemgetter(0)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 30_000
    assert s.spill_count >= 4
    assert peak < 2 * BUDGET + OVERHEAD, f"peak {peak / BUDGET:.2f}x the budget"


def test_estimate_size():
    assert estimate_size(12345) == __import__("sys").getsizeof(12345)
    small = estimate_size(["ab", "cd"])
    assert small > estimate_size([])
    big = list(range(10**6, 10**6 + 1000))
    assert 0.9 < estimate_size(big) / (__import__("sys").getsizeof(big) + 28 * 1000) < 1.2
    assert estimate_size({"k": "v" * 100}) > 100
    assert estimate_size(frozenset({"x" * 50})) > 50

    class Obj:
        def __init__(self):
            self.payload = "z" * 1000

    assert estimate_size(Obj()) > 1000


@pytest.mark.parametrize("new_keys", [False, True])
def test_merger_user_key_error_propagates(spill_dir, new_keys):
    # The loop for mostly-known keys catches the KeyError of its dict lookup: one raised
    # by the user's function must not be taken for a new key.
    def merge(c, v):
        if v == 999:
            raise KeyError("from user code")
        return c + v

    m = ExternalMerger(Aggregator(identity, merge, merge), 10**9, spill_dir)
    data = [(i if new_keys else i % 3, i) for i in range(5_000)] + [(1, 999)]
    with pytest.raises(KeyError, match="from user code"):
        m.merge_values(data)


def test_merger_rare_new_keys(spill_dir):
    # Mostly known keys (the loop that catches KeyError) with a trickle of new ones.
    data = [(i % 50 if i % 300 else f"new{i}", i) for i in range(20_000)]
    for agg in (GROUP, SUM_LAMBDA, SUM):
        m = ExternalMerger(agg, 10**9, spill_dir)
        m.merge_values(data)
        assert dict(m.items()) == reference(agg, data)


def _skewed(n, hot_share, hot_keys):
    rnd = random.Random(4)
    for i in range(n):
        hot = rnd.random() < hot_share
        yield (rnd.randrange(hot_keys) if hot else rnd.randrange(10**6)), i * 1000


@pytest.mark.parametrize(("agg", "data"), [
    (SUM, lambda: _distinct_str_keys(15_000)),
    (GROUP, lambda: _grouped(20_000, 500)),  # lists that keep growing
    (GROUP, lambda: _skewed(30_000, 0.3, 1)),  # one key far bigger than the rest
    (GROUP, lambda: _skewed(30_000, 0.5, 6)),
], ids=["sum", "group-growing", "group-one-hot-key", "group-six-hot-keys"])
def test_merger_size_estimate_is_close(agg, data):
    tracemalloc.start()
    try:
        m = ExternalMerger(agg, 10**12)
        m.merge_values(data())
        actual = tracemalloc.get_traced_memory()[0]
        estimate = m._sizer.estimate(m._data, next(iter(m._data)))
    finally:
        tracemalloc.stop()
    assert 0.7 < estimate / actual < 1.5
    m.close()


def test_sorter_context_manager(spill_dir):
    with ExternalSorter(300, spill_dir) as s:
        it = s.sorted(range(500, 0, -1))
        assert next(it) == 1
    assert files_under(spill_dir) == []
