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
