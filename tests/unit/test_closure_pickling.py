"""Closures pickled by value carry their code as marshal bytes (serializers.py): the
code comes back whole (file name and line numbers for remote tracebacks, nested code,
closures and defaults), and each code object is marshalled once while it lives."""

from __future__ import annotations

import pickle
import traceback

from asyncspark import serializers


def _make(k: int):
    def outer(x, scale=2):
        inner = lambda y: y * scale + k  # noqa: E731 (nested code in consts)
        if x < 0:
            raise ValueError(f"negative {x}")
        return inner(x)
    return outer


def test_round_trip_keeps_code_closure_and_file_name() -> None:
    f = _make(5)
    data = serializers.dumps_closure(f, "f")
    g = pickle.loads(data)
    assert g is not f
    assert g(3) == 11
    assert g(3, scale=10) == 35
    assert g.__code__.co_filename == __file__
    assert g.__code__.co_firstlineno == f.__code__.co_firstlineno
    try:
        g(-1)
    except ValueError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    assert frames[-1].filename == __file__
    assert "raise ValueError" in frames[-1].line


def test_code_marshalled_once_per_code_object() -> None:
    f1, f2 = _make(1), _make(2)  # two closures, one code object
    assert f1.__code__ is f2.__code__
    serializers.dumps_closure(f1, "f1")
    cached = serializers._code_bytes[f1.__code__]
    serializers.dumps_closure(f2, "f2")
    assert serializers._code_bytes[f2.__code__] is cached
    assert pickle.loads(serializers.dumps_closure(f2, "f2"))(1) == 4


# -- the by-name cache (serializers._by_name): cloudpickle's decision, remembered -------


def test_by_name_cache_gives_cloudpickles_answer() -> None:
    import cloudpickle

    import asyncspark.partitioner as part
    f = part.portable_hash
    first = serializers.dumps_closure(f, "f")
    assert f in serializers._by_name  # remembered: by name
    assert serializers.dumps_closure(f, "f") == first  # the cached decision, same bytes
    assert pickle.loads(first) is f
    # the module registered for pickling by value: cloudpickle's answer changes, ours too
    cloudpickle.register_pickle_by_value(part)
    try:
        by_value = serializers.dumps_closure(f, "f")
        assert by_value != first
        assert len(by_value) > len(first)
        assert pickle.loads(by_value)(7) == f(7)
    finally:
        cloudpickle.unregister_pickle_by_value(part)
    assert serializers.dumps_closure(f, "f") == first


def test_by_name_cache_rechecks_a_rebound_attribute() -> None:
    import types as _types

    mod = _types.ModuleType("asyncspark_test_rebound")
    exec("def g(x):\n    return x + 1\n", mod.__dict__)
    import sys
    sys.modules[mod.__name__] = mod
    try:
        g = mod.g
        assert pickle.loads(serializers.dumps_closure(g, "g")) is g  # by name
        exec("def g(x):\n    return x + 2\n", mod.__dict__)  # the name now means another
        again = pickle.loads(serializers.dumps_closure(g, "g"))
        assert again is not mod.g
        assert again(1) == 2
    finally:
        del sys.modules[mod.__name__]


def test_copyreg_registration_after_first_pickle_counts() -> None:
    import copyreg

    class Point:
        def __init__(self, x):
            self.x = x

    serializers.dumps_closure([Point(1)], "p")
    copyreg.pickle(Point, lambda p: (int, (p.x * 10,)))
    try:
        assert pickle.loads(serializers.dumps_closure([Point(4)], "p")) == [40]
    finally:
        del copyreg.dispatch_table[Point]


def test_a_map_partition_function_pickles_by_name_with_the_users_function() -> None:
    """``map(f)``'s partition function is a class of the engine's (by name): only the
    user's ``f`` is pickled by value; every record pipeline kind round-trips."""
    from asyncspark.rdd import RDD
    from asyncspark.rdds.piped import Piped

    class Fake(RDD):  # no context needed: only the partition function is looked at
        def __init__(self) -> None:
            self.captured = None

        def _map_partitions(self, f, *args, **kwargs):
            self.captured = f
            return self

    def partition_function(name: str, f):
        return getattr(Fake(), name)(f).captured

    k = 3
    cases = {
        "map": (lambda x: x + k, [4, 5]),
        "flatMap": (lambda x: [x] * x, [1, 2, 2]),
        "filter": (lambda x: x > 1, [2]),
        "keyBy": (lambda x: x * k, [(3, 1), (6, 2)]),
    }
    for name, (f, expected) in cases.items():
        func = partition_function(name, f)
        assert type(func) is Piped
        data = serializers.dumps_closure(func, name)
        assert b"asyncspark.rdds.piped" in data  # a reference to the class
        assert b"Piped" in data
        assert list(pickle.loads(data)(0, iter([1, 2]))) == expected, name
    pairs = [("a", 1), ("b", 2)]
    for name, f, expected in (("mapValues", lambda v: v * k, [("a", 3), ("b", 6)]),
                              ("flatMapValues", lambda v: range(v), [("a", 0), ("b", 0),
                                                                     ("b", 1)])):
        func = pickle.loads(serializers.dumps_closure(partition_function(name, f), name))
        assert list(func(0, iter(pairs))) == expected, name
