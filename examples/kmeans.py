"""Iterative k-means over cached points, after Spark's ``examples/src/main/python/kmeans.py``:
the seed example of why caching matters.

Usage::

    python examples/kmeans.py [K] [--points N] [--partitions P] [--iterations I]
                                  # default: 5 clusters, 50,000 points, 4 partitions

Tasks generate the points as text lines ("x y", as if read from a file) and parse them;
``cache()`` keeps the parsed points in the executors' memory, so every iteration after
the first reads them from there instead of generating and parsing them again. Each
iteration assigns every point to its closest center and sums the points per center in
the task (one small result per partition); the driver averages the sums into the new
centers, until they move less than ``--epsilon``.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import asyncspark

TRUE_CENTERS = [(-5.0, -5.0), (5.0, 5.0), (-5.0, 5.0), (5.0, -5.0), (0.0, 0.0)]


def generate_lines(index: int, iterator):
    """Text lines ``"x y"`` of points around ``TRUE_CENTERS`` (reproducible per partition)."""
    rng = random.Random(index)
    gauss = rng.gauss
    for i in iterator:
        cx, cy = TRUE_CENTERS[i % len(TRUE_CENTERS)]
        yield f"{cx + gauss(0.0, 1.0):.6f} {cy + gauss(0.0, 1.0):.6f}"


def parse_point(line: str) -> tuple[float, float]:
    x, y = line.split()
    return float(x), float(y)


def points(sc: asyncspark.Context, n: int, partitions: int) -> asyncspark.RDD:
    """The (uncached) points: generated and parsed by the tasks that read them."""
    return (sc.range(n, numSlices=partitions)
              .mapPartitionsWithIndex(generate_lines)
              .map(parse_point))


def closest_sums(centers: list[tuple[float, float]]):
    """A partition function: per center, ``(sum x, sum y, count)`` of its closest points."""
    def partition(iterator):
        k = len(centers)
        sx, sy, cnt = [0.0] * k, [0.0] * k, [0] * k
        indexed = list(enumerate(centers))
        for x, y in iterator:
            best, best_d = 0, math.inf
            for j, (cx, cy) in indexed:
                d = (x - cx) * (x - cx) + (y - cy) * (y - cy)
                if d < best_d:
                    best, best_d = j, d
            sx[best] += x
            sy[best] += y
            cnt[best] += 1
        yield sx, sy, cnt
    return partition


async def kmeans_step(data: asyncspark.RDD, centers: list[tuple[float, float]]
                      ) -> list[tuple[float, float]]:
    """One iteration: the new centers (a center with no points stays where it was)."""
    k = len(centers)
    sx, sy, cnt = [0.0] * k, [0.0] * k, [0] * k
    for px, py, pc in await data.mapPartitions(closest_sums(centers)).collect():
        for j in range(k):
            sx[j] += px[j]
            sy[j] += py[j]
            cnt[j] += pc[j]
    return [(sx[j] / cnt[j], sy[j] / cnt[j]) if cnt[j] else centers[j] for j in range(k)]


def initial_centers(sample: list[tuple[float, float]], k: int) -> list[tuple[float, float]]:
    """``k`` of the first points, 7 apart (generated points cycle through the true
    centers, so neighbours would come from the same cluster)."""
    return sample[::7][:k]


def moved(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return sum((ax - bx) ** 2 + (ay - by) ** 2 for (ax, ay), (bx, by) in zip(a, b, strict=True))


async def main(k: int, n: int, partitions: int, iterations: int, epsilon: float) -> None:
    async with asyncspark.Context("local[2]", app_name="PythonKMeans") as sc:
        data = points(sc, n, partitions).cache()
        centers = initial_centers(await data.take(k * 7), k)
        for i in range(iterations):
            start = time.perf_counter()
            new = await kmeans_step(data, centers)
            shift = moved(centers, new)
            centers = new
            print(f"iteration {i + 1}: {time.perf_counter() - start:.3f} s, "
                  f"centers moved {shift:.6f}")
            if shift < epsilon:
                break
        data.unpersist()
    print("Final centers: " + ", ".join(f"({x:.3f}, {y:.3f})" for x, y in sorted(centers)))


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].split()).replace("``", ""))
    parser.add_argument("k", nargs="?", type=int, default=5, help="number of clusters (5)")
    parser.add_argument("--points", type=int, default=50_000, help="points (50000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions (4)")
    parser.add_argument("--iterations", type=int, default=20, help="at most (20)")
    parser.add_argument("--epsilon", type=float, default=1e-6,
                        help="stop when the centers move less than this (squared)")
    args = parser.parse_args()
    if args.k < 1 or args.points < args.k * 50 or args.partitions < 1:
        parser.error("need k >= 1, at least 50 points per cluster and 1 partition")
    asyncspark.run(main(args.k, args.points, args.partitions, args.iterations, args.epsilon))


if __name__ == "__main__":
    cli()
