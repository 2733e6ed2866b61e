"""The RDD's core actions (a mixin of ``RDD``, as ``AggregateRDDFunctions`` is): the
coroutines that run a job and bring its results to the driver (``collect``, ``count``,
``take``, ``reduce``, ``fold``, ``countByValue``, ``foreach``, ``toLocalIterator``, ...) or
write them out (``saveAsTextFile``, ``saveAsPickleFile``); and ``_run``, through which
every action of the RDD and its mixins submits its job. Names and results follow
PySpark's ``pyspark.RDD``."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import reduce as _reduce
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar

from ._accel import count
from .aggregations import _fail_on_stopiteration, _partition_folder
from .planner import check_no_nested_use

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["RDDActions"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K")
V = TypeVar("V")


class RDDActions:
    """The core actions of ``RDD`` (mixed into it; ``self`` is an RDD)."""

    __slots__ = ()

    async def _run(self: RDD[Any], func: Callable, partitions: Iterable[int] | None = None) -> list:
        ctx = self.context
        check_no_nested_use(self, func)
        return await ctx.run_job(self, func, partitions)

    async def collect(self: RDD[T]) -> list[T]:
        """All the elements, in partition order, as a list on the driver.

        >>> await sc.parallelize([1, 2, 3, 4], 2).collect()
        [1, 2, 3, 4]
        """
        parts = await self._run(list)
        return list(chain.from_iterable(parts))

    async def count(self: RDD[T]) -> int:
        """The number of elements.

        >>> await sc.parallelize(range(10), 3).count()
        10
        """
        return sum(await self._run(count))

    async def take(self: RDD[T], num: int) -> list[T]:
        """The first ``num`` elements: scans one partition, then more (as Spark's take).

        >>> await sc.parallelize(range(10), 3).take(4)
        [0, 1, 2, 3]
        """
        items: list = []
        total = self._num_partitions
        scanned = 0
        while len(items) < num and scanned < total:
            to_try = 1
            if scanned > 0:
                if not items:
                    to_try = scanned * 4
                else:
                    to_try = int(1.5 * num * scanned / len(items)) - scanned
                    to_try = min(max(to_try, 1), scanned * 4)
            left = num - len(items)

            def take_up_to(it, left=left):
                out = []
                if left > 0:
                    for x in it:
                        out.append(x)
                        if len(out) >= left:
                            break
                return out

            parts = range(scanned, min(scanned + to_try, total))
            for res in await self._run(take_up_to, parts):
                items.extend(res)
            scanned += to_try
        return items[:num]

    async def first(self: RDD[T]) -> T:
        """The first element (``ValueError`` on an empty RDD).

        >>> await sc.parallelize([5, 6, 7], 2).first()
        5
        """
        rs = await self.take(1)
        if rs:
            return rs[0]
        raise ValueError("RDD is empty")

    async def isEmpty(self: RDD[T]) -> bool:
        """Whether the RDD has no element (computes no more than ``take(1)`` does).

        >>> await sc.parallelize([], 2).isEmpty(), await sc.parallelize([0]).isEmpty()
        (True, False)
        """
        return self._num_partitions == 0 or len(await self.take(1)) == 0

    async def reduce(self: RDD[T], f: Callable[[T, T], T]) -> T:
        """Combine the elements with ``f`` (commutative and associative): within each
        partition, then the partitions' results on the driver. ``ValueError`` on an empty RDD.

        >>> await sc.parallelize(range(1, 6), 2).reduce(lambda a, b: a * b)
        120
        """
        f = _fail_on_stopiteration(f)

        def func(it):
            it = iter(it)
            for initial in it:
                return [_reduce(f, it, initial)]
            return []

        vals = list(chain.from_iterable(await self._run(func)))
        if vals:
            return _reduce(f, vals)
        raise ValueError("Can not reduce() empty RDD")

    async def fold(self: RDD[T], zeroValue: T, op: Callable[[T, T], T]) -> T:
        """Fold each partition from ``zeroValue``, then the partition results from
        ``zeroValue`` again. ``op`` may modify its first argument: every partition starts
        from its own copy of ``zeroValue``, and the caller's object is left alone.

        >>> await sc.parallelize([1, 2, 3, 4], 2).fold(0, lambda a, b: a + b)
        10
        """
        return await self.aggregate(zeroValue, op, op)

    async def aggregate(self: RDD[T], zeroValue: U, seqOp: Callable[[U, T], U],
                        combOp: Callable[[U, U], U]) -> U:
        """As ``fold`` with a separate ``seqOp`` within partitions and ``combOp`` across.

        >>> seq = lambda acc, x: (acc[0] + x, acc[1] + 1)
        >>> comb = lambda a, b: (a[0] + b[0], a[1] + b[1])
        >>> await sc.parallelize([1, 2, 3, 4], 2).aggregate((0, 0), seq, comb)
        (10, 4)
        """
        seqOp = _fail_on_stopiteration(seqOp)
        combOp = _fail_on_stopiteration(combOp)

        func = _partition_folder(zeroValue, seqOp)
        return _reduce(combOp, await self._run(func), copy.deepcopy(zeroValue))

    async def countByValue(self: RDD[T]) -> defaultdict[T, int]:
        """How many times each distinct element occurs, as a ``defaultdict(int)``.

        >>> sorted((await sc.parallelize(["a", "b", "a"], 2).countByValue()).items())
        [('a', 2), ('b', 1)]
        """
        def count_partition(it):
            counts: defaultdict = defaultdict(int)
            for x in it:
                counts[x] += 1
            return counts

        parts = await self._run(count_partition)
        if not parts:
            raise ValueError("Can not reduce() empty RDD")
        merged = parts[0]
        for m in parts[1:]:
            for k, v in m.items():
                merged[k] += v
        return merged

    async def countByKey(self: RDD[tuple[K, V]]) -> defaultdict[K, int]:
        """How many pairs each key has, as a ``defaultdict(int)``.

        >>> sorted((await sc.parallelize([("a", 1), ("b", 2), ("a", 3)]).countByKey()).items())
        [('a', 2), ('b', 1)]
        """
        return await self.map(lambda x: x[0]).countByValue()

    async def collectAsMap(self: RDD[tuple[K, V]]) -> dict[K, V]:
        """The pairs as a ``dict`` on the driver (of pairs with equal keys, the last wins).

        >>> await sc.parallelize([(1, "a"), (2, "b"), (1, "c")]).collectAsMap()
        {1: 'c', 2: 'b'}
        """
        return dict(await self.collect())

    async def foreach(self: RDD[T], f: Callable[[T], object]) -> None:
        """Call ``f`` on every element, on the executors, for its side effects (an
        accumulator brings results back to the driver).

        >>> acc = sc.accumulator(0)
        >>> await sc.parallelize([1, 2, 3], 2).foreach(lambda x: acc.add(x))
        >>> acc.value
        6
        """
        f = _fail_on_stopiteration(f)

        def process(it):
            for x in it:
                f(x)

        await self._run(process)

    async def foreachPartition(self: RDD[T], f: Callable[[Iterator[T]], object]) -> None:
        """Call ``f`` on each partition's iterator, on the executors (a generator
        function's body runs: its results are consumed and dropped).

        >>> acc = sc.accumulator(0)
        >>> await sc.parallelize(range(5), 2).foreachPartition(lambda it: acc.add(len(list(it))))
        >>> acc.value
        5
        """
        def process(it):
            r = f(it)
            try:
                r = iter(r)  # a generator function's body runs as it is consumed
            except TypeError:
                return  # None or another non-iterable result: nothing to consume
            for _ in r:
                pass

        await self._run(process)

    async def saveAsTextFile(self: RDD[T], path: str,
                             compressionCodecClass: str | None = None) -> None:
        """Write one ``part-NNNNN`` text file per partition under ``path`` (a new directory).

        Each task writes a temporary file and renames it into place; ``_SUCCESS`` marks a
        complete output. An existing ``path`` is refused, as Hadoop's output format does.

        >>> import tempfile, shutil, os
        >>> d = tempfile.mkdtemp()
        >>> await sc.parallelize(["a", "b", "c"], 2).saveAsTextFile(os.path.join(d, "t"))
        >>> sorted(f for f in os.listdir(os.path.join(d, "t")) if not f.startswith("."))
        ['_SUCCESS', 'part-00000', 'part-00001']
        >>> await sc.textFile(os.path.join(d, "t")).collect()
        ['a', 'b', 'c']
        >>> shutil.rmtree(d)
        """
        from .output import save_as_text_file

        await save_as_text_file(self, path, compressionCodecClass)

    async def saveAsPickleFile(self: RDD[T], path: str, batchSize: int = 10) -> None:
        """Write the elements as pickled batches of ``batchSize`` (0: 1024), one
        ``part-NNNNN`` file per partition under the new directory ``path``; read them
        back with ``sc.pickleFile(path)``.

        >>> import tempfile, shutil, os
        >>> d = tempfile.mkdtemp()
        >>> await sc.parallelize([1, "two", (3.0, None)], 2).saveAsPickleFile(
        ...     os.path.join(d, "p"))
        >>> await sc.pickleFile(os.path.join(d, "p")).collect()
        [1, 'two', (3.0, None)]
        >>> shutil.rmtree(d)
        """
        from .output import save_as_pickle_file

        await save_as_pickle_file(self, path, batchSize)

    async def toLocalIterator(self: RDD[T],
                              prefetchPartitions: bool = False) -> AsyncIterator[T]:
        """Iterate the elements, fetching one partition at a time (``async for``).

        Each partition is a job of its own, run when iteration reaches it; with
        ``prefetchPartitions`` the next partition's job runs while the current one is
        consumed. Closing the iterator early (``aclose()``, or leaving an
        ``contextlib.aclosing`` block) cancels a prefetch under way.

        >>> [x async for x in sc.parallelize(range(5), 2).toLocalIterator()]
        [0, 1, 2, 3, 4]
        """
        import asyncio

        n = self._num_partitions
        nxt: asyncio.Future | None = None
        try:
            for i in range(n):
                if nxt is None:
                    part = (await self._run(list, [i]))[0]
                else:
                    part = (await nxt)[0]
                    nxt = None
                if prefetchPartitions and i + 1 < n:
                    nxt = asyncio.ensure_future(self._run(list, [i + 1]))
                for x in part:
                    yield x
        finally:
            if nxt is not None:
                nxt.cancel()  # also marks a failure of a finished prefetch as seen
