"""Doctests of the package (``pytest --doctest-modules``, on by default in pyproject).

Each module's examples get ``sc`` and ``StorageLevel``. In the blocking facade's modules
(``sync``, ``sync_rdd``, ``sync_actions``) ``sc`` is a ``SparkContext("local[2]")`` made
for that module and stopped after it (one runs per process, as in PySpark), and
examples call it plainly. Everywhere else ``sc`` is the async ``Context`` behind that
facade, and examples ``await`` its actions as an application does: an example with a
top-level ``await`` (compiled as ``python -m asyncio`` compiles its input) runs as a
coroutine on the context's event loop, and what it prints or evaluates to is compared
as usual.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import doctest
import inspect
import types

import pytest
from _pytest.doctest import DoctestItem

_FACADE_MODULES = ("asyncspark.sync", "asyncspark.sync_rdd", "asyncspark.sync_actions")
_LOOP_KEY = "__doctest_loop__"


def _compile(source, filename, mode, flags=0, dont_inherit=False, optimize=-1):
    return builtins.compile(source, filename, mode, flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                            dont_inherit, optimize)


def _exec(code, globs=None, locs=None):
    if not (isinstance(code, types.CodeType) and code.co_flags & inspect.CO_COROUTINE):
        return builtins.exec(code, globs, locs)
    loop = (globs or {}).get(_LOOP_KEY)
    if loop is None:
        raise RuntimeError("a top-level await in a doctest of a facade module: the facade's "
                           "examples call it plainly")
    coro = types.FunctionType(code, globs)()
    asyncio.run_coroutine_threadsafe(coro, loop).result()
    return None


# doctest looks ``compile`` and ``exec`` up in its own module first: an example may then
# ``await`` (nothing else changes for examples without one).
doctest.compile = _compile  # type: ignore[attr-defined]
doctest.exec = _exec  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def _doctest_sc():
    from asyncspark import SparkContext

    with SparkContext("local[2]", "doctests") as sc:
        yield sc


@pytest.fixture(autouse=True)
def _doctest_globals(request, doctest_namespace):
    if isinstance(request.node, DoctestItem):
        from asyncspark import StorageLevel

        facade = request.getfixturevalue("_doctest_sc")
        name = request.node.dtest.name if request.node.dtest else ""
        if ".".join(name.split(".")[:2]) in _FACADE_MODULES:
            doctest_namespace["sc"] = facade
            doctest_namespace.pop(_LOOP_KEY, None)
        else:
            doctest_namespace["sc"] = facade._ctx
            doctest_namespace[_LOOP_KEY] = facade._loop
        doctest_namespace["StorageLevel"] = StorageLevel
