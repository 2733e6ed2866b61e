"""The map side's combine (``shuffle.writer._combine``): ``reduceByKey(operator.add)``
sums int values in a ``sum_table`` and hands over to a dict when a value it cannot hold
comes; whatever it drains when over the budget plus what it returns fold to the sums a
plain dict fold gives."""

from __future__ import annotations

import operator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncspark import _accel
from asyncspark.functions import Aggregator, identity
from asyncspark.shuffle import writer

ADD = Aggregator(identity, operator.add, operator.add)
keys = st.one_of(st.integers(-20, 20), st.text(max_size=2), st.sampled_from([1.0, True]))
values = st.one_of(st.integers(-9, 9), st.integers(2**62, 2**64), st.floats(-2, 2),
                   st.booleans())


def fold(records) -> dict:
    d: dict = {}
    for k, v in records:
        d[k] = d[k] + v if k in d else v
    return d


def combine(records, budget: int):
    drained: list[list] = []
    rest = writer._combine(iter(records), ADD, budget, lambda d: drained.append(list(d.items())))
    return drained, list(rest.items())


IMPLS = [("python", _accel.py_sum_table, _accel.py_merge_into)]
if _accel.NATIVE:
    IMPLS.append(("c", _accel.sum_table, _accel.merge_into))


@contextmanager
def using(impl):
    """The writer with this implementation's table and merge loop."""
    with mock.patch.object(writer, "sum_table", impl[1]), \
            mock.patch.object(writer, "merge_into", impl[2]):
        yield


@pytest.mark.parametrize("impl", IMPLS, ids=[i[0] for i in IMPLS])
@given(records=st.lists(st.tuples(keys, values), max_size=300),
       budget=st.sampled_from([1, 2000, 1 << 30]))
def test_combine_folds_as_a_dict_drained_or_not(impl, records, budget):
    with using(impl):
        drained, rest = combine(records, budget)
    merged: dict = {}
    for part in [*drained, rest]:
        ks = [k for k, _ in part]
        assert len(set(ks)) == len(ks)  # each key once per drain
        for k, v in part:
            merged[k] = merged[k] + v if k in merged else v
    expected = fold(records)
    assert merged == expected
    if budget == 1 << 30:
        assert drained == []
        assert [k for k, _ in rest] == list(expected)  # insertion order, first key kept
        assert [type(v) for _, v in rest] == [type(v) for v in expected.values()]


@pytest.mark.parametrize("impl", IMPLS, ids=[i[0] for i in IMPLS])
def test_combine_of_ints_uses_the_table_and_hands_over_to_a_dict(impl):
    with using(impl):
        check_table_then_dict()


def check_table_then_dict():
    words = [("a", 1), ("b", 1), ("a", 1)] * 5000
    _, rest = combine(words, 1 << 30)
    assert rest == [("a", 10000), ("b", 5000)]
    table = writer._combine(iter(words), ADD, 1 << 30, None)
    assert type(table).__name__ in ("SumTable", "_SumTable")
    mixed = [*words, ("b", 0.5), ("c", 2**64), ("a", 1)]
    got = writer._combine(iter(mixed), ADD, 1 << 30, None)
    assert type(got) is dict
    assert got == {"a": 10001, "b": 5000.5, "c": 2**64}
    assert list(got) == ["a", "b", "c"]
