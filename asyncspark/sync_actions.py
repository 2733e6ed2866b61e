"""The blocking facade's actions (``asyncspark.sync.RDD``, a mixin of ``sync_rdd.RDD``):
each runs the async ``asyncspark.RDD`` action on the context's loop and blocks the calling
thread until its job is done; typed on ``RDD[T]`` (pair actions on ``RDD[tuple[K, V]]``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .approx import BoundedFloat
    from .rdd import RDD as _AsyncRDD
    from .statcounter import StatCounter
    from .sync import SparkContext

__all__ = ["RDDActions"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RDDActions(Generic[T]):
    """The actions of the facade's ``RDD[T]``."""

    __slots__ = ()
    _rdd: _AsyncRDD[T]
    _sc: SparkContext

    def _call(self, coro: Any) -> Any:
        return self._sc._call(coro)

    # -- actions (block until the job is done) --------------------------------------------

    def collect(self) -> list[T]:
        """
        >>> sc.parallelize(range(3)).collect()
        [0, 1, 2]
        """
        return self._call(self._rdd.collect())

    def count(self) -> int:
        """
        >>> sc.parallelize(range(5)).count()
        5
        """
        return self._call(self._rdd.count())

    def take(self, num: int) -> list[T]:
        """
        >>> sc.parallelize(range(100), 10).take(3)
        [0, 1, 2]
        """
        return self._call(self._rdd.take(num))

    def first(self) -> T:
        """
        >>> sc.parallelize([7, 8]).first()
        7
        """
        return self._call(self._rdd.first())

    def isEmpty(self) -> bool:
        """
        >>> sc.emptyRDD().isEmpty(), sc.parallelize([1]).isEmpty()
        (True, False)
        """
        return self._call(self._rdd.isEmpty())

    def reduce(self, f: Callable[[T, T], T]) -> T:
        """
        >>> sc.parallelize(range(5)).reduce(lambda a, b: a + b)
        10
        """
        return self._call(self._rdd.reduce(f))

    def treeReduce(self, f: Callable[[T, T], T], depth: int = 2) -> T:
        """
        >>> sc.parallelize(range(100), 10).treeReduce(lambda a, b: a + b)
        4950
        """
        return self._call(self._rdd.treeReduce(f, depth))

    def fold(self, zeroValue: T, op: Callable[[T, T], T]) -> T:
        """
        >>> sc.parallelize(range(5), 2).fold(0, lambda a, b: a + b)
        10
        """
        return self._call(self._rdd.fold(zeroValue, op))

    def aggregate(self, zeroValue: U, seqOp: Callable[[U, T], U],
                  combOp: Callable[[U, U], U]) -> U:
        """
        >>> sc.parallelize(range(5), 2).aggregate(
        ...     (0, 0), lambda acc, x: (acc[0] + x, acc[1] + 1),
        ...     lambda a, b: (a[0] + b[0], a[1] + b[1]))
        (10, 5)
        """
        return self._call(self._rdd.aggregate(zeroValue, seqOp, combOp))

    def treeAggregate(self, zeroValue: U, seqOp: Callable[[U, T], U],
                      combOp: Callable[[U, U], U], depth: int = 2) -> U:
        """``aggregate`` with the partitions' results merged in a tree of ``depth`` levels.

        >>> sc.parallelize(range(10), 4).treeAggregate(0, lambda acc, x: acc + x, int.__add__)
        45
        """
        return self._call(self._rdd.treeAggregate(zeroValue, seqOp, combOp, depth))

    def sum(self) -> T:
        """
        >>> sc.parallelize([1, 2, 3]).sum(), sc.parallelize([0.5, 1.5]).sum()
        (6, 2.0)
        """
        return self._call(self._rdd.sum())

    def max(self, key: Callable[[T], Any] | None = None) -> T:
        """
        >>> sc.parallelize([3, 1, 2]).max(), sc.parallelize(['a', 'bb']).max(key=len)
        (3, 'bb')
        """
        return self._call(self._rdd.max(key))

    def min(self, key: Callable[[T], Any] | None = None) -> T:
        """
        >>> sc.parallelize([3, 1, 2]).min()
        1
        """
        return self._call(self._rdd.min(key))

    def stats(self) -> StatCounter:
        """
        >>> sc.parallelize([1, 2, 3]).stats()
        (count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3, min: 1)
        """
        return self._call(self._rdd.stats())

    def mean(self) -> float:
        """
        >>> sc.parallelize([1, 2, 3, 4]).mean()
        2.5
        """
        return self._call(self._rdd.mean())

    def variance(self) -> float:
        """The population variance of the elements.

        >>> sc.parallelize([1, 2, 3, 4]).variance()
        1.25
        """
        return self._call(self._rdd.variance())

    def stdev(self) -> float:
        """The population standard deviation of the elements.

        >>> sc.parallelize([2, 4, 4, 4, 5, 5, 7, 9]).stdev()
        2.0
        """
        return self._call(self._rdd.stdev())

    def sampleVariance(self) -> float:
        """The sample variance (divided by n - 1).

        >>> sc.parallelize([1, 2, 3, 4]).sampleVariance()
        1.6666666666666667
        """
        return self._call(self._rdd.sampleVariance())

    def sampleStdev(self) -> float:
        """The sample standard deviation (divided by n - 1).

        >>> sc.parallelize([1, 3]).sampleStdev()
        1.4142135623730951
        """
        return self._call(self._rdd.sampleStdev())

    def histogram(self, buckets: int | list[Any] | tuple[Any, ...]
                  ) -> tuple[Sequence[Any], list[int]]:
        """
        >>> sc.parallelize(range(51)).histogram(2)
        ([0, 25, 50], [25, 26])
        >>> sc.parallelize(range(10)).histogram([0, 5, 9])
        ([0, 5, 9], [5, 5])
        """
        return self._call(self._rdd.histogram(buckets))

    def top(self, num: int, key: Callable[[T], Any] | None = None) -> list[T]:
        """
        >>> sc.parallelize([5, 1, 4]).top(2)
        [5, 4]
        """
        return self._call(self._rdd.top(num, key))

    def takeOrdered(self, num: int, key: Callable[[T], Any] | None = None) -> list[T]:
        """
        >>> sc.parallelize([5, 1, 4]).takeOrdered(2)
        [1, 4]
        """
        return self._call(self._rdd.takeOrdered(num, key))

    def takeSample(self, withReplacement: bool, num: int,
                   seed: int | None = None) -> list[T]:
        """``num`` elements drawn at random (a fixed ``seed`` repeats the draw).

        >>> rdd = sc.parallelize(range(100), 4)
        >>> s = rdd.takeSample(False, 5, seed=3); len(set(s)), s == rdd.takeSample(False, 5, seed=3)
        (5, True)
        """
        return self._call(self._rdd.takeSample(withReplacement, num, seed))

    def countByValue(self) -> defaultdict[T, int]:
        """
        >>> sorted(sc.parallelize(['a', 'b', 'a']).countByValue().items())
        [('a', 2), ('b', 1)]
        """
        return self._call(self._rdd.countByValue())

    def countByKey(self: RDDActions[tuple[K, V]]) -> defaultdict[K, int]:
        """
        >>> sorted(sc.parallelize([('a', 1), ('a', 2)]).countByKey().items())
        [('a', 2)]
        """
        return self._call(self._rdd.countByKey())

    def collectAsMap(self: RDDActions[tuple[K, V]]) -> dict[K, V]:
        """
        >>> sc.parallelize([('a', 1), ('b', 2)]).collectAsMap()
        {'a': 1, 'b': 2}
        """
        return self._call(self._rdd.collectAsMap())

    def reduceByKeyLocally(self: RDDActions[tuple[K, V]], func: Callable[[V, V], V]) -> dict[K, V]:
        """Merge each key's values with ``func``; the result as a dict on the driver.

        >>> sc.parallelize([("a", 1), ("b", 2), ("a", 3)]).reduceByKeyLocally(lambda x, y: x + y)
        {'a': 4, 'b': 2}
        """
        return self._call(self._rdd.reduceByKeyLocally(func))

    def lookup(self: RDDActions[tuple[K, V]], key: K) -> list[V]:
        """
        >>> sc.parallelize([('a', 1), ('b', 2), ('a', 3)]).lookup('a')
        [1, 3]
        """
        return self._call(self._rdd.lookup(key))

    def countApproxDistinct(self, relativeSD: float = 0.05) -> int:
        """
        >>> 900 < sc.parallelize(range(1000)).map(str).countApproxDistinct() < 1100
        True
        """
        return self._call(self._rdd.countApproxDistinct(relativeSD))

    def countApprox(self, timeout: int, confidence: float = 0.95) -> int:
        """The count, or an estimate if ``timeout`` (ms) passes first.

        >>> sc.parallelize(range(100), 4).countApprox(60_000)
        100
        """
        return self._call(self._rdd.countApprox(timeout, confidence))

    def sumApprox(self, timeout: int, confidence: float = 0.95) -> BoundedFloat:
        """The sum within ``timeout`` (ms), with bounds at ``confidence`` (exact if all finished).

        >>> r = sc.parallelize(range(10), 2).sumApprox(60_000); (r.low, float(r), r.high)
        (45.0, 45.0, 45.0)
        """
        return self._call(self._rdd.sumApprox(timeout, confidence))

    def meanApprox(self, timeout: int, confidence: float = 0.95) -> BoundedFloat:
        """The mean within ``timeout`` (ms), with bounds at ``confidence``.

        >>> float(sc.parallelize([1, 2, 3, 6], 2).meanApprox(60_000))
        3.0
        """
        return self._call(self._rdd.meanApprox(timeout, confidence))

    def foreach(self, f: Callable[[T], object]) -> None:
        """
        >>> acc = sc.accumulator(0)
        >>> sc.parallelize([1, 2, 3]).foreach(lambda x: acc.add(x))
        >>> acc.value
        6
        """
        self._call(self._rdd.foreach(f))

    def foreachPartition(self, f: Callable[[Iterator[T]], object]) -> None:
        """Call ``f`` on each partition's iterator, on the executors.

        >>> acc = sc.accumulator(0)
        >>> sc.parallelize(range(6), 3).foreachPartition(lambda it: acc.add(max(it)))
        >>> acc.value
        9
        """
        self._call(self._rdd.foreachPartition(f))

    def saveAsTextFile(self, path: str, compressionCodecClass: str | None = None) -> None:
        """
        >>> import tempfile, os, shutil
        >>> d = tempfile.mkdtemp()
        >>> sc.parallelize(['a', 'b'], 1).saveAsTextFile(os.path.join(d, 'out'))
        >>> sorted(os.listdir(os.path.join(d, 'out')))
        ['_SUCCESS', 'part-00000']
        >>> shutil.rmtree(d)
        """
        self._call(self._rdd.saveAsTextFile(path, compressionCodecClass))

    def saveAsPickleFile(self, path: str, batchSize: int = 10) -> None:
        """Write the elements as pickled batches (``SparkContext.pickleFile`` reads them).

        >>> import os, shutil, tempfile
        >>> d = tempfile.mkdtemp(); sc.parallelize([1, 2], 1).saveAsPickleFile(os.path.join(d, "o"))
        >>> sc.pickleFile(os.path.join(d, "o")).collect()
        [1, 2]
        >>> shutil.rmtree(d)
        """
        self._call(self._rdd.saveAsPickleFile(path, batchSize))

    def toLocalIterator(self, prefetchPartitions: bool = False) -> Iterator[T]:
        """Iterate the elements, fetching one partition at a time.

        >>> list(sc.parallelize(range(4), 2).toLocalIterator())
        [0, 1, 2, 3]
        """
        rdd = self._rdd
        for i in range(rdd.getNumPartitions()):
            yield from self._call(rdd._run(list, [i]))[0]
