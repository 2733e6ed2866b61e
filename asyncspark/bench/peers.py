"""The same scenarios on other systems, run side by side in the same invocation.

- ``multiprocessing``: a bare ``concurrent.futures.ProcessPoolExecutor`` with as many
  workers as asyncspark has executors: a trivial job is ``pool.submit(f, 1).result()``,
  the empty tasks are ``pool.map(f, range(n), chunksize=1)``, concurrent jobs and
  loop-lag submitters are threads.
- ``pyspark`` (``local[N]``) and ``dask`` (a ``distributed`` cluster of N single-threaded
  worker processes): only when importable; they are never dependencies. Their
  throughput runs at most ``SLOW_PEER_TASKS`` tasks (PySpark does ~40 tasks/s).

Figures use asyncspark's names, so the report can put them side by side; a figure a
system has no counterpart for is absent.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any

from .params import Params
from .stats import percentiles

__all__ = ["MEASURES", "available", "noop"]

SLOW_PEER_TASKS = 1_000
_clock = time.perf_counter
_clock_ns = time.perf_counter_ns


def noop(x: Any) -> Any:
    """The task of every peer (a module-level function: picklable by reference)."""
    return x


def available(peer: str) -> bool:
    module = {"multiprocessing": "concurrent.futures", "pyspark": "pyspark",
              "dask": "distributed"}[peer]
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _timed_calls(call: Callable[[], Any], warmup: int, n: int) -> list[int]:
    """Latencies (ns) of ``n`` calls of ``call`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        t = _clock_ns()
        call()
        samples.append(_clock_ns() - t)
    return samples


def _in_threads(n: int, fn: Callable[[], Any]) -> float:
    """Run ``fn`` on ``n`` threads at once; the wall time in seconds."""
    threads = [threading.Thread(target=fn) for _ in range(n)]
    t = _clock()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return _clock() - t


def _scenarios(p: Params, out: dict[str, Any], trivial: Callable[[], Any],
               run_tasks: Callable[[int], int], tasks: int) -> None:
    """Fill ``out`` with the latency, throughput and loop-lag figures of a peer whose
    trivial job is ``trivial()`` and whose ``run_tasks(n)`` runs ``n`` no-op tasks and
    returns how many ran."""
    if "latency" in p.scenarios:
        samples = _timed_calls(trivial, p.warmup, p.trivial)
        out["latency"] = {**percentiles(samples, 1e-6), "jobs": len(samples)}
        out["_samples"] = [s / 1e6 for s in samples]
    if "throughput" in p.scenarios:
        t = _clock()
        got = run_tasks(tasks)
        one = _clock() - t
        if got != tasks:
            raise AssertionError(f"{got} tasks ran, expected {tasks}")
        per_job = max(1, tasks // p.jobs)
        many = _in_threads(p.jobs, lambda: run_tasks(per_job))
        total = per_job * p.jobs
        out["throughput"] = {"tasks_per_s": tasks / one, "us_per_task": one / tasks * 1e6,
                             "concurrent_tasks_per_s": total / many,
                             "concurrent_us_per_task": many / total * 1e6}
    if "loop-lag" in p.scenarios:
        latencies: list[int] = []
        lock = threading.Lock()

        def submitter() -> None:
            mine = _timed_calls(trivial, 0, p.lag_jobs)
            with lock:
                latencies.extend(mine)

        elapsed = _in_threads(p.jobs, submitter)
        pct = percentiles(latencies, 1e-6)
        out["loop-lag"] = {"jobs_per_s": len(latencies) / elapsed,
                           "job_p50_ms": pct["p50_ms"], "job_p99_ms": pct["p99_ms"]}


# -- multiprocessing -------------------------------------------------------------------

def measure_multiprocessing(p: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t0 = _clock()
    with concurrent.futures.ProcessPoolExecutor(p.executors) as pool:
        pool.submit(noop, 1).result()
        first = _clock()
        _scenarios(p, out, lambda: pool.submit(noop, 1).result(),
                   lambda n: sum(1 for _ in pool.map(noop, range(n), chunksize=1)), p.tasks)
        t = _clock()
    if "startup" in p.scenarios:
        out["startup"] = {"first_job_ms": (first - t0) * 1e3, "stop_ms": (_clock() - t) * 1e3}
    return out


# -- PySpark ---------------------------------------------------------------------------

def measure_pyspark(p: Params) -> dict[str, Any]:
    from pyspark import SparkConf, SparkContext

    out: dict[str, Any] = {}
    conf = (SparkConf().setMaster(p.master).setAppName("asyncspark-bench-peer")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false"))
    t0 = _clock()
    sc = SparkContext(conf=conf)
    try:
        ready = _clock()
        sc.setLogLevel("ERROR")
        sc.parallelize([1], 1).count()
        first = _clock()
        _scenarios(p, out, lambda: sc.parallelize([1], 1).count(),
                   lambda n: sc.parallelize(range(n), n).count(),
                   min(p.tasks, SLOW_PEER_TASKS))
    finally:
        t = _clock()
        sc.stop()
    if "startup" in p.scenarios:
        out["startup"] = {"ready_ms": (ready - t0) * 1e3, "first_job_ms": (first - t0) * 1e3,
                          "stop_ms": (_clock() - t) * 1e3}
    return out


# -- Dask ------------------------------------------------------------------------------

def measure_dask(p: Params) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    out: dict[str, Any] = {}
    t0 = _clock()
    cluster = LocalCluster(n_workers=p.executors, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    try:
        ready = _clock()
        client.submit(noop, 1, pure=False).result()
        first = _clock()

        def run_tasks(n: int) -> int:
            return len(client.gather(client.map(noop, range(n), pure=False)))

        _scenarios(p, out, lambda: client.submit(noop, 1, pure=False).result(), run_tasks,
                   min(p.tasks, SLOW_PEER_TASKS))
    finally:
        t = _clock()
        client.close()
        cluster.close()
    if "startup" in p.scenarios:
        out["startup"] = {"ready_ms": (ready - t0) * 1e3, "first_job_ms": (first - t0) * 1e3,
                          "stop_ms": (_clock() - t) * 1e3}
    return out


MEASURES: dict[str, Callable[[Params], dict[str, Any]]] = {
    "multiprocessing": measure_multiprocessing,
    "pyspark": measure_pyspark,
    "dask": measure_dask,
}
