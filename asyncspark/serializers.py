"""Pickling of closures, lineage and results, with errors that name the culprit."""

from __future__ import annotations

import pickle
import types
from typing import Any

import cloudpickle

from .errors import SerializationError

__all__ = ["describe_unpicklable", "dumps_closure", "dumps_result", "loads"]

PROTOCOL = 5
loads = pickle.loads


def dumps_result(value: Any) -> bytes:
    """Pickle a task result: plain pickle first (fast), cloudpickle for lambdas and locals."""
    try:
        return pickle.dumps(value, PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value, PROTOCOL)


def dumps_closure(obj: Any, what: str, functions: list[tuple[str, Any]] = ()) -> bytes:
    """cloudpickle ``obj``; on failure raise ``SerializationError`` naming the culprit.

    ``functions`` lists ``(description, function)`` pairs (e.g. ``("map()", f)``) searched
    for the object that cannot be pickled, so the message says where it came from.
    """
    try:
        return cloudpickle.dumps(obj, PROTOCOL)
    except Exception as exc:
        detail = None
        for desc, fn in functions:
            detail = describe_unpicklable(fn, desc)
            if detail:
                break
        msg = detail or f"cannot pickle {what}: {exc}"
        raise SerializationError(msg) from exc


def _picklable(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj, PROTOCOL)
    except Exception:
        return False
    return True


def _short(obj: Any) -> str:
    return f"<{type(obj).__module__}.{type(obj).__qualname__} object>".replace("builtins.", "")


def describe_unpicklable(fn: Any, desc: str, _depth: int = 0) -> str | None:
    """Why ``fn`` (a function passed to ``desc``) cannot be pickled, or None if it can."""
    if _picklable(fn):
        return None
    where = f"cannot pickle the function passed to {desc}"
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if not isinstance(fn, types.FunctionType):
        return f"{where}: {_short(fn)} is not picklable"
    code = fn.__code__
    if fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__, strict=False):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if not _picklable(value):
                inner = None
                if isinstance(value, types.FunctionType) and _depth < 3:
                    inner = describe_unpicklable(value, desc, _depth + 1)
                return inner or (
                    f"{where}: it references {_short(value)} via closure variable {name!r}")
    for name in _global_names(code):
        if name in fn.__globals__:
            value = fn.__globals__[name]
            if isinstance(value, types.ModuleType):
                continue
            if not _picklable(value):
                return f"{where}: it references {_short(value)} via global variable {name!r}"
    for i, value in enumerate(fn.__defaults__ or ()):
        if not _picklable(value):
            return f"{where}: it references {_short(value)} via default argument {i}"
    return f"{where}: {fn.__qualname__} is not picklable"


def _global_names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)
