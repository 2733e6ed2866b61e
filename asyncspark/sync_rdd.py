"""The blocking facade's ``RDD`` (``asyncspark.sync.RDD``): PySpark's ``pyspark.RDD``
with real, typed methods — ``RDD[T]``, ``map`` returns ``RDD[U]``, ``collect`` returns
``list[T]``, pair methods are typed on ``RDD[tuple[K, V]]`` — each forwarding to the
async ``asyncspark.RDD``; actions block the calling thread until their job is done.
There is no attribute forwarding: a misspelt method is an ``AttributeError`` at run
time and an error for a type checker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .partitioner import portable_hash
from .rdd import RDD as _AsyncRDD
from .storage.level import StorageLevel

if TYPE_CHECKING:
    from .approx import BoundedFloat
    from .statcounter import StatCounter
    from .sync import SparkContext

__all__ = ["RDD"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
W = TypeVar("W")


def _identity(x: Any) -> Any:
    return x


class RDD(Generic[T]):
    """Blocking counterpart of ``asyncspark.RDD``: transformations as usual, actions
    block (see the module docstring)."""

    __slots__ = ("_rdd", "_sc")

    def __init__(self, rdd: _AsyncRDD, sc: SparkContext) -> None:
        self._rdd = rdd
        self._sc = sc

    def _new(self, rdd: _AsyncRDD) -> RDD[Any]:
        return RDD(rdd, self._sc)

    def _call(self, coro: Any) -> Any:
        return self._sc._call(coro)

    # -- identity and state --------------------------------------------------------------

    @property
    def context(self) -> SparkContext:
        """The ``SparkContext`` this RDD was created on."""
        return self._sc

    @property
    def ctx(self) -> SparkContext:
        return self._sc

    @property
    def partitioner(self) -> Any:
        return self._rdd.partitioner

    @property
    def is_cached(self) -> bool:
        return self._rdd.is_cached

    @property
    def is_checkpointed(self) -> bool:
        return self._rdd.is_checkpointed

    def id(self) -> int:
        return self._rdd.id()

    def name(self) -> str | None:
        return self._rdd.name()

    def setName(self, name: str) -> RDD[T]:
        self._rdd.setName(name)
        return self

    def getNumPartitions(self) -> int:
        return self._rdd.getNumPartitions()

    def toDebugString(self) -> bytes:
        return self._rdd.toDebugString()

    def __repr__(self) -> str:
        return repr(self._rdd)

    # -- persistence and checkpoints -----------------------------------------------------

    def cache(self) -> RDD[T]:
        self._rdd.cache()
        return self

    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD[T]:
        self._rdd.persist(storageLevel)
        return self

    def unpersist(self, blocking: bool = False) -> RDD[T]:
        self._rdd.unpersist(blocking)
        return self

    def getStorageLevel(self) -> StorageLevel:
        return self._rdd.getStorageLevel()

    def checkpoint(self) -> None:
        self._rdd.checkpoint()

    def localCheckpoint(self) -> None:
        self._rdd.localCheckpoint()

    def isCheckpointed(self) -> bool:
        return self._rdd.isCheckpointed()

    def isLocallyCheckpointed(self) -> bool:
        return self._rdd.isLocallyCheckpointed()

    def getCheckpointFile(self) -> str | None:
        return self._rdd.getCheckpointFile()

    # -- narrow transformations ----------------------------------------------------------

    def map(self, f: Callable[[T], U], preservesPartitioning: bool = False) -> RDD[U]:
        return self._new(self._rdd.map(f, preservesPartitioning))

    def flatMap(self, f: Callable[[T], Iterable[U]],
                preservesPartitioning: bool = False) -> RDD[U]:
        return self._new(self._rdd.flatMap(f, preservesPartitioning))

    def filter(self, f: Callable[[T], object]) -> RDD[T]:
        return self._new(self._rdd.filter(f))

    def mapPartitions(self, f: Callable[[Iterator[T]], Iterable[U]],
                      preservesPartitioning: bool = False) -> RDD[U]:
        return self._new(self._rdd.mapPartitions(f, preservesPartitioning))

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[T]], Iterable[U]],
                               preservesPartitioning: bool = False) -> RDD[U]:
        return self._new(self._rdd.mapPartitionsWithIndex(f, preservesPartitioning))

    def mapPartitionsWithSplit(self, f: Callable[[int, Iterator[T]], Iterable[U]],
                               preservesPartitioning: bool = False) -> RDD[U]:
        return self._new(self._rdd.mapPartitionsWithSplit(f, preservesPartitioning))

    def glom(self) -> RDD[list[T]]:
        return self._new(self._rdd.glom())

    def keyBy(self, f: Callable[[T], K]) -> RDD[tuple[K, T]]:
        return self._new(self._rdd.keyBy(f))

    def mapValues(self: RDD[tuple[K, V]], f: Callable[[V], U]) -> RDD[tuple[K, U]]:
        return self._new(self._rdd.mapValues(f))

    def flatMapValues(self: RDD[tuple[K, V]],
                      f: Callable[[V], Iterable[U]]) -> RDD[tuple[K, U]]:
        return self._new(self._rdd.flatMapValues(f))

    def keys(self: RDD[tuple[K, V]]) -> RDD[K]:
        return self._new(self._rdd.keys())

    def values(self: RDD[tuple[K, V]]) -> RDD[V]:
        return self._new(self._rdd.values())

    def sample(self, withReplacement: bool, fraction: float,
               seed: int | None = None) -> RDD[T]:
        return self._new(self._rdd.sample(withReplacement, fraction, seed))

    def sampleByKey(self: RDD[tuple[K, V]], withReplacement: bool,
                    fractions: dict[K, float | int], seed: int | None = None
                    ) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.sampleByKey(withReplacement, fractions, seed))

    def randomSplit(self, weights: Sequence[int | float],
                    seed: int | None = None) -> list[RDD[T]]:
        return [self._new(r) for r in self._rdd.randomSplit(weights, seed)]

    def union(self, other: RDD[U]) -> RDD[T | U]:
        return self._new(self._rdd.union(other._rdd))

    def __add__(self, other: RDD[U]) -> RDD[T | U]:
        if not isinstance(other, RDD):
            raise TypeError(f"cannot add an RDD and {type(other).__name__}")
        return self.union(other)

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD[T]:
        return self._new(self._rdd.coalesce(numPartitions, shuffle))

    def zip(self, other: RDD[U]) -> RDD[tuple[T, U]]:
        return self._new(self._rdd.zip(other._rdd))

    def zipWithIndex(self) -> RDD[tuple[T, int]]:
        return self._new(self._rdd.zipWithIndex())

    def zipWithUniqueId(self) -> RDD[tuple[T, int]]:
        return self._new(self._rdd.zipWithUniqueId())

    def pipe(self, command: str, env: dict[str, str] | None = None,
             checkCode: bool = False) -> RDD[str]:
        return self._new(self._rdd.pipe(command, env, checkCode))

    def cartesian(self, other: RDD[U]) -> RDD[tuple[T, U]]:
        return self._new(self._rdd.cartesian(other._rdd))

    # -- wide transformations ------------------------------------------------------------

    def partitionBy(self: RDD[tuple[K, V]], numPartitions: int | None,
                    partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.partitionBy(numPartitions, partitionFunc))

    def repartition(self, numPartitions: int) -> RDD[T]:
        return self._new(self._rdd.repartition(numPartitions))

    def repartitionAndSortWithinPartitions(
            self: RDD[tuple[K, V]], numPartitions: int | None = None,
            partitionFunc: Callable[[K], int] = portable_hash, ascending: bool = True,
            keyfunc: Callable[[K], Any] = _identity) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.repartitionAndSortWithinPartitions(
            numPartitions, partitionFunc, ascending, keyfunc))

    def sortByKey(self: RDD[tuple[K, V]], ascending: bool = True,
                  numPartitions: int | None = None,
                  keyfunc: Callable[[K], Any] = _identity) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.sortByKey(ascending, numPartitions, keyfunc))

    def sortBy(self, keyfunc: Callable[[T], Any], ascending: bool = True,
               numPartitions: int | None = None) -> RDD[T]:
        return self._new(self._rdd.sortBy(keyfunc, ascending, numPartitions))

    def combineByKey(self: RDD[tuple[K, V]], createCombiner: Callable[[V], U],
                     mergeValue: Callable[[U, V], U], mergeCombiners: Callable[[U, U], U],
                     numPartitions: int | None = None,
                     partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, U]]:
        return self._new(self._rdd.combineByKey(createCombiner, mergeValue, mergeCombiners,
                                                numPartitions, partitionFunc))

    def reduceByKey(self: RDD[tuple[K, V]], func: Callable[[V, V], V],
                    numPartitions: int | None = None,
                    partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.reduceByKey(func, numPartitions, partitionFunc))

    def groupByKey(self: RDD[tuple[K, V]], numPartitions: int | None = None,
                   partitionFunc: Callable[[K], int] = portable_hash
                   ) -> RDD[tuple[K, Iterable[V]]]:
        return self._new(self._rdd.groupByKey(numPartitions, partitionFunc))

    def aggregateByKey(self: RDD[tuple[K, V]], zeroValue: U, seqFunc: Callable[[U, V], U],
                       combFunc: Callable[[U, U], U], numPartitions: int | None = None,
                       partitionFunc: Callable[[K], int] = portable_hash
                       ) -> RDD[tuple[K, U]]:
        return self._new(self._rdd.aggregateByKey(zeroValue, seqFunc, combFunc,
                                                  numPartitions, partitionFunc))

    def foldByKey(self: RDD[tuple[K, V]], zeroValue: V, func: Callable[[V, V], V],
                  numPartitions: int | None = None,
                  partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.foldByKey(zeroValue, func, numPartitions, partitionFunc))

    def groupBy(self, f: Callable[[T], K], numPartitions: int | None = None,
                partitionFunc: Callable[[K], int] = portable_hash
                ) -> RDD[tuple[K, Iterable[T]]]:
        return self._new(self._rdd.groupBy(f, numPartitions, partitionFunc))

    def distinct(self, numPartitions: int | None = None) -> RDD[T]:
        return self._new(self._rdd.distinct(numPartitions))

    def cogroup(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                numPartitions: int | None = None
                ) -> RDD[tuple[K, tuple[Iterable[V], Iterable[W]]]]:
        return self._new(self._rdd.cogroup(other._rdd, numPartitions))

    def groupWith(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                  *others: RDD[tuple[K, Any]]) -> RDD[tuple[K, tuple[Iterable[Any], ...]]]:
        return self._new(self._rdd.groupWith(other._rdd, *(o._rdd for o in others)))

    def join(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
             numPartitions: int | None = None) -> RDD[tuple[K, tuple[V, W]]]:
        return self._new(self._rdd.join(other._rdd, numPartitions))

    def leftOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                      numPartitions: int | None = None
                      ) -> RDD[tuple[K, tuple[V, W | None]]]:
        return self._new(self._rdd.leftOuterJoin(other._rdd, numPartitions))

    def rightOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                       numPartitions: int | None = None
                       ) -> RDD[tuple[K, tuple[V | None, W]]]:
        return self._new(self._rdd.rightOuterJoin(other._rdd, numPartitions))

    def fullOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                      numPartitions: int | None = None
                      ) -> RDD[tuple[K, tuple[V | None, W | None]]]:
        return self._new(self._rdd.fullOuterJoin(other._rdd, numPartitions))

    def subtractByKey(self: RDD[tuple[K, V]], other: RDD[tuple[K, Any]],
                      numPartitions: int | None = None) -> RDD[tuple[K, V]]:
        return self._new(self._rdd.subtractByKey(other._rdd, numPartitions))

    def subtract(self, other: RDD[T], numPartitions: int | None = None) -> RDD[T]:
        return self._new(self._rdd.subtract(other._rdd, numPartitions))

    def intersection(self, other: RDD[T]) -> RDD[T]:
        return self._new(self._rdd.intersection(other._rdd))

    # -- actions (block until the job is done) --------------------------------------------

    def collect(self) -> list[T]:
        return self._call(self._rdd.collect())

    def count(self) -> int:
        return self._call(self._rdd.count())

    def take(self, num: int) -> list[T]:
        return self._call(self._rdd.take(num))

    def first(self) -> T:
        return self._call(self._rdd.first())

    def isEmpty(self) -> bool:
        return self._call(self._rdd.isEmpty())

    def reduce(self, f: Callable[[T, T], T]) -> T:
        return self._call(self._rdd.reduce(f))

    def treeReduce(self, f: Callable[[T, T], T], depth: int = 2) -> T:
        return self._call(self._rdd.treeReduce(f, depth))

    def fold(self, zeroValue: T, op: Callable[[T, T], T]) -> T:
        return self._call(self._rdd.fold(zeroValue, op))

    def aggregate(self, zeroValue: U, seqOp: Callable[[U, T], U],
                  combOp: Callable[[U, U], U]) -> U:
        return self._call(self._rdd.aggregate(zeroValue, seqOp, combOp))

    def treeAggregate(self, zeroValue: U, seqOp: Callable[[U, T], U],
                      combOp: Callable[[U, U], U], depth: int = 2) -> U:
        return self._call(self._rdd.treeAggregate(zeroValue, seqOp, combOp, depth))

    def sum(self) -> T:
        return self._call(self._rdd.sum())

    def max(self, key: Callable[[T], Any] | None = None) -> T:
        return self._call(self._rdd.max(key))

    def min(self, key: Callable[[T], Any] | None = None) -> T:
        return self._call(self._rdd.min(key))

    def stats(self) -> StatCounter:
        return self._call(self._rdd.stats())

    def mean(self) -> float:
        return self._call(self._rdd.mean())

    def variance(self) -> float:
        return self._call(self._rdd.variance())

    def stdev(self) -> float:
        return self._call(self._rdd.stdev())

    def sampleVariance(self) -> float:
        return self._call(self._rdd.sampleVariance())

    def sampleStdev(self) -> float:
        return self._call(self._rdd.sampleStdev())

    def histogram(self, buckets: int | list[Any] | tuple[Any, ...]
                  ) -> tuple[Sequence[Any], list[int]]:
        return self._call(self._rdd.histogram(buckets))

    def top(self, num: int, key: Callable[[T], Any] | None = None) -> list[T]:
        return self._call(self._rdd.top(num, key))

    def takeOrdered(self, num: int, key: Callable[[T], Any] | None = None) -> list[T]:
        return self._call(self._rdd.takeOrdered(num, key))

    def takeSample(self, withReplacement: bool, num: int,
                   seed: int | None = None) -> list[T]:
        return self._call(self._rdd.takeSample(withReplacement, num, seed))

    def countByValue(self) -> defaultdict[T, int]:
        return self._call(self._rdd.countByValue())

    def countByKey(self: RDD[tuple[K, V]]) -> defaultdict[K, int]:
        return self._call(self._rdd.countByKey())

    def collectAsMap(self: RDD[tuple[K, V]]) -> dict[K, V]:
        return self._call(self._rdd.collectAsMap())

    def reduceByKeyLocally(self: RDD[tuple[K, V]], func: Callable[[V, V], V]) -> dict[K, V]:
        return self._call(self._rdd.reduceByKeyLocally(func))

    def lookup(self: RDD[tuple[K, V]], key: K) -> list[V]:
        return self._call(self._rdd.lookup(key))

    def countApproxDistinct(self, relativeSD: float = 0.05) -> int:
        return self._call(self._rdd.countApproxDistinct(relativeSD))

    def countApprox(self, timeout: int, confidence: float = 0.95) -> int:
        return self._call(self._rdd.countApprox(timeout, confidence))

    def sumApprox(self, timeout: int, confidence: float = 0.95) -> BoundedFloat:
        return self._call(self._rdd.sumApprox(timeout, confidence))

    def meanApprox(self, timeout: int, confidence: float = 0.95) -> BoundedFloat:
        return self._call(self._rdd.meanApprox(timeout, confidence))

    def foreach(self, f: Callable[[T], object]) -> None:
        self._call(self._rdd.foreach(f))

    def foreachPartition(self, f: Callable[[Iterator[T]], object]) -> None:
        self._call(self._rdd.foreachPartition(f))

    def saveAsTextFile(self, path: str, compressionCodecClass: str | None = None) -> None:
        self._call(self._rdd.saveAsTextFile(path, compressionCodecClass))

    def saveAsPickleFile(self, path: str, batchSize: int = 10) -> None:
        self._call(self._rdd.saveAsPickleFile(path, batchSize))

    def toLocalIterator(self, prefetchPartitions: bool = False) -> Iterator[T]:
        """Iterate the elements, fetching one partition at a time."""
        rdd = self._rdd
        for i in range(rdd.getNumPartitions()):
            yield from self._call(rdd._run(list, [i]))[0]
