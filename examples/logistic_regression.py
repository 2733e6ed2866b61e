"""Logistic regression by batch gradient descent, written as a PySpark program: only the
import differs.

Usage::

    python examples/logistic_regression.py [--points N] [--dimensions D]
        [--iterations I] [--seed S]

Generates ``N`` labelled points (label +1 or -1) in ``D`` dimensions, two Gaussian
clouds on either side of the origin, deterministic for a seed; then fits ``w`` by
gradient descent on the logistic loss, one ``map``/``reduce`` job per iteration. Prints
the weights and the training accuracy. With PySpark, change the import line to
``from pyspark import SparkContext`` and nothing else.
"""

from __future__ import annotations

import argparse
import math
import random

from asyncspark import SparkContext


def generate(n: int, d: int, seed: int) -> list[tuple[float, list[float]]]:
    """``n`` points ``(label, features)``: label ±1, features around ±0.7 per axis."""
    rng = random.Random(seed)
    points = []
    for i in range(n):
        label = 1.0 if i % 2 else -1.0
        points.append((label, [rng.gauss(0.7 * label, 1.0) for _ in range(d)]))
    return points


def gradient(w: list[float], point: tuple[float, list[float]]) -> list[float]:
    """The logistic loss gradient of one point at ``w``."""
    y, x = point
    margin = y * sum(wi * xi for wi, xi in zip(w, x, strict=True))
    scale = (1.0 / (1.0 + math.exp(-margin)) - 1.0) * y
    return [scale * xi for xi in x]


def add_vectors(a: list[float], b: list[float]) -> list[float]:
    return [ai + bi for ai, bi in zip(a, b, strict=True)]


def fit(sc: SparkContext, points: list, d: int, iterations: int,
        step: float = 1.0) -> list[float]:
    data = sc.parallelize(points, 4).cache()
    n = data.count()
    w = [0.0] * d
    for _ in range(iterations):
        current = w
        g = data.map(lambda p, current=current: gradient(current, p)).reduce(add_vectors)
        w = [wi - step * gi / n for wi, gi in zip(w, g, strict=True)]
    return w


def accuracy(points: list, w: list[float]) -> float:
    right = sum(1 for y, x in points
                if (sum(wi * xi for wi, xi in zip(w, x, strict=True)) > 0) == (y > 0))
    return right / len(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--points", type=int, default=2000, help="points (default 2000)")
    parser.add_argument("--dimensions", type=int, default=5,
                        help="features per point (default 5)")
    parser.add_argument("--iterations", type=int, default=20,
                        help="gradient steps (default 20)")
    parser.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    args = parser.parse_args()
    if args.points < 1 or args.dimensions < 1 or args.iterations < 0:
        parser.error("points and dimensions must be positive, iterations nonnegative")
    points = generate(args.points, args.dimensions, args.seed)
    with SparkContext(appName="PythonLR") as sc:
        w = fit(sc, points, args.dimensions, args.iterations)
    print("Final w: " + " ".join(f"{wi:.6f}" for wi in w))
    print(f"Training accuracy: {accuracy(points, w):.4f}")


if __name__ == "__main__":
    main()
