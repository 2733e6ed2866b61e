"""Pickling of closures, lineage and results, with errors that name the culprit.

Closures keep their code's file name (cloudpickle writes ``<dynamic-code>``), so a
task's remote traceback names the user's file and line: a code object pickled by value
travels as its ``marshal`` bytes (what ``.pyc`` files hold: every field, the file name
included), computed once per code object and cached while it lives. A service's
handler creates a new closure per request around the same code, and cloudpickle's own
reduction of a code object is 30-40x the cost of the cached bytes. As with cloudpickle's
own code pickles, executors must run the driver's Python version (major.minor).

Per job, a lineage also names ~10 classes and functions that cloudpickle pickles by name
(attributes of importable modules); its decision is remembered per object
(``_by_name``), re-verified cheaply on each use and forgotten when the pickle-by-value
registry changes. The dispatch table is a dict rather than cloudpickle's ``ChainMap``.
Together about a fifth of a small job's task-binary pickling.
"""

from __future__ import annotations

import abc
import copyreg
import functools
import io
import marshal
import pickle
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle

from .errors import AsyncSparkError, SerializationError

__all__ = ["DRIVER_ONLY", "describe_unpicklable", "dumps_closure", "dumps_result", "loads",
           "refuse_nested_use"]

PROTOCOL = 5
loads: Callable[[bytes], Any] = pickle.loads


# code object -> its marshal bytes, while it lives
_code_bytes: weakref.WeakKeyDictionary[types.CodeType, bytes] = weakref.WeakKeyDictionary()


def _code_reduce_marshal(code: types.CodeType) -> tuple:
    data = _code_bytes.get(code)
    if data is None:
        data = _code_bytes[code] = marshal.dumps(code)
    return marshal.loads, (data,)


class _DispatchTable(dict):
    """Our code reducer and cloudpickle's reducers by type in one dict, copyreg's live
    table consulted on a miss (so a later ``copyreg.pickle()`` counts, as with
    cloudpickle's ``ChainMap``). The C pickler looks up the type of every object it
    reduces: a ``ChainMap``'s lookup runs in Python and cost a tenth of a small
    lineage's pickling."""

    __slots__ = ()

    def __missing__(self, key: type) -> Any:
        return copyreg.dispatch_table[key]


_cloudpickle_module = sys.modules[cloudpickle.Pickler.__module__]
_CLASS_TYPES = (type, abc.ABCMeta)

# class or function -> (module name, qualname, its attribute path, module) for those
# cloudpickle pickles by name (an importable module's attribute). cloudpickle decides
# it again on every pickle (a lookup through sys.modules and the qualname, and the
# pickle-by-value registry): a lineage names ~10 such classes and functions per job.
# A hit is re-verified cheaply (same module object in sys.modules, same
# ``__module__``/``__qualname__``, the attribute path still leads to the object), and the
# cache is cleared when the pickle-by-value registry changes.
# A plain dict (a WeakKeyDictionary's lookup costs a weakref and a Python call): what it
# holds are module attributes, alive with their modules; bounded in case modules are
# reloaded over and over.
_by_name: dict[Any, tuple] = {}
_BY_NAME_MAX = 4096
_by_value_seen: frozenset[str] = frozenset()
_MISSING = object()


def _still_by_name(obj: Any, entry: tuple) -> bool:
    module_name, qualname, path, module = entry
    if (getattr(obj, "__module__", None) != module_name
            or getattr(obj, "__qualname__", None) != qualname
            or sys.modules.get(module_name) is not module):
        return False
    target = module
    for part in path:
        target = getattr(target, part, _MISSING)
    return target is obj


class _Pickler(cloudpickle.Pickler):
    dispatch_table = _DispatchTable({**cloudpickle.Pickler.dispatch_table.maps[0],
                                     types.CodeType: _code_reduce_marshal})

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t is not types.FunctionType and t not in _CLASS_TYPES:
            if issubclass(t, type):  # a class of another metaclass: not cached
                return super().reducer_override(obj)
            return NotImplemented  # neither class nor function: cloudpickle's answer too
        entry = _by_name.get(obj)
        if entry is not None and _still_by_name(obj, entry):
            return NotImplemented  # by name, as cloudpickle would have decided
        result = super().reducer_override(obj)
        if result is NotImplemented:  # cloudpickle chose by name: remember why
            module_name = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if isinstance(module_name, str) and isinstance(qualname, str):
                module = sys.modules.get(module_name)
                entry = (module_name, qualname, tuple(qualname.split(".")), module)
                if module is not None and _still_by_name(obj, entry):
                    if len(_by_name) >= _BY_NAME_MAX:
                        _by_name.clear()
                    _by_name[obj] = entry
        return result


def _cloudpickle_dumps(obj: Any) -> bytes:
    global _by_value_seen
    registry = _cloudpickle_module._PICKLE_BY_VALUE_MODULES
    if registry != _by_value_seen:  # register_pickle_by_value() changes the decisions
        _by_name.clear()
        _by_value_seen = frozenset(registry)
    buf = io.BytesIO()
    _Pickler(buf, protocol=PROTOCOL).dump(obj)
    return buf.getvalue()


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
        return _cloudpickle_dumps(obj)
    except AsyncSparkError:
        raise  # refused on purpose, and says why (e.g. a destroyed broadcast variable)
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


_NESTED_USE_MSG = (
    "RDD transformations and actions can only be invoked by the driver, not inside other "
    "transformations; for example, rdd1.map(lambda x: rdd2.values().count() * x) is "
    "invalid because the values transformation and count action cannot be performed "
    "inside of the rdd1.map transformation (SPARK-5063)")


DRIVER_ONLY = "_asyncspark_driver_only_"
"""Class attribute that marks driver-only objects: ``RDD`` sets it to ``"rdd"``, ``Context``
to ``"context"``. ``refuse_nested_use`` recognises them by it, without importing them."""


def refuse_nested_use(fn: Any, desc: str) -> None:
    """Raise ``RuntimeError`` if ``fn`` reaches an RDD or a Context through its closure
    variables, the globals it names, its defaults or the attributes of objects in them."""
    seen: set[int] = set()

    def find(obj: Any, depth: int) -> str | None:
        kind = getattr(type(obj), DRIVER_ONLY, None)
        if kind == "rdd":
            return f"{obj!r}"
        if kind == "context":
            return "the Context"
        if depth > 4 or id(obj) in seen:
            return None
        seen.add(id(obj))
        if isinstance(obj, types.MethodType):
            return find(obj.__self__, depth + 1) or find(obj.__func__, depth + 1)
        if isinstance(obj, types.FunctionType):
            for name, value in _function_refs(obj):
                found = find(value, depth + 1)
                if found:
                    return found if depth else f"{found} via {name}"
            return None
        if isinstance(obj, (list, tuple, set, frozenset)) and len(obj) <= 64:
            for value in obj:
                found = find(value, depth + 1)
                if found:
                    return found
            return None
        if isinstance(obj, dict) and len(obj) <= 64:
            for value in obj.values():
                found = find(value, depth + 1)
                if found:
                    return found
            return None
        if isinstance(obj, functools.partial):
            return (find(obj.func, depth + 1) or find(obj.args, depth + 1)
                    or find(obj.keywords, depth + 1))
        if (not isinstance(obj, (type, types.ModuleType, types.BuiltinFunctionType))
                and type(obj).__module__ not in ("builtins", "asyncspark.rdd")):
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict):
                return find(attrs, depth + 1)
        return None

    try:
        found = find(fn, 0)
    except Exception:  # an exotic object resisted inspection: let pickling decide
        return
    if found:
        raise RuntimeError(
            f"the function passed to {desc} references {found}: {_NESTED_USE_MSG}")


def _function_refs(fn: types.FunctionType) -> Iterator[tuple[str, Any]]:
    """``(how, value)`` for what a function's code can reach when it runs elsewhere."""
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            yield f"closure variable {name!r}", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    g = fn.__globals__
    for name in sorted(set(_global_names(code))):
        if name in g:
            yield f"global variable {name!r}", g[name]
    for i, value in enumerate(fn.__defaults__ or ()):
        yield f"default argument {i}", value
    for name, value in (fn.__kwdefaults__ or {}).items():
        yield f"keyword default {name!r}", value
