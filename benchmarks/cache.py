"""Caching benchmark: k-means over 1 M points, the first iteration (points generated and
parsed by the tasks, then cached) against later iterations on the cached points.

Usage::

    python benchmarks/cache.py                 # 1,000,000 points, 3 runs
    python benchmarks/cache.py --runs 5 --level MEMORY_ONLY_SER
    python benchmarks/cache.py --quick         # smoke run: small, one run

Each run persists a fresh RDD of points, times iteration 1 (computes and caches every
partition) and iterations 2..I (read the cache), and reports their ratio within that
run; the table gives medians over ``--runs``. The target is a ratio of at least 3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import asyncspark
from asyncspark import StorageLevel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from kmeans import initial_centers, kmeans_step, points


async def one_run(sc: asyncspark.Context, n: int, partitions: int, k: int, iterations: int,
                  level: StorageLevel) -> dict:
    data = points(sc, n, partitions).persist(level)
    centers = initial_centers(await points(sc, k * 7, 1).collect(), k)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        centers = await kmeans_step(data, centers)
        times.append(time.perf_counter() - start)
    cached_blocks = len(sc._block_master.rdd_blocks(data.id()))
    data.unpersist()
    await sc._wait_unpersisted()
    first, cached = times[0], statistics.median(times[1:])
    return {"first_s": first, "cached_s": cached, "ratio": first / cached,
            "cached_blocks": cached_blocks, "iterations": times}


async def main(args: argparse.Namespace) -> dict:
    level = getattr(StorageLevel, args.level)
    conf = {"asyncspark.storage.memoryBudget": args.memory}
    async with asyncspark.Context(f"local[{args.executors}]", app_name="bench-cache",
                                  conf=conf) as sc:
        runs = [await one_run(sc, args.points, args.partitions, args.k, args.iterations,
                              level) for _ in range(args.runs)]
    return {
        "points": args.points, "partitions": args.partitions, "k": args.k,
        "iterations": args.iterations, "level": args.level, "executors": args.executors,
        "runs": runs,
        "median_first_s": statistics.median(r["first_s"] for r in runs),
        "median_cached_s": statistics.median(r["cached_s"] for r in runs),
        "median_ratio": statistics.median(r["ratio"] for r in runs),
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
                             "OFF_HEAP, ...)")
    parser.add_argument("--memory", default="1g", help="asyncspark.storage.memoryBudget")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 points, 4 partitions, 3 iterations, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.points, args.partitions, args.iterations, args.runs = 20_000, 4, 3, 1
    if args.iterations < 2 or args.runs < 1 or args.points < args.k * 7:
        parser.error("need --iterations >= 2, --runs >= 1 and enough points")
    if not isinstance(getattr(StorageLevel, args.level, None), StorageLevel):
        parser.error(f"unknown storage level {args.level!r}")
    result = asyncspark.run(main(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"k-means, {args.points:,} points in {args.partitions} partitions, k={args.k}, "
          f"local[{args.executors}], {args.level}, {args.iterations} iterations x "
          f"{args.runs} run(s)")
    print(f"{'run':>4} {'first (uncached) s':>19} {'cached s (median)':>18} {'ratio':>7}")
    for i, r in enumerate(result["runs"], 1):
        print(f"{i:>4} {r['first_s']:>19.3f} {r['cached_s']:>18.3f} {r['ratio']:>6.1f}x")
    print(f"{'med':>4} {result['median_first_s']:>19.3f} {result['median_cached_s']:>18.3f} "
          f"{result['median_ratio']:>6.1f}x   (target: >= 3x)")


if __name__ == "__main__":
    cli()
