"""portable_hash against PYTHONHASHSEED=0 ground truth, and the partitioners' contracts."""

from __future__ import annotations

import bisect
import datetime
import enum
import operator
import os
import pickle
import subprocess
import sys
import textwrap

import cloudpickle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark.partitioner import (
    HashPartitioner,
    Partitioner,
    RangePartitioner,
    hash_seed0,
    portable_hash,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORACLE_RUNS = settings(max_examples=10, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow,
                                              HealthCheck.data_too_large])


class Colour(enum.Enum):
    RED = "r"
    GREEN = "g"


class Size(enum.IntEnum):
    SMALL = 1


class Tag(str):
    """A str subclass keeps str's hash."""


# -- ground truth: a PYTHONHASHSEED=0 interpreter --------------------------------------

_ORACLE = textwrap.dedent("""
    import pickle, sys
    sys.path.insert(0, {test_dir!r})
    from asyncspark.partitioner import portable_hash

    def pyspark_portable_hash(x):
        # pyspark.rdd.portable_hash, verbatim but for the PYTHONHASHSEED check
        if x is None:
            return 0
        if isinstance(x, tuple):
            h = 0x345678
            for i in x:
                h ^= pyspark_portable_hash(i)
                h *= 1000003
                h &= sys.maxsize
            h ^= len(x)
            if h == -1:
                h = -2
            return int(h)
        return hash(x)

    assert not sys.flags.hash_randomization
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            values = pickle.load(stdin)
        except EOFError:
            break
        out = [(None if isinstance(v, tuple) or v is None else hash(v),
                pyspark_portable_hash(v), portable_hash(v)) for v in values]
        pickle.dump(out, stdout)
        stdout.flush()
""")


class Oracle:
    """One long-lived ``PYTHONHASHSEED=0`` interpreter answering hash questions."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONHASHSEED="0")
        script = _ORACLE.format(test_dir=os.path.dirname(__file__))
        self.proc = subprocess.Popen([sys.executable, "-c", script], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def __call__(self, values: list) -> list[tuple]:
        """``(hash(v), PySpark's portable_hash(v), asyncspark's portable_hash(v))`` under
        seed 0 for each value (``hash`` is None for tuples and None)."""
        pickle.dump(values, self.proc.stdin)
        self.proc.stdin.flush()
        return pickle.load(self.proc.stdout)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def oracle():
    o = Oracle()
    yield o
    o.close()


chars = st.one_of(
    st.characters(max_codepoint=0x7F),
    st.characters(min_codepoint=0x80, max_codepoint=0xFF),  # latin-1: UCS1
    st.characters(min_codepoint=0x100, max_codepoint=0xFFFF),  # UCS2 (surrogates too)
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    st.characters(min_codepoint=0x10000),  # astral: UCS4
)
texts = st.text(alphabet=chars, max_size=40)
offsets = st.sampled_from([datetime.UTC,
                           datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
                           datetime.timezone(-datetime.timedelta(hours=8))])
temporal = st.one_of(
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=offsets),
    st.times(),
    st.times(timezones=offsets),
)
atoms = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts,
    st.binary(max_size=40), temporal,
    st.sampled_from([Colour.RED, Colour.GREEN, Size.SMALL]),
    texts.map(Tag),
)
# None's hash is an address in CPython 3.11: inside a frozenset no two processes agree
# on it, so frozensets hold no None at any depth.
frozen_items = st.recursive(
    atoms.filter(lambda x: x is not None),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple),
                            st.frozensets(inner, max_size=3)),
    max_leaves=4,
)
hashables = st.recursive(
    atoms,
    lambda inner: st.one_of(st.tuples(inner, inner), st.lists(inner, max_size=4).map(tuple),
                            st.frozensets(frozen_items, max_size=4)),
    max_leaves=8,
)


# -- portable_hash and hash_seed0 against ground truth ---------------------------------

def test_pure_path_differs_from_a_randomized_hash():
    # In a process with hash randomization on (the default), the seed-0 hash is computed
    # in pure Python and differs from hash(): the tests below exercise that path there.
    code = ("import sys; from asyncspark.partitioner import hash_seed0, portable_hash; "
            "assert sys.flags.hash_randomization; "
            "assert hash_seed0('asyncspark') != hash('asyncspark'); "
            "print(portable_hash('asyncspark'))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert int(out) == hash_seed0("asyncspark")


def test_fixed_corpus_matches_seed0(oracle):
    import random

    rnd = random.Random(20240601)
    alphabets = [(0x20, 0x7E), (0x80, 0xFF), (0x100, 0xD7FF), (0xE000, 0xFFFF),
                 (0x10000, 0x10FFFF), (0xD800, 0xDFFF)]
    strings = [""]
    for n in range(600):
        lo, hi = alphabets[n % len(alphabets)]
        length = rnd.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, 33, rnd.randrange(200)])
        chars_ = [chr(rnd.randint(lo, hi)) for _ in range(length)]
        if n % 5 == 0:  # mix in ASCII: the widest character decides the representation
            chars_.append("a")
        strings.append("".join(chars_))
    blobs = [bytes(rnd.randrange(256) for _ in range(n)) for n in range(70)]
    others = [
        frozenset(), frozenset({"a"}), frozenset({"a", "b", 1, (2, "c")}),
        frozenset({frozenset({"x", b"y"}), ("t", 1.5)}), frozenset(range(50)),
        datetime.date(1, 1, 1), datetime.date(9999, 12, 31),
        datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime.datetime(2021, 11, 7, 1, 30, fold=1),
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        datetime.time(0), datetime.time(12, 30, 1, 7, fold=1),
        datetime.time(5, tzinfo=datetime.timezone(datetime.timedelta(hours=-3))),
        Colour.RED, Size.SMALL, Tag("tagged"), 0, -1, -2, 2**64, -(2**70), 1.5, -0.0,
        float("inf"), True, False, (), (None,), ("a", ("b", None), 3), (None, 1),
    ]
    values = strings + blobs + others
    truth = oracle(values)
    for v, (h, ref, theirs) in zip(values, truth, strict=True):
        if h is not None:
            assert hash_seed0(v) == h, v
        assert portable_hash(v) == ref == theirs, v


@ORACLE_RUNS
@given(st.lists(st.one_of(texts, st.binary(max_size=64)), min_size=1, max_size=60))
def test_strings_and_bytes_match_seed0(oracle, values):
    truth = oracle(values)
    assert [hash_seed0(v) for v in values] == [h for h, _, _ in truth]
    assert [portable_hash(v) for v in values] == [ref for _, ref, _ in truth]


@ORACLE_RUNS
@given(st.lists(hashables, min_size=1, max_size=30))
def test_keys_match_pyspark_under_seed0(oracle, values):
    truth = oracle(values)
    for v, (h, ref, theirs) in zip(values, truth, strict=True):
        assert portable_hash(v) == ref == theirs, v
        if h is not None:
            assert hash_seed0(v) == h, v


def test_pyspark_documented_values():
    # From pyspark.rdd.portable_hash's docstring.
    assert portable_hash(None) == 0
    assert portable_hash((None, 1)) & 0xFFFFFFFF == 219750521


def test_tuples_are_not_cpython_tuple_hash():
    # The PySpark formula itself is checked against the oracle above.
    assert portable_hash(()) == 0x345678  # the initial value xor len 0
    assert portable_hash(("a",)) != hash_seed0(("a",))


@FAST
@given(st.integers() | st.floats(allow_nan=False) | st.booleans())
def test_numbers_hash_as_builtin(x):
    assert portable_hash(x) == hash(x) == hash_seed0(x)


def test_unhashable_raises():
    with pytest.raises(TypeError):
        portable_hash([1])
    with pytest.raises(TypeError):
        portable_hash(({},))


# -- HashPartitioner ------------------------------------------------------------------

num_parts = st.integers(min_value=1, max_value=300)


@FAST
@given(hashables, num_parts)
def test_hash_partition_in_range_and_deterministic(key, n):
    p = HashPartitioner(n)
    part = p.getPartition(key)
    assert 0 <= part < n
    assert part == portable_hash(key) % n == p(key)
    assert HashPartitioner(n).getPartition(pickle.loads(pickle.dumps(key))) == part


@FAST
@given(st.integers(min_value=-(2**53), max_value=2**53), num_parts)
def test_equal_keys_same_partition(i, n):
    p = HashPartitioner(n)
    assert p(i) == p(float(i))
    assert p((i, "k")) == p((float(i), "k"))
    if i in (0, 1):
        assert p(bool(i)) == p(i)


def test_negative_hashes_land_in_range():
    p = HashPartitioner(7, lambda k: k)
    assert [p(k) for k in (-1, -7, -8, 6)] == [6, 0, 6, 6]


def test_hash_partitioner_equality():
    def ident(k):
        return k

    a, b = HashPartitioner(4), HashPartitioner(4)
    assert a == b
    assert hash(a) == hash(b)
    assert a != HashPartitioner(5)
    assert a != HashPartitioner(4, ident)
    assert HashPartitioner(4, ident) == HashPartitioner(4, ident)
    assert HashPartitioner(4, ident) != HashPartitioner(4, lambda k: k)
    assert a != RangePartitioner(4, [1, 2, 3])
    assert a != object()
    assert len({a, b, HashPartitioner(5)}) == 2
    assert a.partitionFunc is portable_hash


def test_pickle_round_trip_keeps_equality():
    p = HashPartitioner(12)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        q = pickle.loads(dumps(p))
        assert q == p
        assert hash(q) == hash(p)
        assert q.partitionFunc is portable_hash
    r = RangePartitioner.from_sample(["b", "x", "m"], 3, ascending=False)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        q = pickle.loads(dumps(r))
        assert q == r
        assert hash(q) == hash(r)
    # A lambda keyfunc survives cloudpickle as another function: not provably equal,
    # but it still partitions the same way.
    s = RangePartitioner.from_sample(range(10), 3, keyfunc=lambda k: -k)
    t = pickle.loads(cloudpickle.dumps(s))
    assert t != s
    assert [t(k) for k in range(10)] == [s(k) for k in range(10)]


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_num_partitions_value(bad):
    with pytest.raises(ValueError, match="numPartitions"):
        HashPartitioner(bad)
    with pytest.raises(ValueError, match="numPartitions"):
        RangePartitioner.from_sample([1], bad)


@pytest.mark.parametrize("bad", [2.0, "3", True, None])
def test_bad_num_partitions_type(bad):
    with pytest.raises(TypeError, match="numPartitions"):
        HashPartitioner(bad)


def test_bad_partition_func():
    with pytest.raises(TypeError, match="partitionFunc"):
        HashPartitioner(3, 5)


def test_base_partitioner_is_abstract():
    with pytest.raises(NotImplementedError):
        Partitioner(3).getPartition(1)


# -- RangePartitioner -----------------------------------------------------------------

def _pyspark_bounds(sample, n, keyfunc=lambda x: x):
    samples = sorted(sample, key=keyfunc)
    return [samples[int(len(samples) * (i + 1) / n)] for i in range(0, n - 1)]


orderable = st.one_of(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=80),
    st.lists(st.text(max_size=4), min_size=1, max_size=80),
    st.lists(st.tuples(st.integers(0, 5), st.text(max_size=2)), min_size=1, max_size=80),
)


@FAST
@given(orderable, st.integers(min_value=1, max_value=20), st.booleans())
def test_range_bounds_and_partitions_as_pyspark(sample, n, ascending):
    p = RangePartitioner.from_sample(sample, n, ascending)
    bounds = _pyspark_bounds(sample, n)
    assert p.bounds == bounds
    for k in sample:
        part = bisect.bisect_left(bounds, k)
        assert p(k) == (part if ascending else n - 1 - part)
        assert 0 <= p(k) < n


@FAST
@given(orderable, st.integers(min_value=1, max_value=20))
def test_range_partitioner_monotonic(sample, n):
    up = RangePartitioner.from_sample(sample, n)
    down = RangePartitioner.from_sample(sample, n, ascending=False)
    ks = sorted(sample)
    assert [up(k) for k in ks] == sorted(up(k) for k in ks)
    assert [down(k) for k in ks] == sorted((down(k) for k in ks), reverse=True)
    for k in ks:  # equal keys, equal partitions; mirrored when descending
        assert down(k) == n - 1 - up(k)


@FAST
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers()), max_size=120),
       st.integers(min_value=1, max_value=8), st.booleans(),
       st.sampled_from(["identity", "neg", "str", "mod7"]))
def test_partition_then_sort_is_a_global_sort(records, n, ascending, kf):
    """sortByKey: range-partition, sort each partition, concatenate == a stable sort."""
    keyfunc = {"identity": lambda k: k, "neg": operator.neg, "str": str,
               "mod7": lambda k: k % 7}[kf]
    # A sample of the keys, as sortByKey would take
    p = RangePartitioner.from_sample([k for k, _ in records[::3]], n, ascending, keyfunc)
    parts = [[] for _ in range(n)]
    for kv in records:
        parts[p(kv[0])].append(kv)
    out = [kv for part in parts
           for kv in sorted(part, key=lambda kv: keyfunc(kv[0]), reverse=not ascending)]
    assert out == sorted(records, key=lambda kv: keyfunc(kv[0]), reverse=not ascending)


def test_type_changing_keyfunc_works():
    # PySpark bisects raw sample keys with keyfunc(k): TypeError here. We keep bounds in
    # keyfunc space.
    p = RangePartitioner.from_sample(list(range(100)), 4, keyfunc=str)
    assert all(isinstance(b, str) for b in p.bounds)
    assert 0 <= p(5) < 4


def test_range_partitioner_equality():
    a = RangePartitioner.from_sample(range(100), 4)
    assert a == RangePartitioner(4, [25, 50, 75])
    assert hash(a) == hash(RangePartitioner(4, [25, 50, 75]))
    assert a != RangePartitioner(4, [25, 50, 76])
    assert a != RangePartitioner(4, [25, 50, 75], ascending=False)
    assert a != RangePartitioner(5, [25, 50, 75])
    assert a != RangePartitioner(4, [25, 50, 75], keyfunc=lambda k: k)
    assert a != HashPartitioner(4)
    # unhashable bounds still give a hash
    lists = RangePartitioner(2, [[1, 2]])
    assert hash(lists) == hash(RangePartitioner(2, [[1, 2]]))


def test_range_partitioner_edges():
    assert RangePartitioner.from_sample([], 5).bounds == []
    assert RangePartitioner.from_sample([], 5)(42) == 0
    assert RangePartitioner.from_sample([], 5, ascending=False)(42) == 4
    assert RangePartitioner.from_sample([3, 1, 2], 1).bounds == []
    with pytest.raises(ValueError, match="bounds"):
        RangePartitioner(2, [1, 2])


def test_repr():
    assert repr(HashPartitioner(3)) == "HashPartitioner(3, portable_hash)"
    assert "bounds=[1]" in repr(RangePartitioner(2, [1]))


# -- sortByKey's one-pass sampling ----------------------------------------------------------

def test_weighted_bounds_follow_the_weights():
    # a key standing for many records takes a whole share
    assert RangePartitioner.from_weighted_sample(
        [(0, 9.0), (5, 1.0), (7, 1.0)], 2).bounds == [0]
    p = RangePartitioner.from_weighted_sample([(k, 1.0) for k in range(100)], 4)
    assert p.bounds == [24, 49, 74]
    assert RangePartitioner.from_weighted_sample([], 3).bounds == []
    # duplicates give one bound; keyfunc space; descending mirrors
    assert RangePartitioner.from_weighted_sample([(1, 1.0)] * 10, 5).bounds == [1]
    q = RangePartitioner.from_weighted_sample([(k, 1.0) for k in range(10)], 2,
                                              ascending=False, keyfunc=lambda k: -k)
    assert q.bounds == [-5]
    assert q(9) == 1
    assert q(0) == 0


@given(st.lists(st.tuples(st.integers(-1000, 1000), st.floats(0.5, 50)), max_size=300),
       st.integers(1, 12))
def test_weighted_bounds_are_sorted_distinct_and_balanced(candidates, n):
    p = RangePartitioner.from_weighted_sample(candidates, n)
    assert p.bounds == sorted(set(p.bounds))
    assert len(p.bounds) <= n - 1
    total = sum(w for _, w in candidates)
    if candidates and n > 1 and len(p.bounds) == n - 1:
        # each partition's weight is at most one share plus the heaviest key's
        per_key: dict = {}
        for k, w in candidates:
            per_key[k] = per_key.get(k, 0.0) + w
        heaviest = max(per_key.values())
        shares = [0.0] * n
        for k, w in candidates:
            shares[p(k)] += w
        assert max(shares) <= total / n + heaviest + 1e-6


def test_sketch_counts_every_record_and_samples_uniformly():
    from collections import Counter

    from asyncspark.rdds.shuffled import Sketch

    for n in (0, 5, 20, 21, 1000, 100_000):
        [(count, keys, where)] = Sketch(20, 7)(3, ((i, None) for i in range(n)))
        assert count == n
        assert where is None
        assert len(keys) == min(n, 20) == len(set(keys))
        assert all(0 <= k < n for k in keys)
    hits: Counter = Counter()
    runs, k, n = 1000, 20, 500
    for seed in range(runs):
        [(_, keys, _)] = Sketch(k, seed)(0, ((i, None) for i in range(n)))
        hits.update(keys)
    # every tenth of the range holds a tenth of the picks (binomial sd ~ 42 of 2,000)
    tenths = [sum(hits[i] for i in range(j * n // 10, (j + 1) * n // 10)) for j in range(10)]
    assert all(abs(t - runs * k / 10) < 250 for t in tenths), tenths
