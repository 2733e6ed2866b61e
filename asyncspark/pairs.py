"""Wide transformations: everything that moves records between partitions.

A mixin of ``RDD`` (kept apart so that each module stays one concept). Names, defaults
and results follow PySpark: ``numPartitions`` defaults to ``spark.default.parallelism``
when set, else to the RDD's own number of partitions (for joins, cogroups, subtract and
intersection, which PySpark runs as a groupByKey over the union of the inputs: their
partitions together, unless an input is hash-partitioned already, whose partitioning is
then reused); ``partitionFunc`` defaults to ``portable_hash``. Transformations over RDDs
that are already partitioned the way the operation needs (equal partitioners) do not
shuffle again.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .functions import Aggregator, append_to, extend_with, to_list
from .functions import identity as _identity
from .partitioner import HashPartitioner, portable_hash
from .planner import prepare

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["PairRDDFunctions", "ResultIterable"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
W = TypeVar("W")


class ResultIterable(Generic[T]):
    """The values of one key after a grouping (PySpark's ``ResultIterable``)."""

    __slots__ = ("data", "maxindex")

    def __init__(self, data: list[T]) -> None:
        self.data: list[T] = data
        self.maxindex: int = len(data)

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResultIterable):
            return self.data == other.data
        return NotImplemented

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ResultIterable({self.data!r})"


def _to_result_iterable(xs):
    return ResultIterable(xs)


class PairRDDFunctions:
    """Mixed into ``RDD``; methods on RDDs of ``(key, value)`` pairs unless noted."""

    # -- helpers -------------------------------------------------------------------------

    def _defaultReducePartitions(self: RDD[Any]) -> int:
        # At least one: an RDD without partitions (emptyRDD()) shuffles into one, empty.
        return self.ctx.conf.default_parallelism or max(1, self.getNumPartitions())

    def _hash_partitioner(self: RDD[Any], numPartitions: int | None,
                          partitionFunc: Callable[[Any], int]) -> HashPartitioner:
        n = self._defaultReducePartitions() if numPartitions is None else numPartitions
        if n < 1:
            raise ValueError(f"Number of partitions ({n}) must be positive.")
        return HashPartitioner(n, partitionFunc)

    def _shuffled(self: RDD[Any], partitioner: Any, aggregator: Aggregator | None = None,
                  map_side_combine: bool = False,
                  key_ordering: tuple[bool, Callable[[Any], Any]] | None = None,
                  what: str = "a shuffle") -> RDD[Any]:
        from .rdds.shuffled import ShuffledRDD

        return ShuffledRDD(self, partitioner, aggregator, map_side_combine, key_ordering, what)

    # -- partitioning --------------------------------------------------------------------

    def partitionBy(self: RDD[tuple[K, V]], numPartitions: int | None,
                    partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        """Redistributed by key, a pair to partition ``partitionFunc(key) % numPartitions``;
        a no-op when already partitioned this way.

        >>> rdd = sc.parallelize([(0, "a"), (1, "b"), (2, "c"), (3, "d")], 1).partitionBy(2)
        >>> await rdd.glom().collect()
        [[(0, 'a'), (2, 'c')], [(1, 'b'), (3, 'd')]]
        """
        partitioner = self._hash_partitioner(numPartitions, partitionFunc)
        if self.partitioner == partitioner:
            return self
        return self._shuffled(partitioner, what="partitionBy()")

    def repartition(self: RDD[T], numPartitions: int) -> RDD[T]:
        """Exactly ``numPartitions`` partitions, balanced, through a shuffle.

        >>> rdd = sc.parallelize(range(10), 2).repartition(4)
        >>> rdd.getNumPartitions(), sorted(await rdd.collect()) == list(range(10))
        (4, True)
        """
        return self.coalesce(numPartitions, shuffle=True)

    def _coalesce_shuffle(self: RDD[T], numPartitions: int) -> RDD[T]:
        """Spark's coalesce(shuffle=True): each input partition deals its elements
        round-robin from a position seeded by its index."""
        if numPartitions < 1:
            raise ValueError(f"Number of partitions ({numPartitions}) must be positive.")

        def distribute(index: int, it: Iterable) -> Iterator:
            position = random.Random(index).randrange(numPartitions)
            for x in it:
                position += 1
                yield position % numPartitions, x

        keyed = self.mapPartitionsWithIndex(distribute)
        return keyed._shuffled(HashPartitioner(numPartitions, _identity)).values()

    def repartitionAndSortWithinPartitions(
            self: RDD[tuple[K, V]], numPartitions: int | None = None,
            partitionFunc: Callable[[K], int] = portable_hash, ascending: bool = True,
            keyfunc: Callable[[K], Any] = _identity) -> RDD[tuple[K, V]]:
        """Repartitioned by ``partitionFunc`` (no shuffle when already partitioned
        that way, as ``partitionBy``), each partition sorted by ``keyfunc(key)``.

        >>> rdd = sc.parallelize([(3, "c"), (0, "a"), (2, "b"), (1, "d")], 2)
        >>> await rdd.repartitionAndSortWithinPartitions(2, lambda k: k % 2).glom().collect()
        [[(0, 'a'), (2, 'b')], [(1, 'd'), (3, 'c')]]
        """
        partitioner = self._hash_partitioner(numPartitions, partitionFunc)
        if self.partitioner == partitioner:
            from .rdds.shuffled import SortPartition

            return self.mapPartitions(SortPartition(ascending, keyfunc),
                                      preservesPartitioning=True)
        return self._shuffled(partitioner, key_ordering=(ascending, keyfunc),
                              what="repartitionAndSortWithinPartitions()")

    def sortByKey(self: RDD[tuple[K, V]], ascending: bool = True,
                  numPartitions: int | None = None,
                  keyfunc: Callable[[K], Any] = _identity) -> RDD[tuple[K, V]]:
        """Sorted by key across partitions: range-partitioned from a sample of the keys
        (taken when an action first needs it), each partition sorted.

        >>> rdd = sc.parallelize([("b", 2), ("a", 1), ("C", 3)], 2)
        >>> await rdd.sortByKey().collect(), await rdd.sortByKey(keyfunc=str.lower).keys().collect()
        ([('C', 3), ('a', 1), ('b', 2)], ['a', 'b', 'C'])
        """
        n = self._defaultReducePartitions() if numPartitions is None else numPartitions
        if n < 1:
            raise ValueError(f"Number of partitions ({n}) must be positive.")
        if n == 1:  # as PySpark: no shuffle, one partition sorted
            from .rdds.shuffled import SortPartition

            src = self.coalesce(1) if self.getNumPartitions() > 1 else self
            return src.mapPartitions(SortPartition(ascending, keyfunc),
                                     preservesPartitioning=True)
        from .rdds.shuffled import PendingRangePartitioner

        # The bounds are sampled when an action first needs them (ShuffledRDD.prepare_self).
        return self._shuffled(PendingRangePartitioner(n, ascending, keyfunc),
                              key_ordering=(ascending, keyfunc), what="sortByKey()")

    def sortBy(self: RDD[T], keyfunc: Callable[[T], Any], ascending: bool = True,
               numPartitions: int | None = None) -> RDD[T]:
        """The elements sorted by ``keyfunc`` across partitions (as ``sortByKey``).

        >>> await sc.parallelize(["bb", "a", "ccc"], 2).sortBy(len, ascending=False).collect()
        ['ccc', 'bb', 'a']
        """
        return self.keyBy(keyfunc).sortByKey(ascending, numPartitions).values()

    # -- aggregation ---------------------------------------------------------------------

    def combineByKey(self: RDD[tuple[K, V]], createCombiner: Callable[[V], U],
                     mergeValue: Callable[[U, V], U], mergeCombiners: Callable[[U, U], U],
                     numPartitions: int | None = None,
                     partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, U]]:
        """The general per-key aggregation: combined on the map side, shuffled, merged.

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> pairs = rdd.combineByKey(lambda v: [v], lambda c, v: c + [v], lambda c, d: c + d)
        >>> sorted(await pairs.mapValues(sorted).collect())
        [('a', [1, 3]), ('b', [2])]
        """
        return self._combine_by_key(createCombiner, mergeValue, mergeCombiners,
                                    numPartitions, partitionFunc, "combineByKey()")

    def _combine_by_key(self: RDD[Any], createCombiner: Callable[..., Any],
                        mergeValue: Callable[..., Any], mergeCombiners: Callable[..., Any],
                        numPartitions: int | None, partitionFunc: Callable[[Any], int],
                        what: str, map_side_combine: bool = True) -> RDD[Any]:
        partitioner = self._hash_partitioner(numPartitions, partitionFunc)
        if self.partitioner == partitioner:  # already partitioned so: merge in place
            return self._map_partitions(
                _local_combine(createCombiner, mergeValue, mergeCombiners), True, what)
        aggregator = Aggregator(createCombiner, mergeValue, mergeCombiners)
        return self._shuffled(partitioner, aggregator, map_side_combine=map_side_combine,
                              what=what)

    def reduceByKey(self: RDD[tuple[K, V]], func: Callable[[V, V], V],
                    numPartitions: int | None = None,
                    partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        """Per key, its values merged with ``func`` (commutative and associative), combined
        within each partition before the shuffle.

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.reduceByKey(lambda a, b: a + b).collect())
        [('a', 4), ('b', 2)]
        """
        return self._combine_by_key(_identity, func, func, numPartitions, partitionFunc,
                                    "reduceByKey()")

    async def reduceByKeyLocally(self: RDD[tuple[K, V]], func: Callable[[V, V], V]
                                 ) -> dict[K, V]:
        """Merge values per key into a dict returned to the driver (no shuffle).

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> await rdd.reduceByKeyLocally(lambda a, b: a + b)
        {'a': 4, 'b': 2}
        """
        def reduce_partition(it):
            m: dict = {}
            for k, v in it:
                m[k] = func(m[k], v) if k in m else v
            return m

        merged: dict = {}
        for m in await self._run(reduce_partition):
            for k, v in m.items():
                merged[k] = func(merged[k], v) if k in merged else v
        return merged

    def groupByKey(self: RDD[tuple[K, V]], numPartitions: int | None = None,
                   partitionFunc: Callable[[K], int] = portable_hash
                   ) -> RDD[tuple[K, ResultIterable[V]]]:
        # No map-side combine (as Spark's groupByKey): grouping on the map side saves
        # nothing on the wire, since every value travels anyway, and costs a list per key.
        """Per key, all its values as a ``ResultIterable`` (in no defined order; for an
        aggregate prefer ``reduceByKey``/``aggregateByKey``, which combine before the shuffle).

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.groupByKey().mapValues(sorted).collect())
        [('a', [1, 3]), ('b', [2])]
        """
        return self._combine_by_key(to_list, append_to, extend_with, numPartitions, partitionFunc,
                                    "groupByKey()", map_side_combine=False
                                    ).mapValues(_to_result_iterable)

    def aggregateByKey(self: RDD[tuple[K, V]], zeroValue: U, seqFunc: Callable[[U, V], U],
                       combFunc: Callable[[U, U], U], numPartitions: int | None = None,
                       partitionFunc: Callable[[K], int] = portable_hash
                       ) -> RDD[tuple[K, U]]:
        """Per key, the values folded with ``seqFunc`` into a fresh copy of ``zeroValue``
        within each partition, and the partial results merged with ``combFunc`` after the
        shuffle.

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sets = rdd.aggregateByKey(set(), lambda s, v: s | {v}, lambda a, b: a | b)
        >>> sorted(await sets.collect())
        [('a', {1, 3}), ('b', {2})]
        """
        def create(v):
            return seqFunc(copy.deepcopy(zeroValue), v)

        return self._combine_by_key(create, seqFunc, combFunc, numPartitions, partitionFunc,
                                    "aggregateByKey()")

    def foldByKey(self: RDD[tuple[K, V]], zeroValue: V, func: Callable[[V, V], V],
                  numPartitions: int | None = None,
                  partitionFunc: Callable[[K], int] = portable_hash) -> RDD[tuple[K, V]]:
        """Per key, the values folded with ``func`` from a fresh copy of ``zeroValue``
        (in each partition, then across them).

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.foldByKey(0, lambda a, b: a + b).collect())
        [('a', 4), ('b', 2)]
        """
        def create(v):
            return func(copy.deepcopy(zeroValue), v)

        return self._combine_by_key(create, func, func, numPartitions, partitionFunc,
                                    "foldByKey()")

    def groupBy(self: RDD[T], f: Callable[[T], K], numPartitions: int | None = None,
                partitionFunc: Callable[[K], int] = portable_hash
                ) -> RDD[tuple[K, ResultIterable[T]]]:
        """The elements grouped by ``f(x)``: ``(key, ResultIterable of its elements)``.

        >>> rdd = sc.parallelize([1, 2, 3, 4, 5], 2)
        >>> sorted((k, sorted(v)) for k, v in await rdd.groupBy(lambda x: x % 2).collect())
        [(0, [2, 4]), (1, [1, 3, 5])]
        """
        return self.keyBy(f).groupByKey(numPartitions, partitionFunc)

    def distinct(self: RDD[T], numPartitions: int | None = None) -> RDD[T]:
        """The distinct elements (through a shuffle, in no defined order).

        >>> sorted(await sc.parallelize([1, 1, 2, 3, 3], 2).distinct().collect())
        [1, 2, 3]
        """
        return (self.map(lambda x: (x, None))
                .reduceByKey(lambda x, _: x, numPartitions).map(lambda x: x[0]))

    # -- joins ---------------------------------------------------------------------------

    def _cogroup_partitioner(self: RDD[Any], others: list[RDD[Any]],
                             numPartitions: int | None) -> Any:
        if numPartitions is None:
            rdds = (self, *others)
            # As Spark's defaultPartitioner: reuse an existing hash partitioning.
            for r in rdds:
                if isinstance(r.partitioner, HashPartitioner):
                    return r.partitioner
            # Else as PySpark (groupByKey over the union of the inputs): the default
            # parallelism when set, else as many partitions as the inputs have together.
            numPartitions = self.ctx.conf.default_parallelism or max(
                1, sum(r.getNumPartitions() for r in rdds))
        return self._hash_partitioner(numPartitions, portable_hash)

    def _cogroup_lists(self: RDD[Any], others: list[RDD[Any]],
                       numPartitions: int | None) -> RDD[Any]:
        from .rdds.shuffled import CoGroupedRDD

        return CoGroupedRDD([self, *others], self._cogroup_partitioner(others, numPartitions))

    def cogroup(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                numPartitions: int | None = None
                ) -> RDD[tuple[K, tuple[ResultIterable[V], ResultIterable[W]]]]:
        """For each key, ``(values in self, values in other)`` as ``ResultIterable``s.

        >>> x = sc.parallelize([("a", 1), ("b", 2)])
        >>> y = sc.parallelize([("a", 3), ("c", 4)])
        >>> sorted((k, (list(v), list(w))) for k, (v, w) in await x.cogroup(y).collect())
        [('a', ([1], [3])), ('b', ([2], [])), ('c', ([], [4]))]
        """
        return self._cogroup_lists([other], numPartitions).mapValues(
            lambda groups: tuple(ResultIterable(g) for g in groups))

    def groupWith(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                  *others: RDD[tuple[K, Any]]
                  ) -> RDD[tuple[K, tuple[ResultIterable[Any], ...]]]:
        """``cogroup`` with any number of others: per key, a tuple of one
        ``ResultIterable`` per RDD.

        >>> w, x = sc.parallelize([("a", 1)]), sc.parallelize([("a", 2), ("b", 3)])
        >>> y = sc.parallelize([("b", 4)])
        >>> sorted((k, tuple(map(list, vs))) for k, vs in await w.groupWith(x, y).collect())
        [('a', ([1], [2], [])), ('b', ([], [3], [4]))]
        """
        return self._cogroup_lists([other, *others], None).mapValues(
            lambda groups: tuple(ResultIterable(g) for g in groups))

    def _joined(self: RDD[Any], other: RDD[Any], numPartitions: int | None,
                how: str) -> RDD[Any]:
        from .rdds.joined import JoinedRDD

        return JoinedRDD(self, other, self._cogroup_partitioner([other], numPartitions), how)

    def join(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
             numPartitions: int | None = None) -> RDD[tuple[K, tuple[V, W]]]:
        """``(k, (v, w))`` for every pair of values of a key in both (a hash join per
        reduce partition, built from the smaller side: ``rdds/joined.py``).

        >>> x = sc.parallelize([("a", 1), ("b", 2)])
        >>> y = sc.parallelize([("a", 3), ("c", 4)])
        >>> await x.join(y).collect()
        [('a', (1, 3))]
        """
        return self._joined(other, numPartitions, "inner")

    def leftOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                      numPartitions: int | None = None
                      ) -> RDD[tuple[K, tuple[V, W | None]]]:
        """As ``join``, and ``(k, (v, None))`` for a key of this RDD that ``other`` lacks.

        >>> x = sc.parallelize([("a", 1), ("b", 2)])
        >>> y = sc.parallelize([("a", 3), ("c", 4)])
        >>> sorted(await x.leftOuterJoin(y).collect())
        [('a', (1, 3)), ('b', (2, None))]
        """
        return self._joined(other, numPartitions, "left")

    def rightOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                       numPartitions: int | None = None
                       ) -> RDD[tuple[K, tuple[V | None, W]]]:
        """As ``join``, and ``(k, (None, w))`` for a key of ``other`` that this RDD lacks.

        >>> x = sc.parallelize([("a", 1), ("b", 2)])
        >>> y = sc.parallelize([("a", 3), ("c", 4)])
        >>> sorted(await x.rightOuterJoin(y).collect())
        [('a', (1, 3)), ('c', (None, 4))]
        """
        return self._joined(other, numPartitions, "right")

    def fullOuterJoin(self: RDD[tuple[K, V]], other: RDD[tuple[K, W]],
                      numPartitions: int | None = None
                      ) -> RDD[tuple[K, tuple[V | None, W | None]]]:
        """As ``join``, and ``(k, (v, None))`` or ``(k, (None, w))`` for a key that only
        one side has.

        >>> x = sc.parallelize([("a", 1), ("b", 2)])
        >>> y = sc.parallelize([("a", 3), ("c", 4)])
        >>> sorted(await x.fullOuterJoin(y).collect())
        [('a', (1, 3)), ('b', (2, None)), ('c', (None, 4))]
        """
        return self._joined(other, numPartitions, "full")

    def subtractByKey(self: RDD[tuple[K, V]], other: RDD[tuple[K, Any]],
                      numPartitions: int | None = None) -> RDD[tuple[K, V]]:
        """Pairs of self whose key is not in other.

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> await rdd.subtractByKey(sc.parallelize([("a", None)])).collect()
        [('b', 2)]
        """
        return (self._cogroup_lists([other], numPartitions)
                .filter(lambda kv: kv[1][0] and not kv[1][1])
                .flatMapValues(lambda g: g[0]))

    def subtract(self: RDD[T], other: RDD[T], numPartitions: int | None = None) -> RDD[T]:
        """Elements of self not in other (duplicates in self are kept).

        >>> sorted(await sc.parallelize([1, 2, 2, 3], 2).subtract(sc.parallelize([3])).collect())
        [1, 2, 2]
        """
        return (self.map(lambda x: (x, True))
                .subtractByKey(other.map(lambda x: (x, True)), numPartitions).keys())

    def intersection(self: RDD[T], other: RDD[T]) -> RDD[T]:
        """The distinct elements present in both (through a shuffle).

        >>> both = sc.parallelize([1, 2, 2, 3]).intersection(sc.parallelize([2, 3, 4]))
        >>> sorted(await both.collect())
        [2, 3]
        """
        return (self.map(lambda v: (v, None))
                ._cogroup_lists([other.map(lambda v: (v, None))], None)
                .filter(lambda kv: kv[1][0] and kv[1][1]).keys())

    def cartesian(self: RDD[T], other: RDD[U]) -> RDD[tuple[T, U]]:
        """Every pair ``(x, y)`` of an element of this RDD and one of ``other`` (one
        partition per pair of partitions).

        >>> sorted(await sc.parallelize([1, 2]).cartesian(sc.parallelize("ab")).collect())
        [(1, 'a'), (1, 'b'), (2, 'a'), (2, 'b')]
        """
        from .rdds.narrow import CartesianRDD

        return CartesianRDD(self, other)

    # -- actions -------------------------------------------------------------------------

    async def lookup(self: RDD[tuple[K, V]], key: K) -> list[V]:
        """The values for ``key``; scans one partition when the RDD has a partitioner.

        >>> rdd = sc.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
        >>> sorted(await rdd.lookup("a")), await rdd.lookup("z")
        ([1, 3], [])
        >>> await rdd.partitionBy(2).lookup("b")  # one partition scanned
        [2]
        """
        values = self.filter(lambda kv: kv[0] == key).values()
        if self.partitioner is not None:
            if self.needs_prepare:  # sortByKey's partitioner: sample its bounds first
                await prepare(self)
            part = self.partitioner.getPartition(key)
            return (await values._run(list, [part]))[0]
        return await values.collect()

    async def countApproxDistinct(self: RDD[Any], relativeSD: float = 0.05) -> int:
        """Approximate number of distinct elements (HyperLogLog), within about
        ``relativeSD`` relative standard deviation.

        >>> n = await sc.parallelize(list(range(1000)) * 2, 2).countApproxDistinct()
        >>> 900 < n < 1100
        True
        """
        if relativeSD < 0.000017:
            raise ValueError("relativeSD should be greater than 0.000017")
        # Here, not at module top: executors import this module with every RDD they
        # unpickle, in their first task, and only this action needs HyperLogLog.
        from .hyperloglog import MAX_PRECISION, HyperLogLog

        p = max(4, math.ceil(2.0 * math.log2(1.054 / relativeSD)))
        if p > MAX_PRECISION:
            finest = 1.054 / 2 ** (MAX_PRECISION / 2)
            raise ValueError(f"relativeSD ({relativeSD}) is finer than supported: it must "
                             f"be at least {finest:.5f} ({2 ** MAX_PRECISION} registers)")

        parts = await self._run(lambda it: HyperLogLog(p).add_all(it).registers)
        hll = HyperLogLog(p)
        for regs in parts:
            hll.merge_registers(regs)
        return hll.estimate()


def _local_combine(createCombiner: Callable, mergeValue: Callable,
                   mergeCombiners: Callable) -> Callable:
    """combineByKey on an RDD already partitioned as asked: merge within partitions.
    (The functions are closure variables, where the nested-use check looks.)"""
    def combine(_split, it):
        from .rdds.shuffled import _aggregate

        return _aggregate(it, Aggregator(createCombiner, mergeValue, mergeCombiners), False)

    return combine
