"""The scenarios, measured on asyncspark itself.

One call of ``measure`` is one run: a fresh ``Context`` for startup, latency and
throughput (tracing off, as applications run), and a second, traced one for the
loop-lag scenario and the latency breakdown (the traced figures need its stamps). With
the latency scenario comes its floor, a loopback msgpack round trip from the same loop
(``rtt.measure_rtt``), measured right after the trivial jobs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from ..context import Context
from ..scheduler.trace import summarize
from .params import Params
from .rtt import measure_rtt
from .stats import percentiles

__all__ = ["import_times", "measure"]

_clock = time.perf_counter
_clock_ns = time.perf_counter_ns

_IMPORT_PROBE = """\
import json, time
t0 = time.perf_counter()
import asyncspark
t1 = time.perf_counter()
from asyncspark import Context
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "import_context_ms": (t2 - t0) * 1e3}))
"""


def import_times() -> dict[str, float]:
    """``import asyncspark`` and ``from asyncspark import Context`` in a fresh interpreter
    (after its own start-up, which is not counted), in ms."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(p: Params) -> dict[str, Any]:
    """One run of the selected scenarios: ``{scenario: {figure: value}}``, plus
    ``"_samples"`` (the trivial-job latencies in ms, for the histogram) and
    ``"_breakdown"`` when asked."""
    coro = _measure(p)
    if p.loop == "asyncio":
        return asyncio.run(coro)
    from .. import run

    return run(coro)


async def _measure(p: Params) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if {"startup", "latency", "throughput"} & set(p.scenarios):
        await _plain_context(p, out)
    if "loop-lag" in p.scenarios or p.breakdown:
        await _traced_context(p, out)
    if "startup" in p.scenarios:
        out["startup"].update(import_times())
    return out


async def _plain_context(p: Params, out: dict[str, Any]) -> None:
    t0 = _clock()
    sc = Context(p.master, app_name="asyncspark-bench", conf=p.conf)
    await sc.start()
    ready = _clock()
    try:
        await sc.parallelize([1], 1).count()
        first = _clock()
        if "latency" in p.scenarios:
            samples = await _trivial_jobs(sc, p.warmup, p.trivial)
            out["latency"] = {**percentiles(samples, 1e-6), "jobs": len(samples)}
            out["_samples"] = [s / 1e6 for s in samples]
            # The floor, on the same loop, right after the jobs, executors still up.
            out["rtt"] = await measure_rtt(max(p.trivial, 200), p.warmup)
        if "throughput" in p.scenarios:
            out["throughput"] = await _throughput(sc, p)
    finally:
        t = _clock()
        await sc.stop()
        stopped = _clock()
    if "startup" in p.scenarios:
        out["startup"] = {"ready_ms": (ready - t0) * 1e3, "first_job_ms": (first - t0) * 1e3,
                          "stop_ms": (stopped - t) * 1e3}


async def _trivial_jobs(sc: Context, warmup: int, n: int) -> list[int]:
    """Latencies (ns) of ``n`` trivial jobs run one after another, after ``warmup``."""
    for _ in range(warmup):
        await sc.parallelize([1], 1).count()
    samples = []
    for _ in range(n):
        t = _clock_ns()
        await sc.parallelize([1], 1).count()
        samples.append(_clock_ns() - t)
    return samples


async def _throughput(sc: Context, p: Params) -> dict[str, float]:
    n = p.tasks
    t = _clock()
    got = await sc.parallelize(range(n), n).count()
    one = _clock() - t
    if got != n:
        raise AssertionError(f"count() returned {got}, expected {n}")
    per_job = max(1, n // p.jobs)
    t = _clock()
    counts = await asyncio.gather(*(sc.parallelize(range(per_job), per_job).count()
                                    for _ in range(p.jobs)))
    many = _clock() - t
    if counts != [per_job] * p.jobs:
        raise AssertionError(f"concurrent count() returned {counts}, expected {per_job} each")
    total = per_job * p.jobs
    return {"tasks_per_s": n / one, "us_per_task": one / n * 1e6,
            "concurrent_tasks_per_s": total / many, "concurrent_us_per_task": many / total * 1e6}


async def _traced_context(p: Params, out: dict[str, Any]) -> None:
    conf = {**p.conf, "asyncspark.trace.tasks": "true"}
    async with Context(p.master, app_name="asyncspark-bench-traced", conf=conf) as sc:
        tracer = sc._tracer
        assert tracer is not None
        if p.breakdown:
            await _trivial_jobs(sc, p.warmup, 0)
            tracer.clear()
            await _trivial_jobs(sc, 0, p.trivial)
            out["_breakdown"] = summarize(list(tracer.records))
        if "loop-lag" in p.scenarios:
            await _trivial_jobs(sc, p.warmup, 0)
            tracer.clear()
            out["loop-lag"] = await _loop_lag(sc, p)
            waits = percentiles(tracer.queue_waits, 1e-3, "us")
            out["loop-lag"].update({f"queue_wait_{k}": v for k, v in waits.items()})


async def _loop_lag(sc: Context, p: Params) -> dict[str, float]:
    """``p.jobs`` coroutines each run ``p.lag_jobs`` trivial jobs back to back, while a
    probe measures, every millisecond, how long a coroutine that is ready to run waits
    for the event loop (its lag: one pass over everything else that is ready)."""
    lags: list[int] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            await asyncio.sleep(0.001)
            t = _clock_ns()
            await asyncio.sleep(0)
            lags.append(_clock_ns() - t)

    latencies: list[int] = []

    async def submitter() -> None:
        for _ in range(p.lag_jobs):
            t = _clock_ns()
            await sc.parallelize([1], 1).count()
            latencies.append(_clock_ns() - t)

    tick = asyncio.get_running_loop().create_task(ticker())
    t = _clock()
    try:
        await asyncio.gather(*(submitter() for _ in range(p.jobs)))
    finally:
        elapsed = _clock() - t
        done.set()
        await tick
    lag = {f"loop_lag_{k}": v for k, v in percentiles(lags, 1e-3, "us").items()
           if not k.startswith("p90")}
    job = {f"job_{k}": v for k, v in percentiles(latencies, 1e-6).items()
           if k.startswith(("p50", "p99"))}
    return {"jobs_per_s": len(latencies) / elapsed, **job, **lag}
