"""Caching benchmark: k-means over 1 M points, the first iteration (points generated and
parsed by the tasks, then cached) against later iterations on the cached points, on
asyncspark ``local[2]``, PySpark ``local[2]`` and Dask's bag (2 single-threaded
workers), measured in the same invocation.

Usage::

    python benchmarks/cache.py                 # 1,000,000 points, 3 runs
    python benchmarks/cache.py --runs 5 --level MEMORY_ONLY_SER
    python benchmarks/cache.py --quick         # smoke run: small, one run
    python benchmarks/cache.py --vs none       # asyncspark only

Each run of each system (systems in rotating order, a fresh context or cluster each run)
persists a fresh collection of points (asyncspark and PySpark: ``persist(level)``; Dask:
``Bag.persist()``, in the workers' memory), times iteration 1 (computes and caches every
partition) and iterations 2..I (read the cache), and reports their ratio within that
run; the table gives medians over ``--runs`` and how many times faster asyncspark is than
each peer on each figure. The iterations are the same code on every system
(``examples/kmeans.py``: ``closest_sums`` per partition, the sums folded in the driver)
and the final centers must agree. The target is asyncspark's ratio of at least 3; this
case has no shuffle, so no floor is printed. Peers run when installed
(``bash benchmarks/peers/setup.sh``, then run this with ``benchmarks/.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import peers
from common import pyspark_context

import asyncspark
from asyncspark import StorageLevel

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
from kmeans import (  # noqa: E402
    closest_sums,
    generate_lines,
    initial_centers,
    kmeans_step,
    parse_point,
)

TARGET_RATIO = 3.0
LABELS = {"asyncspark": "asyncspark", "pyspark": "PySpark", "dask-bag": "Dask bag"}


def _fold_centers(sums: list, centers: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The new centers from the per-partition sums (as ``kmeans.kmeans_step``)."""
    k = len(centers)
    sx, sy, cnt = [0.0] * k, [0.0] * k, [0] * k
    for px, py, pc in sums:
        for j in range(k):
            sx[j] += px[j]
            sy[j] += py[j]
            cnt[j] += pc[j]
    return [(sx[j] / cnt[j], sy[j] / cnt[j]) if cnt[j] else centers[j] for j in range(k)]


def _iterate(step: Any, centers: list, iterations: int) -> tuple[list[float], list]:
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        centers = step(centers)
        times.append(time.perf_counter() - start)
    return times, centers


def _summary(times: list[float], centers: list, **extra: Any) -> dict[str, Any]:
    first, cached = times[0], statistics.median(times[1:])
    return {"first_s": first, "cached_s": cached, "ratio": first / cached,
            "iterations": times, "centers": centers, **extra}


async def one_run(sc: asyncspark.Context, n: int, partitions: int, k: int, iterations: int,
                  level: StorageLevel) -> dict:
    data = points_rdd(sc, n, partitions).persist(level)
    centers = initial_centers(await points_rdd(sc, k * 7, 1).collect(), k)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        centers = await kmeans_step(data, centers)
        times.append(time.perf_counter() - start)
    cached_blocks = len(sc._block_master.rdd_blocks(data.id()))
    data.unpersist()
    await sc._wait_unpersisted()
    return _summary(times, centers, cached_blocks=cached_blocks)


def points_rdd(sc: Any, n: int, partitions: int) -> Any:
    """``kmeans.points`` on asyncspark or PySpark (the same API)."""
    return (sc.range(n, numSlices=partitions).mapPartitionsWithIndex(generate_lines)
            .map(parse_point))


async def _asyncspark(args: argparse.Namespace, level: StorageLevel) -> dict:
    conf = {"asyncspark.storage.memoryBudget": args.memory}
    async with asyncspark.Context(f"local[{args.executors}]", app_name="bench-cache",
                                  conf=conf) as sc:
        return await one_run(sc, args.points, args.partitions, args.k, args.iterations, level)


def run_pyspark(args: argparse.Namespace) -> dict:
    from pyspark import StorageLevel as SparkLevel

    sc = pyspark_context("bench-cache", [str(EXAMPLES / "kmeans.py")])
    try:
        level = getattr(SparkLevel, args.level, None)
        if level is None:  # e.g. OFF_HEAP_SER: PySpark has no such level
            level = SparkLevel.MEMORY_ONLY
        data = points_rdd(sc, args.points, args.partitions).persist(level)
        centers = initial_centers(points_rdd(sc, args.k * 7, 1).collect(), args.k)
        times, centers = _iterate(
            lambda c: _fold_centers(data.mapPartitions(closest_sums(c)).collect(), c),
            centers, args.iterations)
        data.unpersist()
    finally:
        sc.stop()
    return _summary(times, centers)


def _dask_points(index: list[int], n: int, partitions: int) -> list[tuple[float, float]]:
    """The points of partition ``index[0]``: the same slice of ``range(n)`` as
    ``parallelize`` gives it, generated and parsed."""
    (i,) = index
    lo, hi = i * n // partitions, (i + 1) * n // partitions
    return [parse_point(line) for line in generate_lines(i, range(lo, hi))]


def _sums_list(part: Any, sums: Any) -> list:
    return list(sums(part))  # a generator cannot travel back from a Dask worker


def run_dask_bag(args: argparse.Namespace) -> dict:
    import dask.bag as db

    with peers.dask_client(args.executors) as client:
        bag = db.from_sequence(range(args.partitions), npartitions=args.partitions)
        points = bag.map_partitions(_dask_points, args.points, args.partitions)
        centers = initial_centers(_dask_points([0], args.k * 7, 1), args.k)
        data = None

        def step(c: list) -> list:
            nonlocal data
            if data is None:  # iteration 1 computes (and keeps) the points
                data = client.persist(points)
            return _fold_centers(data.map_partitions(_sums_list, closest_sums(c)).compute(), c)

        times, centers = _iterate(step, centers, args.iterations)
        del data
    return _summary(times, centers)


def _close(a: list, b: list) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
               for p, q in zip(sorted(a), sorted(b), strict=True)
               for x, y in zip(p, q, strict=True))


def main(args: argparse.Namespace, chosen: list[str]) -> dict:
    level = getattr(StorageLevel, args.level)
    systems = ["asyncspark", *(["pyspark"] if "pyspark" in chosen else []),
               *(["dask-bag"] if "dask" in chosen else [])]
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        run = {}
        for system in peers.rotate(systems, i):
            if system == "asyncspark":
                run[system] = asyncspark.run(_asyncspark(args, level))
            elif system == "pyspark":
                run[system] = run_pyspark(args)
            else:
                run[system] = run_dask_bag(args)
        for system in systems:
            if not _close(run[system]["centers"], run["asyncspark"]["centers"]):
                raise AssertionError(f"{system}'s centers {run[system]['centers']} differ "
                                     f"from asyncspark's {run['asyncspark']['centers']}")
        runs.append(run)
        print(f"run {i + 1}/{args.runs}: " + ", ".join(
            f"{LABELS[s]} first {run[s]['first_s']:.3f} s, cached {run[s]['cached_s']:.3f} s"
            for s in peers.rotate(systems, i)), file=sys.stderr, flush=True)
    median = {s: {key: statistics.median(r[s][key] for r in runs)
                  for key in ("first_s", "cached_s", "ratio")} for s in systems}
    a = median["asyncspark"]
    speedup = {s: {"first": median[s]["first_s"] / a["first_s"],
                   "cached": median[s]["cached_s"] / a["cached_s"]}
               for s in systems if s != "asyncspark"}
    return {
        "points": args.points, "partitions": args.partitions, "k": args.k,
        "iterations": args.iterations, "level": args.level, "executors": args.executors,
        "systems": systems, "peers_skipped": {}, "peer_versions": peers.versions(chosen),
        "runs": [{s: {key: v for key, v in r[s].items() if key != "centers"} | {
            "centers": r[s]["centers"]} for s in systems} for r in runs],
        "median": median, "speedup": speedup,
        # asyncspark's figures under the names they always had
        "median_first_s": a["first_s"], "median_cached_s": a["cached_s"],
        "median_ratio": a["ratio"],
        "target": {"target": f"asyncspark first / cached >= {TARGET_RATIO:g}",
                   "value": a["ratio"], "pass": a["ratio"] >= TARGET_RATIO},
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=5, help="per run, at least 2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--level", default="MEMORY_ONLY",
                        help="a StorageLevel name (MEMORY_ONLY, MEMORY_ONLY_SER, DISK_ONLY, "
                             "OFF_HEAP, ...; PySpark gets the same level where it has it)")
    parser.add_argument("--memory", default="1g", help="asyncspark.storage.memoryBudget")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 points, 4 partitions, 3 iterations, 1 run")
    peers.add_vs_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.points, args.partitions, args.iterations, args.runs = 20_000, 4, 3, 1
    if args.iterations < 2 or args.runs < 1 or args.points < args.k * 7:
        parser.error("need --iterations >= 2, --runs >= 1 and enough points")
    if not isinstance(getattr(StorageLevel, args.level, None), StorageLevel):
        parser.error(f"unknown storage level {args.level!r}")
    chosen, skipped = peers.select(args.vs)
    result = main(args, chosen)
    result["peers_skipped"] = skipped
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"k-means, {args.points:,} points in {args.partitions} partitions, k={args.k}, "
          f"local[{args.executors}], {args.level}, {args.iterations} iterations x "
          f"{args.runs} run(s), systems in rotating order; "
          + "; ".join(f"{k} {v}" for k, v in result["peer_versions"].items()))
    for peer, why in skipped.items():
        if why != "not asked":
            print(f"{peer}: skipped, {why}")
    print(f"{'':12}{'first (uncached) s':>20}{'cached s':>10}{'ratio':>8}"
          f"{'asyncspark x faster':>22}")
    for s in result["systems"]:
        m, f = result["median"][s], result["speedup"].get(s)
        cell = f"{f['first']:.2f}x / {f['cached']:.2f}x" if f else ""
        print(f"{LABELS[s]:12}{m['first_s']:>20.3f}{m['cached_s']:>10.3f}"
              f"{m['ratio']:>7.1f}x{cell:>22}")
    t = result["target"]
    print(f"target: {t['target']}: measured {t['value']:.1f}x   "
          f"{'PASS' if t['pass'] else 'FAIL'}  (medians; x faster = first / cached)")


if __name__ == "__main__":
    cli()
