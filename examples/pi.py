"""Estimate pi by Monte Carlo sampling, as Spark's ``examples/src/main/python/pi.py``.

Usage::

    python examples/pi.py [PARTITIONS]      # default 4 partitions of 100,000 samples

Each task throws darts at the unit square and counts the hits inside the quarter circle;
the driver sums the hits.
"""

from __future__ import annotations

import argparse
import random
import time

import asyncspark

SAMPLES_PER_PARTITION = 100_000


def hits_in_partition(index: int, iterator):
    """Count the samples of this partition that land inside the unit circle."""
    rng = random.Random(index)  # one independent, reproducible stream per partition
    hits = 0
    for _ in iterator:
        x = rng.random() * 2 - 1
        y = rng.random() * 2 - 1
        if x * x + y * y <= 1:
            hits += 1
    yield hits


async def main(partitions: int) -> float:
    n = SAMPLES_PER_PARTITION * partitions
    async with asyncspark.Context("local[2]", app_name="PythonPi") as sc:
        count = await (sc.range(n, numSlices=partitions)
                       .mapPartitionsWithIndex(hits_in_partition)
                       .sum())
    return 4.0 * count / n


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].split()).replace("``", ""))
    parser.add_argument("partitions", nargs="?", type=int, default=4,
                        help="number of partitions (tasks); default 4")
    args = parser.parse_args()
    if args.partitions < 1:
        parser.error("the number of partitions must be at least 1")
    start = time.perf_counter()
    pi = asyncspark.run(main(args.partitions))
    elapsed = time.perf_counter() - start
    print(f"Pi is roughly {pi:.6f} "
          f"({SAMPLES_PER_PARTITION * args.partitions:,} samples in "
          f"{args.partitions} partition(s), {elapsed:.2f} s)")


if __name__ == "__main__":
    cli()
