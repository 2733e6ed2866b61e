"""Scheduler latency and throughput of asyncspark ``local[2]``, against a bare
``concurrent.futures.ProcessPoolExecutor(2)`` measured in the same run.

Usage::

    python benchmarks/latency.py [--quick] [--runs N] [--json] [--loop uvloop|asyncio]
                                 [--conf KEY=VALUE ...]

Figures (the workloads of ``shared/bench/README.md``):

- trivial job: ``await sc.parallelize([1], 1).count()`` N times after a warm-up:
  p50 / p90 / p99 / max in ms; baseline: ``pool.submit(f, 1).result()``;
- empty tasks: one job ``sc.parallelize(range(10000), 10000).count()`` in tasks/s;
  baseline: ``pool.map(f, range(10000), chunksize=1)``;
- context start: ``Context("local[2]")`` until ``start()`` returns, and until its first
  job is done (PySpark's reference figure is the latter); baseline: pool creation until
  the first result.

The whole measurement is repeated ``--runs`` times (the two systems alternate which goes
first) and each figure is reported as the median across runs. ``--quick`` is a smoke test
with tiny N and one run: its figures are not meaningful.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from common import parse_conf

import asyncspark

# Targets from the issues, and reference figures (PySpark 4.3.0 local[2], medians) from
# shared/bench/README.md, for scale.
TARGET_TRIVIAL_P50_MS = 1.0
TARGET_TASKS_PER_S = 5_000.0
REFERENCE = {
    "pyspark_local2": {"trivial_p50_ms": 91.0, "trivial_p99_ms": 187.0,
                       "tasks_per_s": 40.0, "first_job_ms": 12_700.0},
    "dask_2_workers": {"trivial_p50_ms": 11.0, "tasks_per_s": 358.0, "first_job_ms": 2_300.0},
    "ray_2_cpus": {"trivial_p50_ms": 3.4, "tasks_per_s": 914.0, "first_job_ms": 9_000.0},
}


@dataclass(frozen=True)
class Params:
    runs: int
    warmup: int
    trivial: int
    tasks: int
    loop: str
    conf: dict[str, str]


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/max in ms (nearest-rank percentiles)."""
    s = sorted(samples_ns)

    def rank(q: float) -> float:
        return s[max(0, math.ceil(q * len(s)) - 1)] / 1e6

    return {"p50_ms": rank(0.50), "p90_ms": rank(0.90), "p99_ms": rank(0.99),
            "max_ms": s[-1] / 1e6}


# -- asyncspark --------------------------------------------------------------------------

async def _measure_asyncspark(p: Params) -> dict[str, float]:
    clock = time.perf_counter
    t0 = clock()
    sc = asyncspark.Context("local[2]", app_name="latency-bench", conf=p.conf)
    await sc.start()
    ready = clock()
    try:
        await sc.parallelize([1], 1).count()
        first_job = clock()
        for _ in range(p.warmup):
            await sc.parallelize([1], 1).count()
        samples = []
        for _ in range(p.trivial):
            t = time.perf_counter_ns()
            await sc.parallelize([1], 1).count()
            samples.append(time.perf_counter_ns() - t)
        t = clock()
        n = await sc.parallelize(range(p.tasks), p.tasks).count()
        elapsed = clock() - t
        if n != p.tasks:
            raise AssertionError(f"count() returned {n}, expected {p.tasks}")
    finally:
        t = clock()
        await sc.stop()
        stopped = clock() - t
    return {
        **_percentiles(samples),
        "tasks_per_s": p.tasks / elapsed,
        "tasks_wall_s": elapsed,
        "start_ms": (ready - t0) * 1e3,
        "first_job_ms": (first_job - t0) * 1e3,
        "stop_ms": stopped * 1e3,
    }


def _run_asyncspark(p: Params) -> dict[str, float]:
    if p.loop == "asyncio":
        return asyncio.run(_measure_asyncspark(p))
    return asyncspark.run(_measure_asyncspark(p))


# -- baseline: a bare ProcessPoolExecutor ------------------------------------------------

def _noop(x: int) -> int:
    return x


def _run_pool(p: Params) -> dict[str, float]:
    clock = time.perf_counter
    t0 = clock()
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        pool.submit(_noop, 1).result()
        first_job = clock()
        for _ in range(p.warmup):
            pool.submit(_noop, 1).result()
        samples = []
        for _ in range(p.trivial):
            t = time.perf_counter_ns()
            pool.submit(_noop, 1).result()
            samples.append(time.perf_counter_ns() - t)
        t = clock()
        n = sum(1 for _ in pool.map(_noop, range(p.tasks), chunksize=1))
        elapsed = clock() - t
        if n != p.tasks:
            raise AssertionError(f"pool.map returned {n} results, expected {p.tasks}")
        t = clock()
    stopped = clock() - t
    return {
        **_percentiles(samples),
        "tasks_per_s": p.tasks / elapsed,
        "tasks_wall_s": elapsed,
        "first_job_ms": (first_job - t0) * 1e3,
        "stop_ms": stopped * 1e3,
    }


# -- the report --------------------------------------------------------------------------

def measure(p: Params, progress: bool) -> dict[str, Any]:
    runs = []
    for i in range(p.runs):
        order = ("asyncspark", "pool") if i % 2 == 0 else ("pool", "asyncspark")
        run: dict[str, dict[str, float]] = {}
        for system in order:
            run[system] = _run_asyncspark(p) if system == "asyncspark" else _run_pool(p)
        runs.append(run)
        if progress:
            a, b = run["asyncspark"], run["pool"]
            print(f"run {i + 1}/{p.runs}: asyncspark p50 {a['p50_ms']:.3f} ms, "
                  f"{a['tasks_per_s']:,.0f} tasks/s; pool p50 {b['p50_ms']:.3f} ms, "
                  f"{b['tasks_per_s']:,.0f} tasks/s", file=sys.stderr, flush=True)

    median = {system: {key: statistics.median(r[system][key] for r in runs)
                       for key in runs[0][system]}
              for system in ("asyncspark", "pool")}
    a, b = median["asyncspark"], median["pool"]
    return {
        "params": asdict(p),
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "asyncspark": asyncspark.__version__,
            "loop": p.loop,
            "pool_start_method": multiprocessing.get_start_method(),
        },
        "runs": runs,
        "median": median,
        # asyncspark / ProcessPoolExecutor: > 1 means asyncspark is slower for latencies,
        # faster for tasks_per_s.
        "ratio_vs_pool": {
            "trivial_p50": a["p50_ms"] / b["p50_ms"],
            "trivial_p99": a["p99_ms"] / b["p99_ms"],
            "tasks_per_s": a["tasks_per_s"] / b["tasks_per_s"],
            "first_job": a["first_job_ms"] / b["first_job_ms"],
        },
        "targets": {
            "trivial_p50_ms": {"target": f"<= {TARGET_TRIVIAL_P50_MS}", "value": a["p50_ms"],
                               "pass": a["p50_ms"] <= TARGET_TRIVIAL_P50_MS},
            "tasks_per_s": {"target": f">= {TARGET_TASKS_PER_S:.0f}", "value": a["tasks_per_s"],
                            "pass": a["tasks_per_s"] >= TARGET_TASKS_PER_S},
        },
        "reference": REFERENCE,
    }


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def format_table(report: dict[str, Any]) -> str:
    p, env = report["params"], report["environment"]
    a, b = report["median"]["asyncspark"], report["median"]["pool"]
    ref = report["reference"]["pyspark_local2"]
    lines = [
        f"asyncspark {env['asyncspark']} local[2] vs ProcessPoolExecutor(2) "
        f"({env['pool_start_method']}); Python {env['python']}, {env['loop']}, "
        f"{env['cpus']} CPUs" + (f"; conf {p['conf']}" if p["conf"] else ""),
        f"median of {p['runs']} run(s); trivial job x{p['trivial']} after {p['warmup']} "
        f"warm-up; empty tasks: 1 job of {p['tasks']:,}",
        "",
        f"{'':30}{'asyncspark':>12}{'ProcessPool':>13}{'ratio':>9}{'PySpark':>10}",
    ]

    def row(label: str, key: str, digits: int, ref_value: float | None = None,
            pool: bool = True) -> None:
        bv = b.get(key) if pool else None
        ratio = f"{a[key] / bv:.2f}x" if bv else "-"
        lines.append(f"{label:30}{_fmt(a[key], digits):>12}{_fmt(bv, digits):>13}"
                     f"{ratio:>9}{_fmt(ref_value, 0):>10}")

    row("trivial job p50 (ms)", "p50_ms", 3, ref["trivial_p50_ms"])
    row("trivial job p90 (ms)", "p90_ms", 3)
    row("trivial job p99 (ms)", "p99_ms", 3, ref["trivial_p99_ms"])
    row("trivial job max (ms)", "max_ms", 3)
    row("empty tasks (tasks/s)", "tasks_per_s", 0, ref["tasks_per_s"])
    row(f"{p['tasks']:,} empty tasks (s)", "tasks_wall_s", 3)
    row("context start, ready (ms)", "start_ms", 1, pool=False)
    row("start to first job done (ms)", "first_job_ms", 1, ref["first_job_ms"])
    row("stop (ms)", "stop_ms", 1)
    lines.append("ratio = asyncspark / ProcessPoolExecutor (PySpark: reference figures "
                 "from shared/bench/README.md, not measured here)")
    lines.append("")
    lines.append(f"vs PySpark: trivial p50 {ref['trivial_p50_ms'] / a['p50_ms']:,.0f}x "
                 f"faster, empty tasks {a['tasks_per_s'] / ref['tasks_per_s']:,.0f}x faster")
    lines.append("targets:")
    for name, t in report["targets"].items():
        verdict = "PASS" if t["pass"] else "FAIL"
        lines.append(f"  {name:16} {t['target']:>10}   measured {t['value']:>12,.3f}   {verdict}")
    if len(report["runs"]) > 1:
        lines.append("per run (asyncspark p50 ms / tasks/s): " + ", ".join(
            f"{r['asyncspark']['p50_ms']:.3f}/{r['asyncspark']['tasks_per_s']:,.0f}"
            for r in report["runs"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="asyncspark scheduler latency and throughput vs ProcessPoolExecutor")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny N and one run (figures not meaningful)")
    parser.add_argument("--runs", type=int, default=None,
                        help="repetitions of the whole measurement (default 5; 1 with --quick)")
    parser.add_argument("--trivial", type=int, default=None,
                        help="timed trivial jobs per run (default 500)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up trivial jobs per run (default 50)")
    parser.add_argument("--tasks", type=int, default=None,
                        help="empty tasks in the throughput job (default 10000)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop for asyncspark (default uvloop, as asyncspark.run)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="asyncspark configuration for the context, e.g. "
                             "asyncspark.executor.taskSlots=4 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    conf = parse_conf(parser, args.conf)
    small = args.quick
    p = Params(
        runs=args.runs if args.runs is not None else (1 if small else 5),
        warmup=args.warmup if args.warmup is not None else (5 if small else 50),
        trivial=args.trivial if args.trivial is not None else (20 if small else 500),
        tasks=args.tasks if args.tasks is not None else (200 if small else 10_000),
        loop=args.loop,
        conf=conf,
    )
    if p.runs < 1 or p.trivial < 1 or p.tasks < 1 or p.warmup < 0:
        parser.error("--runs, --trivial and --tasks must be at least 1, --warmup at least 0")
    report = measure(p, progress=not args.json)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
