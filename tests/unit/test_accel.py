"""The C loops of ``asyncspark._speedups`` against their pure-Python twins in
``asyncspark._accel``: same results, same calls, same errors."""

from __future__ import annotations

import operator
import os
from bisect import bisect_left

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncspark import _accel
from asyncspark.functions import append_to, extend_with, to_list

try:
    from asyncspark import _speedups
except ImportError:  # pragma: no cover - the build of the extension is optional
    _speedups = None


def test_the_extension_is_built_and_used():
    # The README's install builds it on any machine with a C compiler (this one has).
    assert _speedups is not None, "asyncspark._speedups was not built"
    if os.environ.get("ASYNCSPARK_PURE_PYTHON", "") in ("", "0"):
        assert _accel.NATIVE
        assert _accel.merge_into is _speedups.merge_into


def implementations():
    impls = [("python", _accel.py_merge_into, _accel.py_bucket_hash, _accel.py_bucket_range)]
    if _speedups is not None:
        impls.append(("c", _speedups.merge_into, _speedups.bucket_hash,
                      _speedups.bucket_range))
    return impls


IMPLS = implementations()
keys = st.one_of(st.integers(-50, 50), st.text(max_size=3), st.tuples(st.integers(0, 3)))
records = st.lists(st.tuples(keys, st.integers(-1000, 1000)), max_size=200)


def run_merge(merge_into, recs, create, merge, limit, mode):
    """Merge everything in batches of ``limit``: the dict, the batch results."""
    d: dict = {}
    it = iter(recs)
    results = []
    while True:
        n, k = merge_into(d, it, create, merge, limit, mode)
        results.append((n, k))
        if n < limit:
            return d, results


@given(records, st.integers(1, 50))
def test_merge_modes_agree(recs, limit):
    def reference(create, merge):
        d: dict = {}
        for k, v in recs:
            d[k] = merge(d[k], v) if k in d else (v if create is None else create(v))
        return d

    cells = _accel.MODE_CELLS
    for create, merge, mode in [(None, operator.add, _accel.MODE_ADD),
                                (None, lambda a, b: a * 2 + b, _accel.MODE_CALL),
                                (lambda v: (v,), lambda c, v: (*c, v), _accel.MODE_CALL),
                                (to_list, append_to, _accel.MODE_LIST),
                                (None, operator.add, _accel.MODE_ADD | cells),
                                (lambda v: (v,), lambda c, v: (*c, v), _accel.MODE_CALL | cells)]:
        expected = reference(create, merge)
        outcomes = [run_merge(impl[1], recs, create, merge, limit, mode) for impl in IMPLS]
        if mode & cells:
            assert all(type(c) is list and len(c) == 1 for d, _ in outcomes for c in d.values())
            outcomes = [({k: c[0] for k, c in d.items()}, r) for d, r in outcomes]
        for d, results in outcomes:
            assert d == expected
            assert list(d) == list(expected)  # insertion order too
            assert sum(n for n, _ in results) == len(recs)
            if recs:
                last = [k for n, k in results if n][-1]
                assert last == recs[-1][0]
        assert all(o == outcomes[0] for o in outcomes)


def test_merge_mode_choice():
    assert _accel.merge_mode(None, operator.add) == _accel.MODE_ADD
    assert _accel.merge_mode(to_list, append_to) == _accel.MODE_LIST
    assert _accel.merge_mode(to_list, extend_with) == _accel.MODE_CALL
    assert _accel.merge_mode(lambda v: v, operator.add) == _accel.MODE_CALL


@pytest.mark.parametrize("impl", IMPLS, ids=[i[0] for i in IMPLS])
def test_merge_stops_at_limit_and_keeps_the_iterator(impl):
    merge_into = impl[1]
    it = iter([("a", 1), ("b", 2), ("a", 3), ("c", 4)])
    d: dict = {}
    assert merge_into(d, it, None, operator.add, 3, _accel.MODE_ADD) == (3, "a")
    assert d == {"a": 4, "b": 2}
    assert next(it) == ("c", 4)
    assert merge_into(d, it, None, operator.add, 3, _accel.MODE_ADD) == (0, None)


@pytest.mark.parametrize("impl", IMPLS, ids=[i[0] for i in IMPLS])
@pytest.mark.parametrize(("record", "exc", "message"), [
    (5, TypeError, "cannot unpack non-iterable int object"),
    (("a",), ValueError, "not enough values to unpack (expected 2, got 1)"),
    (["a", 1, 2], ValueError, "too many values to unpack (expected 2)"),
    ("abc", ValueError, "too many values to unpack (expected 2)"),
])
def test_merge_bad_records_raise_as_python_unpacking(impl, record, exc, message):
    d: dict = {}
    with pytest.raises(exc) as info:
        impl[1](d, iter([("k", 1), record]), None, operator.add, 10, _accel.MODE_ADD)
    assert str(info.value) == message
    assert d == {"k": 1}  # what came before is merged, nothing else


@pytest.mark.parametrize("impl", IMPLS, ids=[i[0] for i in IMPLS])
def test_merge_generic_records_and_user_errors(impl):
    merge_into = impl[1]
    d: dict = {}
    # any 2-item iterable unpacks, as `for k, v in ...` allows
    n, _ = merge_into(d, iter([iter(("x", 1)), "ab", ["x", 2]]), None, operator.add, 9,
                      _accel.MODE_CALL)
    assert n == 3
    assert d == {"x": 3, "a": "b"}

    def boom(c, v):
        raise KeyError("from the user")

    with pytest.raises(KeyError, match="from the user"):
        merge_into({"k": 1}, iter([("k", 2)]), None, boom, 5, _accel.MODE_CALL)
    with pytest.raises(TypeError):
        merge_into({}, iter([([], 1)]), None, operator.add, 5, _accel.MODE_ADD)  # unhashable
    with pytest.raises(TypeError):
        merge_into({"k": 1}, iter([("k", "s")]), None, operator.add, 5, _accel.MODE_ADD)
    with pytest.raises(ValueError, match="limit"):
        merge_into({}, iter([]), None, operator.add, 0, _accel.MODE_ADD)
    with pytest.raises(ValueError, match="mode"):
        merge_into({}, iter([]), None, operator.add, 1, 8)
    with pytest.raises(ValueError, match="mode"):  # list mode has no cells
        merge_into({}, iter([]), to_list, append_to, 1, _accel.MODE_LIST | _accel.MODE_CELLS)
    with pytest.raises(TypeError, match="cell"):
        merge_into({"k": 5}, iter([("k", 1)]), None, operator.add, 1,
                   _accel.MODE_ADD | _accel.MODE_CELLS)


def test_merge_list_mode_falls_back_to_merge_for_non_lists():
    for impl in IMPLS:
        d = {"k": (1,)}
        impl[1](d, iter([("k", 2), ("j", 3)]), to_list, lambda c, v: (*c, v), 5,
                _accel.MODE_LIST)
        assert d == {"k": (1, 2), "j": [3]}


def hash_part(nparts):
    def get_partition(k):
        return hash(repr(k)) % nparts
    return get_partition


@given(records, st.integers(1, 9), st.integers(1, 40), st.booleans())
def test_bucket_hash_agrees(recs, nparts, limit, fast):
    get_partition = hash_part(nparts)
    expected = [[] for _ in range(nparts)]
    for kv in recs:
        k = kv[0]
        p = hash(k) % nparts if fast and type(k) in (str, int) else get_partition(k)
        expected[p].append(kv)
    for impl in IMPLS:
        buckets = [[] for _ in range(nparts)]
        it = iter(recs)
        total = 0
        while (n := impl[2](it, buckets, fast, get_partition, limit)) == limit:
            total += n
        assert total + n == len(recs)
        assert buckets == expected


numbers = st.one_of(st.integers(-100, 100), st.integers(-2**80, 2**80), st.booleans(),
                    st.floats(-200, 200))


@given(st.lists(st.tuples(numbers, st.none()), max_size=200),
       st.one_of(st.lists(st.integers(-100, 100), max_size=8), st.lists(numbers, max_size=8)),
       st.booleans(), st.integers(1, 30))
def test_bucket_range_agrees(recs, bounds, ascending, limit):
    # int bounds bisect in C integers (exact-int keys, big ones included); others compare
    bounds = sorted(bounds)
    nparts = len(bounds) + 1
    expected = [[] for _ in range(nparts)]
    for kv in recs:
        p = bisect_left(bounds, kv[0])
        expected[p if ascending else nparts - 1 - p].append(kv)
    for impl in IMPLS:
        buckets = [[] for _ in range(nparts)]
        it = iter(recs)
        while impl[3](it, buckets, bounds, ascending, limit) == limit:
            pass
        assert buckets == expected


@pytest.mark.parametrize("impl", IMPLS, ids=[i[0] for i in IMPLS])
def test_bucket_errors_name_the_problem(impl):
    bucket_hash, bucket_range = impl[2], impl[3]
    with pytest.raises(ValueError, match=r"put key 'k' in partition 5: not in \[0, 2\)"):
        bucket_hash(iter([("k", 1)]), [[], []], False, lambda k: 5, 10)
    with pytest.raises(ValueError, match=r"in partition -1"):
        bucket_hash(iter([(1.5, 1)]), [[], []], True, lambda k: -1, 10)
    with pytest.raises(TypeError, match="not supported between"):
        bucket_range(iter([("a", 1)]), [[], []], [3], True, 10)
    with pytest.raises(ZeroDivisionError):
        bucket_hash(iter([((1,), 1)]), [[]], True, lambda k: 1 / 0, 10)
    with pytest.raises(TypeError):  # a record without a key
        bucket_hash(iter([5]), [[]], True, lambda k: 0, 10)
    with pytest.raises(KeyError):  # kv[0] of a mapping is a lookup, as in Python
        bucket_hash(iter([{"a": 1}]), [[]], True, lambda k: 0, 10)
    buckets = [[]]
    assert bucket_hash(iter([{0: "k"}]), buckets, True, lambda k: 0, 10) == 1
    assert buckets == [[{0: "k"}]]


# -- the narrow transformations' iterators --------------------------------------------------

PIPES = [("python", _accel.py_pipe)]
if _speedups is not None:
    PIPES.append(("c", _speedups.pipe))


def pipe_outcome(pipe, kind, f, data):
    """(elements produced, exception type and message or None, cause type)."""
    out = []
    it = pipe(kind, f, data)
    try:
        for x in it:
            out.append(x)  # noqa: PERF402 - what came before the error is kept
    except Exception as exc:  # the outcome is what is compared
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
        return out, (type(exc).__name__, str(exc), cause, exc.__suppress_context__)
    assert next(it, "end") == "end"  # stays exhausted
    return out, None


def stop_at(n):
    def f(x):
        if x == n:
            raise StopIteration
        return x
    return f


@given(st.lists(st.integers(-20, 20), max_size=30), st.integers(-20, 20))
def test_pipes_agree(data, n):
    pairs = [(x, x * 2) for x in data]
    cases = [
        (_accel.PIPE_MAP, lambda x: x * 3, data),
        (_accel.PIPE_MAP, stop_at(n), data),
        (_accel.PIPE_MAP, lambda x: 1 // (x - n), data),
        (_accel.PIPE_FLAT_MAP, lambda x: range(x % 4), data),
        (_accel.PIPE_FLAT_MAP, lambda x: [stop_at(n)(x)], data),
        (_accel.PIPE_FLAT_MAP, lambda x: x if x == n else [x], data),  # int: not iterable
        (_accel.PIPE_FILTER, lambda x: x % 3, data),
        (_accel.PIPE_FILTER, stop_at(n), data),
        (_accel.PIPE_KEY_BY, lambda x: -x, data),
        (_accel.PIPE_KEY_BY, stop_at(n), data),
        (_accel.PIPE_MAP_VALUES, lambda v: v + 1, pairs),
        (_accel.PIPE_MAP_VALUES, stop_at(2 * n), pairs),
        (_accel.PIPE_MAP_VALUES, lambda v: v, data),  # records that are not pairs
        (_accel.PIPE_FLAT_MAP_VALUES, lambda v: range(v % 3), pairs),
        (_accel.PIPE_FLAT_MAP_VALUES, stop_at(2 * n), pairs),
    ]
    for kind, f, items in cases:
        outcomes = [pipe_outcome(p, kind, f, items) for _, p in PIPES]
        assert all(o == outcomes[0] for o in outcomes), (kind, outcomes)


@pytest.mark.parametrize("impl", PIPES, ids=[p[0] for p in PIPES])
def test_pipe_stop_iteration_fails_loudly(impl):
    out, err = pipe_outcome(impl[1], _accel.PIPE_MAP, stop_at(2), [1, 2, 3])
    assert out == [1]
    assert err == ("RuntimeError", _accel.STOP_ITERATION_MSG, "StopIteration", True)
    with pytest.raises(ValueError, match="unknown pipe kind"):
        impl[1](9, abs, [])
    with pytest.raises(TypeError):
        impl[1](_accel.PIPE_MAP, abs, 5)  # not iterable


@pytest.mark.parametrize("count", [_accel.py_count] + (
    [_speedups.count] if _speedups is not None else []))
def test_count(count):
    assert count([]) == 0
    assert count(iter(range(1000))) == 1000
    assert count(x for x in "abc") == 3
    with pytest.raises(TypeError):
        count(5)

    def failing():
        yield 1
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        count(failing())


SORTS = [("python", _accel.py_sort_int_keys)]
if _speedups is not None:
    SORTS.append(("c", _speedups.sort_int_keys))


@given(st.lists(st.tuples(st.one_of(st.integers(-5, 5), st.integers(-2**63, 2**63 - 1)),
                          st.integers()), max_size=300),
       st.booleans())
def test_sort_int_keys_is_a_stable_sort_by_key(records, reverse):
    expected = sorted(records, key=operator.itemgetter(0), reverse=reverse)
    for _, sort in SORTS:
        got = list(records)
        assert sort(got, reverse) is True
        assert got == expected  # values tell equal keys apart: the order is stable


@pytest.mark.parametrize("impl", SORTS, ids=[s[0] for s in SORTS])
@pytest.mark.parametrize("odd", [(2**63, 0), (-(2**63) - 1, 0), (True, 0), (1.5, 0),
                                 ("a", 0), (), 7])
def test_sort_int_keys_leaves_other_records_alone(impl, odd):
    records = [(3, "x"), odd, (1, "y")]
    before = list(records)
    assert impl[1](records, False) is False
    assert records == before


PAIR_SORTS = [("python", _accel.py_sorted_int_pairs)]
if _speedups is not None:
    PAIR_SORTS.append(("c", _speedups.sorted_int_pairs))


@given(st.lists(st.lists(st.tuples(st.one_of(st.integers(-5, 5),
                                             st.integers(-2**63, 2**63 - 1)),
                                   st.one_of(st.none(), st.integers(), st.text(max_size=2))),
                         max_size=40), max_size=8),
       st.booleans())
def test_sorted_int_pairs_is_a_stable_sort_that_empties_the_batches(batches, reverse):
    records = [r for b in batches for r in b]
    expected = sorted(records, key=operator.itemgetter(0), reverse=reverse)
    for _, impl in PAIR_SORTS:
        copies = [list(b) for b in batches]
        it = impl(copies, reverse)
        assert copies == [[] for _ in batches]
        got = list(it)
        assert got == expected  # values tell equal keys apart: the order is stable
        assert all(type(r) is tuple and type(r[0]) is int for r in got)
        assert list(it) == []


@pytest.mark.parametrize("impl", PAIR_SORTS, ids=[s[0] for s in PAIR_SORTS])
@pytest.mark.parametrize("odd", [(2**63, 0), (-(2**63) - 1, 0), (True, 0), (1.5, 0),
                                 ("a", 0), (), (1, 2, 3), [1, 2], 7])
def test_sorted_int_pairs_leaves_other_records_alone(impl, odd):
    batches = [[(3, "x")], [odd, (1, "y")]]
    before = [list(b) for b in batches]
    assert impl[1](batches, False) is None
    assert batches == before


@pytest.mark.parametrize("impl", PAIR_SORTS, ids=[s[0] for s in PAIR_SORTS])
def test_sorted_int_pairs_keeps_values_alive_and_rejects_other_arguments(impl):
    import gc
    import weakref

    class V:
        pass

    values = [V() for _ in range(3)]
    refs = [weakref.ref(v) for v in values]
    it = impl[1]([[(2, values[0]), (1, values[1])], [(3, values[2])]], False)
    del values
    gc.collect()
    assert [r() is not None for r in refs] == [True] * 3
    assert next(it)[0] == 1
    del it  # the values not yet handed out are released with the iterator
    gc.collect()
    assert [r() for r in refs] == [None] * 3
    with pytest.raises(TypeError):
        impl[1]((1, 2), False)
    with pytest.raises(TypeError):
        impl[1]([(1, 2)], False)


MARSHALED_SORTS = [("python", _accel.py_sort_marshaled_pairs)]
if _speedups is not None:
    MARSHALED_SORTS.append(("c", _speedups.sort_marshaled_pairs))
_int64 = st.integers(-2**63, 2**63 - 1)
_simple_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _int64,
                           st.floats(allow_nan=False))


def _bodies(batches):
    import marshal

    return [marshal.dumps(b, 2) for b in batches], [len(b) for b in batches]


@given(st.lists(st.lists(st.tuples(st.one_of(st.integers(-5, 5), st.integers(-2**40, 2**40),
                                             _int64), _simple_values),
                         max_size=40), max_size=8),
       st.booleans())
def test_sort_marshaled_pairs_sorts_what_marshal_wrote(batches, reverse):
    records = [r for b in batches for r in b]
    expected = sorted(records, key=operator.itemgetter(0), reverse=reverse)
    bodies, counts = _bodies(batches)
    for _, impl in MARSHALED_SORTS:
        got = list(impl(bodies, counts, reverse))
        assert got == expected
        # same types too: True stays a bool, 1.0 a float
        assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in expected]


@pytest.mark.parametrize("impl", MARSHALED_SORTS, ids=[s[0] for s in MARSHALED_SORTS])
@pytest.mark.parametrize("odd", [(2**63, 0), (-(2**63) - 1, 0), (1, 2**64), (True, 0),
                                 (1.5, 0), ("a", 0), (1, "s"), (1, (2,)), (), (1, 2, 3),
                                 [1, 2], 7])
def test_sort_marshaled_pairs_refuses_other_records(impl, odd):
    bodies, counts = _bodies([[(3, None)], [odd, (1, 2)]])
    assert impl[1](bodies, counts, False) is None


@pytest.mark.parametrize("impl", MARSHALED_SORTS, ids=[s[0] for s in MARSHALED_SORTS])
def test_sort_marshaled_pairs_refuses_a_wrong_count_or_cut_body(impl):
    bodies, counts = _bodies([[(3, None), (1, 2)]])
    assert impl[1](bodies, [3], False) is None
    assert impl[1]([bodies[0][:-2]], counts, False) is None
    with pytest.raises(TypeError):
        impl[1](bodies, [], False)
    with pytest.raises(TypeError):
        impl[1]([bytearray(bodies[0])], counts, False)


ENCODES = [("python", _accel.py_encode_sorted_pairs)]
if _speedups is not None:
    ENCODES.append(("c", _speedups.encode_sorted_pairs))


@given(st.lists(st.tuples(st.one_of(st.integers(-5, 5), st.integers(-2**40, 2**40), _int64),
                          _simple_values), max_size=60),
       st.integers(1, 9))
def test_encode_sorted_pairs_writes_what_marshal_writes(records, batch):
    import marshal

    ordered = sorted(records, key=operator.itemgetter(0))
    cuts = [ordered[i:i + batch] for i in range(0, len(ordered), batch)]
    expected = ([marshal.dumps(c, 2) for c in cuts], [c[0][0] for c in cuts],
                [c[-1][0] for c in cuts])
    for _, impl in ENCODES:
        assert impl(list(records), batch) == expected


@pytest.mark.parametrize("impl", ENCODES, ids=[s[0] for s in ENCODES])
@pytest.mark.parametrize("odd", [(2**63, 0), (1, 2**64), (True, 0), (1.5, 0), ("a", 0),
                                 (1, "s"), (1, [2]), (), (1, 2, 3), [1, 2], 7])
def test_encode_sorted_pairs_refuses_other_records(impl, odd):
    assert impl[1]([(3, None), odd], 4) is None
    with pytest.raises(ValueError):
        impl[1]([(3, None)], 0)
    with pytest.raises(TypeError):
        impl[1](((3, None),), 2)


SUMS = [("python", _accel.py_int_sums)]
if _speedups is not None:
    SUMS.append(("c", _speedups.int_sums))


@given(st.lists(st.lists(st.tuples(st.one_of(st.integers(-5, 5), _int64), _int64),
                         max_size=50), max_size=6))
def test_int_sums_add_what_a_dict_fold_adds(batches):
    import marshal

    expected: dict = {}
    for b in batches:
        for k, v in b:
            expected[k] = expected.get(k, 0) + v
    for _, make in SUMS:
        t = make()
        for b in batches:
            assert t.add_marshaled(marshal.dumps(b, 2)) == len(b)
        assert len(t) == len(expected)
        got = list(t)
        assert dict(got) == expected
        assert len(got) == len(expected)
        assert all(type(k) is int and type(v) is int for k, v in got)
        assert list(t) == []
        assert len(t) == 0
        with pytest.raises(RuntimeError):
            t.add_marshaled(marshal.dumps([(1, 1)], 2))


@pytest.mark.parametrize("make", SUMS, ids=[s[0] for s in SUMS])
@pytest.mark.parametrize("odd", [(2**63, 0), (1, 2**63), (True, 0), (1, False), (1.5, 0),
                                 (1, 1.5), ("a", 0), (1, None), (), (1, 2, 3), [1, 2], 7])
def test_int_sums_refuse_other_pairs_adding_nothing(make, odd):
    import marshal

    t = make[1]()
    assert t.add_marshaled(marshal.dumps([(4, 1)], 2)) == 1
    assert t.add_marshaled(marshal.dumps([(4, 1), odd], 2)) == -1
    assert t.add_marshaled(marshal.dumps((4, 1), 2)) == -1
    assert t.add_marshaled(b"[\x01") == -1
    with pytest.raises(TypeError):
        t.add_marshaled(bytearray(b"["))
    assert t.nbytes > 0
    assert list(t) == [(4, 1)]


BUCKETERS = [("python", _accel.py_pair_buckets, _accel.py_encode_pairs)]
if _speedups is not None:
    BUCKETERS.append(("c", _speedups.pair_buckets, _speedups.encode_pairs))
_items = st.one_of(st.integers(-3, 3), _int64, st.integers(2**63, 2**64), st.none(),
                   st.booleans(), st.floats(allow_nan=False), st.text(max_size=3),
                   st.just("\udc80"), st.tuples(st.integers(0, 2)))


@given(st.lists(st.one_of(st.tuples(_items, _items), st.tuples(_items)), max_size=80),
       st.integers(1, 4), st.integers(1, 7), st.integers(1, 30))
def test_pair_buckets_keep_each_partitions_order_in_marshaled_batches(records, nparts,
                                                                      batch, limit):
    import marshal

    def part(k):
        return len(repr(k)) % nparts

    outs = []
    for _, make, encode in BUCKETERS:
        pb = make(nparts, batch)
        buckets = [[] for _ in range(nparts)]
        ready: list = []
        per_part: dict = {p: [] for p in range(nparts)}  # what the writer would ship
        it = iter(records)
        while True:
            n = pb.fill(it, buckets, False, part, limit, ready)
            for p, count, body in ready:
                assert marshal.loads(body) == [] or len(marshal.loads(body)) == count
                assert body == encode(marshal.loads(body))
                per_part[p].extend(marshal.loads(body))
            ready.clear()
            for p, b in enumerate(buckets):
                if len(b) >= batch:
                    per_part[p].extend(b)
                    buckets[p] = []
            if n < limit:
                break
        pb.flush(ready)
        for p, _, body in ready:
            per_part[p].extend(marshal.loads(body))
        for p, b in enumerate(buckets):
            per_part[p].extend(b)
        expected = {p: [r for r in records if part(r[0]) == p] for p in range(nparts)}
        assert repr(per_part) == repr(expected)
        outs.append(repr(per_part))
    assert len(set(outs)) == 1


@pytest.mark.parametrize("impl", BUCKETERS, ids=[b[0] for b in BUCKETERS])
def test_encode_pairs_is_marshal_or_none(impl):
    import marshal

    good = [(1, None), ("é", 2.5), (-2**63, True), (2**40, "")]
    assert impl[2](good) == marshal.dumps(good, 2)
    for odd in [(1, 2**64), ("\udc80", 1), (1, (2,)), (1,), [1, 2]]:
        assert impl[2]([*good, odd]) is None
    with pytest.raises(TypeError):
        impl[2](tuple(good))


TABLES = [("python", _accel.py_sum_table)]
if _speedups is not None:
    TABLES.append(("c", _speedups.sum_table))
_sum_keys = st.one_of(st.integers(-4, 4), st.sampled_from([1.0, True, 0.0, False, -0.0]),
                      st.text(max_size=2), st.sampled_from(["é", "日本", "\U0001f600"]),
                      st.tuples(st.integers(0, 2)), st.integers(2**70, 2**70 + 2))
_sum_values = st.one_of(st.integers(-5, 5), _int64, st.integers(2**63, 2**64),
                        st.booleans(), st.floats(-3, 3), st.none())


def drive_table(make, records, limit):
    """The writer's loop: add until exhausted, passing over each pending record."""
    t = make()
    it = iter(records)
    steps = []
    while True:
        n, pending = t.add(it, limit)
        steps.append((n, pending))
        if pending is None and n < limit:
            return t, steps


@given(st.lists(st.tuples(_sum_keys, _sum_values), max_size=120), st.integers(1, 40))
def test_sum_table_sums_as_a_dict_fold_with_plus(records, limit):
    # the reference: the records the table takes, folded with + into a dict
    expected: dict = {}
    taken, handed_back = 0, []
    for k, v in records:
        s = expected.get(k, 0)
        if type(v) is int and -2**63 <= v < 2**63 and -2**63 <= s + v < 2**63:
            expected[k] = v if k not in expected else s + v
            taken += 1
        else:
            handed_back.append((k, v))
    results = []
    for _, make in TABLES:
        t, steps = drive_table(make, records, limit)
        assert sum(n for n, _ in steps) == taken
        pending = [p for _, p in steps if p is not None]
        assert pending == handed_back
        assert [type(v) for _, v in pending] == [type(v) for _, v in handed_back]
        assert all(n <= limit for n, _ in steps)
        assert len(t) == len(expected)
        assert t.nbytes > 0 or not expected
        got = list(t.items())
        assert got == list(expected.items())  # same keys (the first seen), same order
        assert [type(k) for k, _ in got] == [type(k) for k in expected]
        assert all(type(s) is int for _, s in got)
        assert len(t) == 0
        results.append((steps, got))
    assert all(r == results[0] for r in results)
    assert all([type(k) for k, _ in r[1]] == [type(k) for k, _ in results[0][1]]
               for r in results)


@pytest.mark.parametrize("make", TABLES, ids=[t[0] for t in TABLES])
def test_sum_table_errors_name_the_problem(make):
    make = make[1]
    t = make()
    for record, exc, message in [
            (5, TypeError, "cannot unpack non-iterable int object"),
            (("a",), ValueError, "not enough values to unpack (expected 2, got 1)"),
            (["a", 1, 2], ValueError, "too many values to unpack (expected 2)"),
            (([], 1), TypeError, "unhashable type: 'list'")]:
        with pytest.raises(exc) as info:
            t.add(iter([("k", 1), record]), 10)
        assert str(info.value) == message
    assert len(t) == 1  # what came before each bad record is added (4 times), nothing else
    # any 2-item iterable unpacks; a pending one comes back as a tuple
    assert t.add(iter([["k", 2], iter(("x", 1.5))]), 10) == (1, ("x", 1.5))

    class Boom:
        def __hash__(self):
            return 1

        def __eq__(self, other):
            raise KeyError("from the user")

    t.add(iter([(Boom(), 1)]), 1)
    with pytest.raises(KeyError, match="from the user"):
        t.add(iter([(Boom(), 1)]), 1)
    with pytest.raises(ValueError, match="limit"):
        t.add(iter([]), 0)
    with pytest.raises(TypeError, match="iterator"):
        t.add([("k", 1)], 1)
    assert dict((k, v) for k, v in t.items() if k.__class__ is str) == {"k": 6}
    with pytest.raises(RuntimeError, match="after items"):
        t.add(iter([("k", 1)]), 1)
    with pytest.raises(RuntimeError, match="twice"):
        t.items()


def test_sum_table_nbytes_counts_its_keys():
    for _, make in TABLES:
        small, big = make(), make()
        small.add(iter([("w", 1)] * 100), 1000)
        big.add(iter((f"word{i:06d}" * 4, 1) for i in range(5000)), 10_000)
        assert 0 < small.nbytes < big.nbytes
        assert big.nbytes >= 5000 * 24 * 4  # the keys' characters alone
