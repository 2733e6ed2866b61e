"""Count the words of a text file and print the ten most frequent, one per line.

Usage::

    python examples/wordcount.py [PATH] [--partitions N] [--top K]

Without ``PATH`` it counts ``examples/data/sample.txt`` (found next to this script, so it
runs from any directory). Words are lower-cased runs of letters and digits, with inner
apostrophes kept ("don't" is one word); see ``tokenize``.
"""

from __future__ import annotations

import argparse
import heapq
import operator
import re
from collections import Counter
from pathlib import Path

import asyncspark

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "sample.txt"

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(line: str) -> list[str]:
    """The words of ``line``, lower-cased."""
    return _WORD.findall(line.lower())


def by_count(kv: tuple[str, int]) -> tuple[int, str]:
    """Sort key: most frequent first, ties alphabetically (deterministic output)."""
    return -kv[1], kv[0]


def count_partition(pairs):
    """Map-side combine of one partition's ``(word, 1)`` pairs into one ``Counter``."""
    counts: Counter[str] = Counter()
    for word, n in pairs:
        counts[word] += n
    yield counts


async def word_count(path: str, partitions: int, top: int) -> list[tuple[str, int]]:
    async with asyncspark.Context("local[2]", app_name="PythonWordCount") as sc:
        pairs = (sc.textFile(path, minPartitions=partitions)
                 .flatMap(tokenize)
                 .map(lambda w: (w, 1)))
        # asyncspark has no shuffle yet, so there is no reduceByKey: each task folds its
        # partition into a Counter and reduce() merges the Counters on the driver. Once
        # reduceByKey lands, this one line becomes
        #     return await pairs.reduceByKey(operator.add).takeOrdered(top, key=by_count)
        return heapq.nsmallest(
            top, (await pairs.mapPartitions(count_partition).reduce(operator.add)).items(),
            key=by_count)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH),
                        help=f"text file to count (default: {DEFAULT_PATH.name} next to "
                             "this script)")
    parser.add_argument("--partitions", type=int, default=4,
                        help="minimum number of input partitions (default 4)")
    parser.add_argument("--top", type=int, default=10,
                        help="how many words to print (default 10)")
    args = parser.parse_args()
    if not Path(args.path).is_file():
        parser.error(f"no such file: {args.path}")
    for word, count in asyncspark.run(word_count(args.path, args.partitions, args.top)):
        print(f"{word}\t{count}")


if __name__ == "__main__":
    cli()
