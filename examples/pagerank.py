"""PageRank over a link list, written as a PySpark program: only the import differs.

Usage::

    python examples/pagerank.py [PATH] [--iterations N]

``PATH`` is a text file of ``page neighbour`` lines, one link per line (default:
``examples/data/links.txt``, next to this script). Each iteration every page shares its
rank among its outgoing links; ranks are ``0.15 + 0.85 * received``. Prints each page's
rank after the iterations, highest first. With PySpark, change the import line to
``from pyspark import SparkContext`` and nothing else.
"""

from __future__ import annotations

import argparse
from operator import add
from pathlib import Path

from asyncspark import SparkContext

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "links.txt"


def parse_link(line: str) -> tuple[str, str]:
    page, neighbour = line.split()
    return page, neighbour


def contributions(pair):
    """``(neighbour, share)`` for each outgoing link of a page: its rank split evenly."""
    _page, (neighbours, rank) = pair
    neighbours = list(neighbours)
    for n in neighbours:
        yield n, rank / len(neighbours)


def pagerank(sc: SparkContext, path: str, iterations: int) -> list[tuple[str, float]]:
    links = sc.textFile(path).filter(str.strip).map(parse_link).distinct().groupByKey()
    links.cache()
    ranks = links.map(lambda kv: (kv[0], 1.0))
    for _ in range(iterations):
        received = links.join(ranks).flatMap(contributions)
        ranks = received.reduceByKey(add).mapValues(lambda r: 0.15 + 0.85 * r)
    return sorted(ranks.collect(), key=lambda kv: (-kv[1], kv[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH),
                        help="file of 'page neighbour' lines (default: data/links.txt)")
    parser.add_argument("--iterations", type=int, default=10,
                        help="number of iterations (default 10)")
    args = parser.parse_args()
    if not Path(args.path).is_file():
        parser.error(f"no such file: {args.path}")
    with SparkContext(appName="PythonPageRank") as sc:
        for page, rank in pagerank(sc, args.path, args.iterations):
            print(f"{page} has rank: {rank:.6f}.")


if __name__ == "__main__":
    main()
