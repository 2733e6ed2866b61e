"""The RDD's aggregating actions (a mixin of ``RDD``, as ``PairRDDFunctions`` is):
tree reductions, numeric statistics (``sum``/``max``/``min``/``stats``/``mean``/...),
``histogram``, ``top`` and ``takeOrdered``; and ``_fail_on_stopiteration``, the wrapper of
user functions that the RDD's folds share. Built only on the RDD's public transformations
and its ``reduce``/``_run``; names and results follow PySpark's ``pyspark.RDD``."""

from __future__ import annotations

import copy
import heapq
import math
from bisect import bisect_right
from collections.abc import Callable
from functools import reduce as _reduce
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar

from ._accel import STOP_ITERATION_MSG
from .statcounter import StatCounter

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["AggregateRDDFunctions"]

T = TypeVar("T")
U = TypeVar("U")


class AggregateRDDFunctions:
    """Aggregating actions of ``RDD`` (mixed into it; ``self`` is an RDD)."""

    __slots__ = ()

    async def treeReduce(self: RDD[T], f: Callable[[T, T], T], depth: int = 2) -> T:
        """``reduce`` in a tree of partial results, ``depth`` levels deep (see
        ``treeAggregate``); ``ValueError`` on an empty RDD.

        >>> await sc.parallelize(range(1, 11), 4).treeReduce(lambda a, b: a + b)
        55
        """
        if depth < 1:
            raise ValueError(f"Depth cannot be smaller than 1 but got {depth}.")
        zero = (None, True)  # (value, is_dummy) so that empty partitions are harmless

        def op(x, y):
            if x[1]:
                return y
            if y[1]:
                return x
            return f(x[0], y[0]), False

        reduced = await self.map(lambda x: (x, False)).treeAggregate(zero, op, op, depth)
        if reduced[1]:
            raise ValueError("Cannot reduce empty RDD.")
        return reduced[0]

    async def treeAggregate(self: RDD[T], zeroValue: U, seqOp: Callable[[U, T], U],
                            combOp: Callable[[U, U], U], depth: int = 2) -> U:
        """``aggregate`` in a tree of partial results, ``depth`` levels deep.

        Intermediate levels combine groups of partial results on executors (narrowly,
        by coalescing), so the driver merges only about ``n ** (1/depth)`` values.

        >>> add = lambda a, b: a + b
        >>> await sc.parallelize(range(10), 4).treeAggregate(0, add, add, depth=2)
        45
        """
        if depth < 1:
            raise ValueError(f"Depth cannot be smaller than 1 but got {depth}.")
        if self._num_partitions == 0:
            return copy.deepcopy(zeroValue)
        seqOp = _fail_on_stopiteration(seqOp)
        combOp = _fail_on_stopiteration(combOp)

        fold = _partition_folder(zeroValue, seqOp)
        partial = self.mapPartitions(lambda it: iter((fold(it),)))
        n = partial.getNumPartitions()
        scale = max(math.ceil(n ** (1.0 / depth)), 2)
        while n > scale + n / scale:
            n = int(n / scale)

            def combine(it):
                it = iter(it)
                for first in it:
                    yield _reduce(combOp, it, first)

            partial = partial.coalesce(n).mapPartitions(combine)
        vals = await partial.collect()
        return _reduce(combOp, vals, copy.deepcopy(zeroValue))

    async def sum(self: RDD[T]) -> T:
        """The sum of the elements (0 for an empty RDD).

        >>> await sc.parallelize([1.5, 2.5, 3], 2).sum(), await sc.parallelize([]).sum()
        (7.0, 0)
        """
        return sum(await self._run(sum), 0)

    async def max(self: RDD[T], key: Callable[[T], Any] | None = None) -> T:
        """The largest element (by ``key``, when given).

        >>> rdd = sc.parallelize([3, -7, 5], 2)
        >>> await rdd.max(), await rdd.max(key=abs)
        (5, -7)
        """
        if key is None:
            return await self.reduce(max)
        return await self.reduce(lambda a, b: max(a, b, key=key))

    async def min(self: RDD[T], key: Callable[[T], Any] | None = None) -> T:
        """The smallest element (by ``key``, when given).

        >>> rdd = sc.parallelize([3, -7, 5], 2)
        >>> await rdd.min(), await rdd.min(key=abs)
        (-7, 3)
        """
        if key is None:
            return await self.reduce(min)
        return await self.reduce(lambda a, b: min(a, b, key=key))

    async def stats(self: RDD[Any]) -> StatCounter:
        """A ``StatCounter`` of the elements (count, mean, variance, max, min), in one job.

        >>> s = await sc.parallelize([1, 2, 3, 4], 2).stats()
        >>> s.count(), s.mean(), s.max(), s.min()
        (4, 2.5, 4, 1)
        """
        parts = await self._run(StatCounter)
        return _reduce(StatCounter.mergeStats, parts, StatCounter())

    async def mean(self) -> float:
        """The arithmetic mean of the elements.

        >>> await sc.parallelize([1, 2, 3, 4], 2).mean()
        2.5
        """
        return (await self.stats()).mean()

    async def variance(self) -> float:
        """The population variance of the elements (divided by ``n``).

        >>> await sc.parallelize([1, 3], 2).variance()
        1.0
        """
        return (await self.stats()).variance()

    async def stdev(self) -> float:
        """The population standard deviation of the elements.

        >>> await sc.parallelize([1, 3], 2).stdev()
        1.0
        """
        return (await self.stats()).stdev()

    async def sampleVariance(self) -> float:
        """The sample variance of the elements (divided by ``n - 1``).

        >>> await sc.parallelize([1, 3], 2).sampleVariance()
        2.0
        """
        return (await self.stats()).sampleVariance()

    async def sampleStdev(self) -> float:
        """The sample standard deviation of the elements.

        >>> await sc.parallelize([1, 3], 2).sampleStdev()
        1.4142135623730951
        """
        return (await self.stats()).sampleStdev()

    async def histogram(self: RDD[Any], buckets: int | list[Any] | tuple[Any, ...]
                        ) -> tuple[list[Any], list[int]]:
        """Counts per bucket, as PySpark: ``(buckets, counts)``; the last bucket is closed.

        >>> rdd = sc.parallelize(range(11), 2)
        >>> await rdd.histogram(2), await rdd.histogram([0, 5, 10])
        (([0, 5, 10], [5, 6]), ([0, 5, 10], [5, 6]))
        """
        if isinstance(buckets, int):
            if buckets < 1:
                raise ValueError("number of buckets must be >= 1")
            filtered = self.filter(_comparable)
            try:
                minv, maxv = await filtered.map(lambda x: (x, x)).reduce(
                    lambda a, b: (min(a[0], b[0]), max(a[1], b[1])))
            except ValueError as e:
                if "empty" in str(e):
                    raise ValueError("can not generate buckets from empty RDD") from None
                raise
            if minv == maxv or buckets == 1:
                return [minv, maxv], [await filtered.count()]
            try:
                inc = (maxv - minv) / buckets
            except TypeError:
                raise TypeError("Can not generate buckets with non-number in RDD") from None
            if math.isinf(inc):
                raise ValueError("Can not generate buckets with infinite value")
            inc = int(inc)
            if inc * buckets != maxv - minv:
                inc = (maxv - minv) * 1.0 / buckets
            bounds = [i * inc + minv for i in range(buckets)]
            bounds.append(maxv)
            result_buckets = bounds
            even = True
        elif isinstance(buckets, (list, tuple)):
            if len(buckets) < 2:
                raise ValueError("buckets should have more than one value")
            if any(b is None or (isinstance(b, float) and math.isnan(b)) for b in buckets):
                raise ValueError("can not have None or NaN in buckets")
            if sorted(buckets) != list(buckets):
                raise ValueError("buckets should be sorted")
            if len(set(buckets)) != len(buckets):
                raise ValueError("buckets should not contain duplicated values")
            bounds = list(buckets)
            result_buckets = buckets  # returned as given (a tuple stays a tuple)
            minv, maxv = bounds[0], bounds[-1]
            even = False
            inc = None
            try:
                steps = [bounds[i + 1] - bounds[i] for i in range(len(bounds) - 1)]
            except TypeError:
                pass
            else:
                if max(steps) - min(steps) < 1e-10:
                    even = True
                    inc = (maxv - minv) / (len(bounds) - 1)
        else:
            raise TypeError("buckets should be a list or tuple or number(int or long)")

        def count_buckets(it):
            counters = [0] * len(bounds)
            for i in it:
                if i is None or (isinstance(i, float) and math.isnan(i)) or i > maxv or i < minv:
                    continue
                t = int((i - minv) / inc) if even else bisect_right(bounds, i) - 1
                counters[t] += 1
            last = counters.pop()
            counters[-1] += last
            return counters

        parts = await self._run(count_buckets)
        total = [0] * (len(bounds) - 1)
        for p in parts:
            total = [a + b for a, b in zip(total, p, strict=True)]
        return result_buckets, total

    async def top(self: RDD[T], num: int, key: Callable[[T], Any] | None = None) -> list[T]:
        """The ``num`` largest elements, in descending order.

        >>> rdd = sc.parallelize([4, 1, 7, 3], 2)
        >>> await rdd.top(2), await rdd.top(2, key=lambda x: -x)
        ([7, 4], [1, 3])
        """
        parts = await self._run(lambda it: heapq.nlargest(num, it, key=key))
        return heapq.nlargest(num, chain.from_iterable(parts), key=key)

    async def takeOrdered(self: RDD[T], num: int,
                          key: Callable[[T], Any] | None = None) -> list[T]:
        """The ``num`` smallest elements (by ``key``), in ascending order.

        >>> rdd = sc.parallelize([4, 1, 7, 3], 2)
        >>> await rdd.takeOrdered(3), await rdd.takeOrdered(3, key=lambda x: -x)
        ([1, 3, 4], [7, 4, 3])
        """
        if num < 0:
            raise ValueError("top N cannot be negative.")
        if self._num_partitions == 0 or num == 0:
            return []
        parts = await self._run(lambda it: heapq.nsmallest(num, it, key=key))
        return heapq.nsmallest(num, chain.from_iterable(parts), key=key)


def _partition_folder(zeroValue: Any, seqOp: Callable[[Any, Any], Any]
                      ) -> Callable[[Any], Any]:
    """A function folding one partition's records into its own copy of ``zeroValue``."""

    def fold(it):
        acc = copy.deepcopy(zeroValue)
        for x in it:
            acc = seqOp(acc, x)
        return acc

    return fold


def _fail_on_stopiteration(f: Callable[..., Any]) -> Callable[..., Any]:
    """``f``, with a ``StopIteration`` it raises turned into a ``RuntimeError``.

    A ``StopIteration`` escaping a user function would otherwise end the iteration that
    called it, silently dropping the rest of the partition (PySpark's SPARK-23754).
    """
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except StopIteration as exc:
            raise RuntimeError(STOP_ITERATION_MSG) from exc

    return wrapper


def _comparable(x) -> bool:
    if x is None:
        return False
    return not (type(x) is float and math.isnan(x))
