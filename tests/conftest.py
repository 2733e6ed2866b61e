"""Shared test fixtures.

- Every async test runs on uvloop and on asyncio's default loop (``loop_factories``).
- ``sc``: a module-scoped ``local[2]`` context; modules using it set
  ``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
- Leak checks: a module that leaves a child process, an asyncspark thread or a temp dir
  of ours behind fails. The session gets a temp directory of its own (TMPDIR, inherited
  by executors), so concurrent runs on one machine do not see each other's files.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import tempfile
import threading

import psutil
import pytest
import pytest_asyncio

import asyncspark

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
    uvloop = None


_SESSION_TMP = tempfile.mkdtemp(prefix="asyncspark-tests-")
os.environ["TMPDIR"] = _SESSION_TMP
tempfile.tempdir = _SESSION_TMP


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


# Tests that hold a machine-wide resource (the cluster tests: Ray nodes on 127.0.0.11-14,
# the SLURM daemons, network namespaces) or load both cores for long (the benchmarks'
# side-by-side smoke tests, which start PySpark's JVM and Dask): under pytest-xdist
# (``-n 2 --dist loadgroup``, the README's test command) they all run on one worker, one
# after another, so a starved Ray node is never declared dead by its own cluster, while the
# rest of the suite is spread over both workers.
_SERIAL = ("tests/cluster/", "tests/integration/test_shuffle_bench.py",
           "tests/integration/test_examples_bench.py", "tests/integration/test_service_bench.py")


@pytest.hookimpl(tryfirst=True)  # before xdist's hook turns the mark into the item's group
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.replace("\\", "/").startswith(_SERIAL):
            item.add_marker(pytest.mark.xdist_group("serial"))


# Errors the event loop reports to its exception handler ("Task exception was never
# retrieved", exceptions in callbacks): each one fails the test that caused it.
_loop_errors: list[dict] = []


def _record_loop_error(loop, context):
    _loop_errors.append(context)
    loop.default_exception_handler(context)


def _checked(factory):
    def make():
        loop = factory()
        loop.set_exception_handler(_record_loop_error)
        return loop

    return make


# Built once: new factory objects per test would change the fixtures' parameters and
# restart module-scoped contexts for every test.
_FACTORIES = {"asyncio": _checked(asyncio.new_event_loop)}
if uvloop is not None:
    _FACTORIES = {"uvloop": _checked(uvloop.new_event_loop), **_FACTORIES}


# The contract cases of the real cluster managers' backends run on one loop (see
# tests/cluster/test_cluster_contract_managers.py).
_ONE_LOOP = ("tests/cluster/test_cluster_contract_managers.py",)


def pytest_asyncio_loop_factories(config, item):
    if item.nodeid.startswith(_ONE_LOOP):
        return dict(list(_FACTORIES.items())[:1])  # uvloop where installed
    return _FACTORIES


@pytest.fixture(autouse=True)
def _no_loop_errors():
    _loop_errors.clear()
    yield
    errors = [c.get("message", "") + ": " + repr(c.get("exception")) for c in _loop_errors]
    _loop_errors.clear()
    assert not errors, f"the event loop reported errors: {errors}"


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]


def _temp_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "asyncspark-*")))


@pytest.fixture(autouse=True, scope="module")
def _no_leaks():
    before_dirs = _temp_dirs()
    yield
    deadline = 50
    while _children() and deadline:
        psutil.wait_procs(_children(), timeout=0.1)
        deadline -= 1
    left = _children()
    for p in left:
        p.kill()
    assert not left, f"child processes left behind: {[p.cmdline() for p in left]}"
    threads = [t.name for t in threading.enumerate() if t.name.startswith("asyncspark")]
    assert not threads, f"threads left behind: {threads}"
    new_dirs = _temp_dirs() - before_dirs
    assert not new_dirs, f"temp dirs left behind: {new_dirs}"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sc():
    async with asyncspark.Context("local[2]", app_name="tests") as ctx:
        yield ctx


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """Throwaway PEM files for TLS (``tests/tlscerts.py``): a CA, a certificate it signs
    for 127.0.0.1, and certificates it does not vouch for."""
    from tlscerts import make_tls_files

    return make_tls_files(str(tmp_path_factory.mktemp("tls")))
