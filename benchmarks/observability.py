"""What observability costs: the trivial-job latency (p50) and the word-count time with
the web UI, the event log and the console progress bar all on, against all off, side by
side in one run (rounds alternate off/on, each with a fresh context, so a shared
machine's noise falls on both; medians of every trivial job and of 3 word counts a
round).

A third figure takes the context-to-context noise out: one context with all three on,
its listeners detached and attached again in alternating blocks of trivial jobs ("off"
blocks: no listener at all, so no events are built, as in a context without them; the UI
server stays up, idle).

Usage::

    python benchmarks/observability.py [--jobs 300] [--runs 3] [--mb 16] [--json]
                                       [--quick] [--data DIR]

"off" is the default configuration of a non-interactive program: no listener at all, so
the scheduler builds no events. "on" sets ``spark.ui.enabled=true`` (port 0, the status
store attached), ``spark.eventLog.enabled=true`` (a temporary directory) and
``spark.ui.showConsoleProgress=true`` (drawn on stderr). Targets (issue 12): at most 5%
slower on the trivial job, at most 3% on word count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA_DIR
from wordcount import ensure_input

import asyncspark


def conf_for(mode: str, log_dir: str) -> dict[str, str]:
    if mode == "off":
        return {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
    return {"spark.ui.enabled": "true", "spark.ui.port": "0",
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": log_dir,
            "spark.ui.showConsoleProgress": "true"}


async def trivial(mode: str, jobs: int, log_dir: str) -> list[float]:
    async with asyncspark.Context("local[2]", conf=conf_for(mode, log_dir)) as sc:
        rdd = sc.parallelize([1], 1)
        for _ in range(20):  # warm up
            await rdd.count()
        clock = time.perf_counter
        out = []
        for _ in range(jobs):
            t0 = clock()
            await rdd.count()
            out.append(clock() - t0)
        return out


async def wordcount(mode: str, path: str, log_dir: str, repeat: int) -> list[float]:
    async with asyncspark.Context("local[2]", conf=conf_for(mode, log_dir)) as sc:
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            pairs = await (sc.textFile(path, 8).flatMap(str.split).map(lambda w: (w, 1))
                           .reduceByKey(operator.add).collect())
            out.append(time.perf_counter() - t0)
            assert pairs
        return out


async def toggled(jobs: int, log_dir: str, block: int = 25) -> dict[str, list[float]]:
    """Trivial jobs in one context, its listeners detached ("off") and attached ("on")
    in alternating blocks (ABBA order)."""
    out: dict[str, list[float]] = {"off": [], "on": []}
    async with asyncspark.Context("local[2]", conf=conf_for("on", log_dir)) as sc:
        bus = sc.listener_bus
        listeners = [q.listener for q in bus._queues]
        rdd = sc.parallelize([1], 1)
        for _ in range(20):  # warm up
            await rdd.count()
        clock = time.perf_counter
        for b in range(max(2, 2 * (jobs // block))):
            mode = ("off", "on", "on", "off")[b % 4]
            attached = bool(bus._queues)
            if mode == "off" and attached:
                bus.flush()
                for listener in listeners:
                    bus.remove(listener)
            elif mode == "on" and not attached:
                for listener in listeners:
                    bus.add(listener)
            for _ in range(3):  # the first jobs after a switch are not counted
                await rdd.count()
            for _ in range(block):
                t0 = clock()
                await rdd.count()
                out[mode].append(clock() - t0)
        if not bus._queues:
            for listener in listeners:
                bus.add(listener)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=300, help="trivial jobs per round")
    p.add_argument("--runs", "--rounds", dest="rounds", type=int, default=3,
                   help="rounds, each running off and on (alternating which first)")
    p.add_argument("--mb", type=float, default=16, help="word-count input size (MiB)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 30 jobs, 1 round, 0.5 MiB (figures not meaningful)")
    p.add_argument("--data", default=str(DATA_DIR), help="where the input is cached")
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.rounds, args.mb = 30, 1, 0.5
    data = ensure_input(args.mb, Path(args.data))
    log_dir = tempfile.mkdtemp(prefix="asyncspark-obs-bench-")
    lat: dict[str, list[float]] = {"off": [], "on": []}
    wc: dict[str, list[float]] = {"off": [], "on": []}
    same: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for r in range(args.rounds):
            order = ("off", "on") if r % 2 == 0 else ("on", "off")
            for mode in order:
                lat[mode] += asyncio.run(trivial(mode, args.jobs, log_dir))
                wc[mode] += asyncio.run(wordcount(mode, data["path"], log_dir,
                                                  1 if args.quick else 3))
            for mode, v in asyncio.run(toggled(args.jobs, log_dir)).items():
                same[mode] += v
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    result = {
        "trivial_p50_ms": {m: statistics.median(v) * 1e3 for m, v in lat.items()},
        "trivial_mean_ms": {m: statistics.mean(v) * 1e3 for m, v in lat.items()},
        "trivial_p99_ms": {m: statistics.quantiles(v, n=100)[98] * 1e3
                           for m, v in lat.items()},
        "one_context_p50_ms": {m: statistics.median(v) * 1e3 for m, v in same.items()},
        "wordcount_s": {m: statistics.median(v) for m, v in wc.items()},
        "jobs": args.jobs, "rounds": args.rounds, "mb": args.mb, "quick": args.quick,
        "command": " ".join(["python", "benchmarks/observability.py", *(argv or sys.argv[1:])]),
    }
    result["load_average"] = list(os.getloadavg())
    for key in ("trivial_p50_ms", "trivial_mean_ms", "trivial_p99_ms", "one_context_p50_ms",
                "wordcount_s"):
        off, on = result[key]["off"], result[key]["on"]
        result[key]["overhead_pct"] = (on / off - 1) * 100
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    sys.stderr.write("\n")
    print(f"{'':32}{'off':>10}{'on':>10}{'overhead':>10}")
    for key, label, fmt in (
            ("trivial_p50_ms", "trivial job p50 (ms)", "10.3f"),
            ("trivial_mean_ms", "trivial job mean (ms)", "10.3f"),
            ("trivial_p99_ms", "trivial job p99 (ms)", "10.3f"),
            ("one_context_p50_ms", "  p50, one context (ms)", "10.3f"),
            ("wordcount_s", f"word count {args.mb:g} MiB (s)", "10.3f")):
        r = result[key]
        print(f"{label:32}{r['off']:{fmt}}{r['on']:{fmt}}{r['overhead_pct']:9.1f}%")
    load = ", ".join(f"{x:.2f}" for x in result["load_average"])
    print(f"(medians; {args.rounds} rounds alternating off/on, each {args.jobs} trivial "
          "jobs and 3 word counts in one context, and one context toggling its listeners; "
          f"targets: p50 <= 5%, word count <= 3%; load average at the end: {load})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
