"""The blocking facade's ``RDD`` (``asyncspark.sync.RDD``): PySpark's ``pyspark.RDD``
with real, typed methods — ``RDD[T]``, ``map`` returns ``RDD[U]``, ``collect`` returns
``list[T]``, pair methods are typed on ``RDD[tuple[K, V]]`` — each forwarding to the
async ``asyncspark.RDD``; actions block the calling thread until their job is done.
There is no attribute forwarding: a misspelt method is an ``AttributeError`` at run
time and an error for a type checker.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .partitioner import portable_hash
from .rdd import RDD as _AsyncRDD
from .storage.level import StorageLevel
from .sync_actions import RDDActions

if TYPE_CHECKING:
    from .sync import SparkContext

__all__ = ["RDD"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
W = TypeVar("W")


def _identity(x: Any) -> Any:
    return x


class RDD(RDDActions[T], Generic[T]):
    """Blocking counterpart of ``asyncspark.RDD``: transformations as usual, actions
    block (see the module docstring; the actions are in ``sync_actions.py``)."""

    __slots__ = ("_rdd", "_sc")

    def __init__(self, rdd: _AsyncRDD[T], sc: SparkContext) -> None:
        self._rdd = rdd
        self._sc = sc

    def _new(self, rdd: _AsyncRDD[Any]) -> RDD[Any]:
        return RDD(rdd, self._sc)

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
        """
        >>> isinstance(sc.parallelize([1]).id(), int)
        True
        """
        return self._rdd.id()

    def name(self) -> str | None:
        """
        >>> sc.parallelize([1]).setName('one').name()
        'one'
        """
        return self._rdd.name()

    def setName(self, name: str) -> RDD[T]:
        """Name the RDD (the UI and ``toDebugString`` show it); returns it.

        >>> sc.parallelize([1]).setName("numbers").name()
        'numbers'
        """
        self._rdd.setName(name)
        return self

    def getNumPartitions(self) -> int:
        """
        >>> sc.parallelize(range(10), 3).getNumPartitions()
        3
        """
        return self._rdd.getNumPartitions()

    def toDebugString(self) -> bytes:
        """The lineage, one RDD a line (bytes, as PySpark).

        >>> b"numbers" in sc.parallelize([1]).setName("numbers").map(str).toDebugString()
        True
        """
        return self._rdd.toDebugString()

    def __repr__(self) -> str:
        return repr(self._rdd)

    # -- persistence and checkpoints -----------------------------------------------------

    def cache(self) -> RDD[T]:
        """
        >>> sc.parallelize([1, 2]).cache().getStorageLevel()
        StorageLevel(False, True, False, False, 1)
        """
        self._rdd.cache()
        return self

    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD[T]:
        """Keep the computed partitions at ``storageLevel`` once an action computed them.

        >>> rdd = sc.parallelize([1, 2]).persist(StorageLevel.MEMORY_AND_DISK)
        >>> rdd.sum(), rdd.is_cached
        (3, True)
        >>> _ = rdd.unpersist()
        """
        self._rdd.persist(storageLevel)
        return self

    def unpersist(self, blocking: bool = False) -> RDD[T]:
        """
        >>> sc.parallelize([1]).cache().unpersist().is_cached
        False
        """
        self._rdd.unpersist(blocking)
        return self

    def getStorageLevel(self) -> StorageLevel:
        """The storage level ``persist``/``cache`` set (none: ``StorageLevel.NONE``).

        >>> sc.parallelize([1]).getStorageLevel() == StorageLevel.NONE
        True
        """
        return self._rdd.getStorageLevel()

    def checkpoint(self) -> None:
        """Write the RDD to ``setCheckpointDir`` at the next action, cutting its lineage.

        >>> import shutil, tempfile
        >>> d = tempfile.mkdtemp(); sc.setCheckpointDir(d)
        >>> rdd = sc.parallelize([1, 2]).map(lambda x: x * 10); rdd.checkpoint()
        >>> rdd.collect(), rdd.isCheckpointed()
        ([10, 20], True)
        >>> shutil.rmtree(d)
        """
        self._rdd.checkpoint()

    def localCheckpoint(self) -> None:
        """Cut the lineage at the next action, keeping the data in the executors' cache.

        >>> rdd = sc.parallelize([1, 2]).map(lambda x: x + 1); rdd.localCheckpoint()
        >>> rdd.collect(), rdd.isLocallyCheckpointed()
        ([2, 3], True)
        >>> _ = rdd.unpersist()
        """
        self._rdd.localCheckpoint()

    def isCheckpointed(self) -> bool:
        """Whether ``checkpoint`` wrote the RDD (after an action).

        >>> sc.parallelize([1]).isCheckpointed()
        False
        """
        return self._rdd.isCheckpointed()

    def isLocallyCheckpointed(self) -> bool:
        """Whether ``localCheckpoint`` was called on it.

        >>> sc.parallelize([1]).isLocallyCheckpointed()
        False
        """
        return self._rdd.isLocallyCheckpointed()

    def getCheckpointFile(self) -> str | None:
        """Where the checkpoint was written, or None.

        >>> sc.parallelize([1]).getCheckpointFile() is None
        True
        """
        return self._rdd.getCheckpointFile()

    # -- narrow transformations ----------------------------------------------------------

    def map(self, f: Callable[[T], U], preservesPartitioning: bool = False) -> RDD[U]:
        """
        >>> sc.parallelize([1, 2, 3]).map(lambda x: x * 2).collect()
        [2, 4, 6]
        """
        return self._new(self._rdd.map(f, preservesPartitioning))

    def flatMap(self, f: Callable[[T], Iterable[U]],
                preservesPartitioning: bool = False) -> RDD[U]:
        """
        >>> sc.parallelize(['a b', 'c']).flatMap(str.split).collect()
        ['a', 'b', 'c']
        """
        return self._new(self._rdd.flatMap(f, preservesPartitioning))

    def filter(self, f: Callable[[T], object]) -> RDD[T]:
        """
        >>> sc.parallelize(range(6)).filter(lambda x: x % 2).collect()
        [1, 3, 5]
        """
        return self._new(self._rdd.filter(f))

    def mapPartitions(self, f: Callable[[Iterator[T]], Iterable[U]],
                      preservesPartitioning: bool = False) -> RDD[U]:
        """
        >>> sc.parallelize(range(6), 2).mapPartitions(lambda it: [sum(it)]).collect()
        [3, 12]
        """
        return self._new(self._rdd.mapPartitions(f, preservesPartitioning))

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[T]], Iterable[U]],
                               preservesPartitioning: bool = False) -> RDD[U]:
        """
        >>> rdd = sc.parallelize('abcd', 2)
        >>> rdd.mapPartitionsWithIndex(lambda i, it: [(i, ''.join(it))]).collect()
        [(0, 'ab'), (1, 'cd')]
        """
        return self._new(self._rdd.mapPartitionsWithIndex(f, preservesPartitioning))

    def mapPartitionsWithSplit(self, f: Callable[[int, Iterator[T]], Iterable[U]],
                               preservesPartitioning: bool = False) -> RDD[U]:
        """
        >>> sc.parallelize('abcd', 2).mapPartitionsWithSplit(lambda i, it: [i]).collect()
        [0, 1]
        """
        return self._new(self._rdd.mapPartitionsWithSplit(f, preservesPartitioning))

    def glom(self) -> RDD[list[T]]:
        """
        >>> sc.parallelize(range(4), 2).glom().collect()
        [[0, 1], [2, 3]]
        """
        return self._new(self._rdd.glom())

    def keyBy(self, f: Callable[[T], K]) -> RDD[tuple[K, T]]:
        """
        >>> sc.parallelize(['ab', 'c']).keyBy(len).collect()
        [(2, 'ab'), (1, 'c')]
        """
        return self._new(self._rdd.keyBy(f))

    def mapValues(self: RDD[tuple[K, V]], f: Callable[[V], U]) -> RDD[tuple[K, U]]:
        """
        >>> sc.parallelize([('a', 1)]).mapValues(lambda v: v + 1).collect()
        [('a', 2)]
        """
        return self._new(self._rdd.mapValues(f))

    def flatMapValues(self: RDD[tuple[K, V]],
                      f: Callable[[V], Iterable[U]]) -> RDD[tuple[K, U]]:
        """
        >>> sc.parallelize([('a', [1, 2])]).flatMapValues(lambda v: v).collect()
        [('a', 1), ('a', 2)]
        """
        return self._new(self._rdd.flatMapValues(f))

    def keys(self: RDD[tuple[K, V]]) -> RDD[K]:
        """
        >>> sc.parallelize([('a', 1), ('b', 2)]).keys().collect()
        ['a', 'b']
        """
        return self._new(self._rdd.keys())

    def values(self: RDD[tuple[K, V]]) -> RDD[V]:
        """
        >>> sc.parallelize([('a', 1), ('b', 2)]).values().collect()
        [1, 2]
        """
        return self._new(self._rdd.values())

    def sample(self, withReplacement: bool, fraction: float,
               seed: int | None = None) -> RDD[T]:
        """
        >>> 0 < sc.parallelize(range(1000)).sample(False, 0.5, 1).count() < 1000
        True
        """
        return self._new(self._rdd.sample(withReplacement, fraction, seed))

    def sampleByKey(self: RDD[tuple[K, V]], withReplacement: bool,
                    fractions: dict[K, float | int], seed: int | None = None
                    ) -> RDD[tuple[K, V]]:
        """A sample of each key's values, at that key's fraction (stratified).

        >>> rdd = sc.parallelize([("a", i) for i in range(100)] + [("b", i) for i in range(100)])
        >>> sorted(rdd.sampleByKey(False, {"a": 1.0, "b": 0.0}, seed=1).keys().distinct().collect())
        ['a']
        """
        return self._new(self._rdd.sampleByKey(withReplacement, fractions, seed))

    def randomSplit(self, weights: Sequence[int | float],
                    seed: int | None = None) -> list[RDD[T]]:
        """Split into RDDs of about the given weights (every element in exactly one).

        >>> a, b = sc.parallelize(range(100)).randomSplit([1, 3], seed=7)
        >>> sorted(a.collect() + b.collect()) == list(range(100))
        True
        """
        return [self._new(r) for r in self._rdd.randomSplit(weights, seed)]

    def union(self, other: RDD[U]) -> RDD[T | U]:
        """
        >>> sc.parallelize([1]).union(sc.parallelize(['x'])).collect()
        [1, 'x']
        """
        return self._new(self._rdd.union(other._rdd))

    def __add__(self, other: RDD[U]) -> RDD[T | U]:
        if not isinstance(other, RDD):
            raise TypeError(f"cannot add an RDD and {type(other).__name__}")
        return self.union(other)

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD[T]:
        """
        >>> sc.parallelize(range(6), 3).coalesce(1).glom().collect()
        [[0, 1, 2, 3, 4, 5]]
        """
        return self._new(self._rdd.coalesce(numPartitions, shuffle))

    def zip(self, other: RDD[U]) -> RDD[tuple[T, U]]:
        """
        >>> sc.parallelize('ab', 2).zip(sc.parallelize([1, 2], 2)).collect()
        [('a', 1), ('b', 2)]
        """
        return self._new(self._rdd.zip(other._rdd))

    def zipWithIndex(self) -> RDD[tuple[T, int]]:
        """
        >>> sc.parallelize('abc', 2).zipWithIndex().collect()
        [('a', 0), ('b', 1), ('c', 2)]
        """
        return self._new(self._rdd.zipWithIndex())

    def zipWithUniqueId(self) -> RDD[tuple[T, int]]:
        """
        >>> sc.parallelize('abc', 2).zipWithUniqueId().collect()
        [('a', 0), ('b', 1), ('c', 3)]
        """
        return self._new(self._rdd.zipWithUniqueId())

    def pipe(self, command: str, env: dict[str, str] | None = None,
             checkCode: bool = False) -> RDD[str]:
        """
        >>> sc.parallelize(['b', 'a'], 1).pipe('sort').collect()
        ['a', 'b']
        """
        return self._new(self._rdd.pipe(command, env, checkCode))

    def cartesian(self, other: RDD[U]) -> RDD[tuple[T, U]]:
        """
        >>> sc.parallelize([1, 2]).cartesian(sc.parallelize('x')).collect()
        [(1, 'x'), (2, 'x')]
        """
        return self._new(self._rdd.cartesian(other._rdd))

    # -- wide transformations ------------------------------------------------------------

    def partitionBy(self: RDD[tuple[K, V]], numPartitions: int | None,
                    partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        """
        >>> sc.parallelize([(1, 'a'), (2, 'b')]).partitionBy(2).glom().collect()
        [[(2, 'b')], [(1, 'a')]]
        """
        return self._new(self._rdd.partitionBy(numPartitions, partitionFunc))

    def repartition(self, numPartitions: int) -> RDD[T]:
        """
        >>> sc.parallelize(range(10), 2).repartition(4).getNumPartitions()
        4
        """
        return self._new(self._rdd.repartition(numPartitions))

    def repartitionAndSortWithinPartitions(
            self: RDD[tuple[K, V]], numPartitions: int | None = None,
            partitionFunc: Callable[[K], int] = portable_hash, ascending: bool = True,
            keyfunc: Callable[[K], Any] = _identity) -> RDD[tuple[K, V]]:
        """Shuffle by key into ``numPartitions``, sorting each partition by key.

        >>> rdd = sc.parallelize([(3, "c"), (1, "a"), (2, "b"), (4, "d")])
        >>> rdd.repartitionAndSortWithinPartitions(2, lambda k: k % 2).glom().collect()
        [[(2, 'b'), (4, 'd')], [(1, 'a'), (3, 'c')]]
        """
        return self._new(self._rdd.repartitionAndSortWithinPartitions(
            numPartitions, partitionFunc, ascending, keyfunc))

    def sortByKey(self: RDD[tuple[K, V]], ascending: bool = True,
                  numPartitions: int | None = None,
                  keyfunc: Callable[[K], Any] = _identity) -> RDD[tuple[K, V]]:
        """
        >>> sc.parallelize([(2, 'b'), (1, 'a')]).sortByKey().collect()
        [(1, 'a'), (2, 'b')]
        """
        return self._new(self._rdd.sortByKey(ascending, numPartitions, keyfunc))

    def sortBy(self, keyfunc: Callable[[T], Any], ascending: bool = True,
               numPartitions: int | None = None) -> RDD[T]:
        """
        >>> sc.parallelize(['bb', 'a', 'ccc']).sortBy(len, ascending=False).collect()
        ['ccc', 'bb', 'a']
        """
        return self._new(self._rdd.sortBy(keyfunc, ascending, numPartitions))

    def combineByKey(self: RDD[tuple[K, V]], createCombiner: Callable[[V], U],
                     mergeValue: Callable[[U, V], U], mergeCombiners: Callable[[U, U], U],
                     numPartitions: int | None = None,
                     partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, U]]:
        """Combine each key's values with a combiner made from the first one.

        >>> pairs = sc.parallelize([("a", 1), ("b", 2), ("a", 3)])
        >>> sorted(pairs.combineByKey(lambda v: [v], lambda c, v: [*c, v], list.__add__).collect())
        [('a', [1, 3]), ('b', [2])]
        """
        return self._new(self._rdd.combineByKey(createCombiner, mergeValue, mergeCombiners,
                                                numPartitions, partitionFunc))

    def reduceByKey(self: RDD[tuple[K, V]], func: Callable[[V, V], V],
                    numPartitions: int | None = None,
                    partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        """
        >>> pairs = sc.parallelize([('a', 1), ('b', 1), ('a', 1)])
        >>> sorted(pairs.reduceByKey(lambda x, y: x + y).collect())
        [('a', 2), ('b', 1)]
        """
        return self._new(self._rdd.reduceByKey(func, numPartitions, partitionFunc))

    def groupByKey(self: RDD[tuple[K, V]], numPartitions: int | None = None,
                   partitionFunc: Callable[[K], int] = portable_hash
                   ) -> RDD[tuple[K, Iterable[V]]]:
        """
        >>> grouped = sc.parallelize([('a', 2), ('a', 1)]).groupByKey().collect()
        >>> [(k, sorted(v)) for k, v in grouped]
        [('a', [1, 2])]
        """
        return self._new(self._rdd.groupByKey(numPartitions, partitionFunc))

    def aggregateByKey(self: RDD[tuple[K, V]], zeroValue: U, seqFunc: Callable[[U, V], U],
                       combFunc: Callable[[U, U], U], numPartitions: int | None = None,
                       partitionFunc: Callable[[K], int] = portable_hash
                       ) -> RDD[tuple[K, U]]:
        """Aggregate each key's values from ``zeroValue`` (per partition, then merged).

        >>> pairs = sc.parallelize([("a", 1), ("b", 2), ("a", 3)])
        >>> sorted(pairs.aggregateByKey(0, lambda acc, v: acc + v, lambda x, y: x + y).collect())
        [('a', 4), ('b', 2)]
        """
        return self._new(self._rdd.aggregateByKey(zeroValue, seqFunc, combFunc,
                                                  numPartitions, partitionFunc))

    def foldByKey(self: RDD[tuple[K, V]], zeroValue: V, func: Callable[[V, V], V],
                  numPartitions: int | None = None,
                  partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        """Fold each key's values with ``func``, starting from ``zeroValue``.

        >>> pairs = sc.parallelize([("a", 1), ("b", 2), ("a", 3)])
        >>> sorted(pairs.foldByKey(0, lambda x, y: x + y).collect())
        [('a', 4), ('b', 2)]
        """
        return self._new(self._rdd.foldByKey(zeroValue, func, numPartitions, partitionFunc))

    def groupBy(self, f: Callable[[T], K], numPartitions: int | None = None,
                partitionFunc: Callable[[K], int] = portable_hash
                ) -> RDD[tuple[K, Iterable[T]]]:
        """Group the elements by ``f(element)``.

        >>> groups = sc.parallelize(range(5)).groupBy(lambda x: x % 2).collect()
        >>> sorted((k, sorted(v)) for k, v in groups)
        [(0, [0, 2, 4]), (1, [1, 3])]
        """
        return self._new(self._rdd.groupBy(f, numPartitions, partitionFunc))

    def distinct(self, numPartitions: int | None = None) -> RDD[T]:
        """
        >>> sorted(sc.parallelize([1, 1, 2]).distinct().collect())
        [1, 2]
        """
        return self._new(self._rdd.distinct(numPartitions))

    def cogroup(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                numPartitions: int | None = None
                ) -> RDD[tuple[K, tuple[Iterable[V], Iterable[W]]]]:
        """For each key, the values it has in this RDD and in ``other``.

        >>> a, b = sc.parallelize([("k", 1), ("k", 2)]), sc.parallelize([("k", "x"), ("j", "y")])
        >>> sorted((k, (sorted(v), list(w))) for k, (v, w) in a.cogroup(b).collect())
        [('j', ([], ['y'])), ('k', ([1, 2], ['x']))]
        """
        return self._new(self._rdd.cogroup(other._rdd, numPartitions))

    def groupWith(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                  *others: RDD[tuple[K, Any]]) -> RDD[tuple[K, tuple[Iterable[Any], ...]]]:
        """``cogroup`` with any number of other RDDs.

        >>> a, b, c = (sc.parallelize([("k", v)]) for v in (1, 2, 3))
        >>> [(k, tuple(map(list, vs))) for k, vs in a.groupWith(b, c).collect()]
        [('k', ([1], [2], [3]))]
        """
        return self._new(self._rdd.groupWith(other._rdd, *(o._rdd for o in others)))

    def join(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
             numPartitions: int | None = None) -> RDD[tuple[K, tuple[V, W]]]:
        """
        >>> sc.parallelize([('a', 1)]).join(sc.parallelize([('a', 'x'), ('b', 'y')])).collect()
        [('a', (1, 'x'))]
        """
        return self._new(self._rdd.join(other._rdd, numPartitions))

    def leftOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                      numPartitions: int | None = None
                      ) -> RDD[tuple[K, tuple[V, W | None]]]:
        """
        >>> left = sc.parallelize([('a', 1), ('b', 2)])
        >>> sorted(left.leftOuterJoin(sc.parallelize([('a', 'x')])).collect())
        [('a', (1, 'x')), ('b', (2, None))]
        """
        return self._new(self._rdd.leftOuterJoin(other._rdd, numPartitions))

    def rightOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                       numPartitions: int | None = None
                       ) -> RDD[tuple[K, tuple[V | None, W]]]:
        """The pairs of ``other``, with this RDD's value for the key or None.

        >>> a, b = sc.parallelize([("a", 1)]), sc.parallelize([("a", 2), ("b", 3)])
        >>> sorted(a.rightOuterJoin(b).collect())
        [('a', (1, 2)), ('b', (None, 3))]
        """
        return self._new(self._rdd.rightOuterJoin(other._rdd, numPartitions))

    def fullOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                      numPartitions: int | None = None
                      ) -> RDD[tuple[K, tuple[V | None, W | None]]]:
        """The keys of either RDD, with None where one side lacks the key.

        >>> a, b = sc.parallelize([("a", 1), ("c", 4)]), sc.parallelize([("a", 2), ("b", 3)])
        >>> sorted(a.fullOuterJoin(b).collect())
        [('a', (1, 2)), ('b', (None, 3)), ('c', (4, None))]
        """
        return self._new(self._rdd.fullOuterJoin(other._rdd, numPartitions))

    def subtractByKey(self: RDD[tuple[K, V]], other: RDD[tuple[K, Any]],
                      numPartitions: int | None = None) -> RDD[tuple[K, V]]:
        """The pairs whose key is not in ``other``.

        >>> a, b = sc.parallelize([("a", 1), ("b", 2)]), sc.parallelize([("a", 0)])
        >>> a.subtractByKey(b).collect()
        [('b', 2)]
        """
        return self._new(self._rdd.subtractByKey(other._rdd, numPartitions))

    def subtract(self, other: RDD[T], numPartitions: int | None = None) -> RDD[T]:
        """
        >>> sorted(sc.parallelize([1, 2, 3]).subtract(sc.parallelize([2])).collect())
        [1, 3]
        """
        return self._new(self._rdd.subtract(other._rdd, numPartitions))

    def intersection(self, other: RDD[T]) -> RDD[T]:
        """
        >>> sorted(sc.parallelize([1, 2, 3]).intersection(sc.parallelize([2, 3, 4])).collect())
        [2, 3]
        """
        return self._new(self._rdd.intersection(other._rdd))
