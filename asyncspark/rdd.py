"""The RDD: an immutable, partitioned, lazily computed collection with lineage.

Transformations are plain methods returning a new RDD. Actions are coroutines::

    n = await sc.parallelize(range(100), 4).filter(lambda x: x % 3 == 0).count()

Names, arguments and results follow PySpark's ``pyspark.RDD``.
"""

from __future__ import annotations

import os
import random
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, SupportsIndex, TypeVar

from ._accel import (
    PIPE_FILTER,
    PIPE_FLAT_MAP,
    PIPE_FLAT_MAP_VALUES,
    PIPE_KEY_BY,
    PIPE_MAP,
    PIPE_MAP_VALUES,
)
from .aggregations import AggregateRDDFunctions
from .dependency import Dependency
from .pairs import PairRDDFunctions
from .rdd_actions import RDDActions
from .rdds.piped import Piped
from .sampling import SamplingRDDFunctions
from .storage.block_manager import get_or_compute
from .storage.level import StorageLevel

if TYPE_CHECKING:
    from .context import Context
    from .planner import LineageContext
    from .taskcontext import TaskContext

__all__ = ["RDD"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K")
V = TypeVar("V")



class RDD(PairRDDFunctions, AggregateRDDFunctions, SamplingRDDFunctions, RDDActions,
          Generic[T]):
    """A Resilient Distributed Dataset (see the module docstring): transformations are
    plain methods, actions are coroutines.

    >>> import asyncspark
    >>> async def main():
    ...     async with asyncspark.Context("local[1]") as ctx:
    ...         rdd = ctx.parallelize(range(10), 2).map(lambda x: x * x)
    ...         return await rdd.filter(lambda x: x % 2).collect(), await rdd.sum()
    >>> asyncspark.run(main())
    ([1, 9, 25, 49, 81], 285)
    """

    _asyncspark_driver_only_ = "rdd"  # serializers.DRIVER_ONLY: refused inside tasks

    def __init__(self, ctx: LineageContext, deps: list[Dependency], num_partitions: int) -> None:
        self.ctx: LineageContext = ctx
        self._deps = deps
        self._num_partitions = num_partitions
        self._id = ctx.new_rdd_id() if ctx is not None else -1
        self.partitioner: Any = None  # a Partitioner when the layout by key is known
        self._name: str | None = None
        self.needs_prepare: bool = type(self).prepare_self is not RDD.prepare_self or any(
            d.rdd.needs_prepare for d in deps)
        self._callsite = _callsite()

    # -- plumbing ----------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["ctx"] = None  # the context stays on the driver
        state.pop("_shuffle_parents_cache", None)
        state.pop("_rdd_infos_cache", None)
        state.pop("_nested_use_checked", None)
        state.pop("_callsite", None)
        return state

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        checkpoint = self.__dict__.get("_checkpoint")
        if checkpoint is not None and checkpoint.rdd is not None:
            from .rdds.checkpoint import reduce_checkpointed

            return reduce_checkpointed(self)  # nothing of the old lineage travels
        return super().__reduce_ex__(protocol)

    @property
    def context(self) -> Context:
        """The ``Context`` this RDD was created on.

        >>> sc.parallelize([1]).context is sc
        True
        """
        if self.ctx is None:
            raise RuntimeError(
                "RDD transformations and actions can only be invoked by the driver, "
                "not inside other transformations (SPARK-5063)")
        return self.ctx

    @property
    def dependencies(self) -> list[Dependency]:
        """This RDD's dependencies on its parents (``Dependency`` objects: narrow
        ``OneToOneDependency``, ``RangeDependency``, ``ListDependency``; or a
        ``ShuffleDependency``).

        >>> rdd = sc.parallelize([(1, 2)])
        >>> [type(d).__name__ for d in rdd.map(str).dependencies], rdd.dependencies
        (['OneToOneDependency'], [])
        >>> [type(d).__name__ for d in rdd.partitionBy(2).dependencies]
        ['ShuffleDependency']
        """
        return list(self._deps)

    def getNumPartitions(self) -> int:
        """The number of partitions.

        >>> sc.parallelize(range(10), 3).getNumPartitions()
        3
        """
        return self._num_partitions

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[T]:
        """Internal (the engine's hook, which each RDD subclass implements; applications
        call actions instead): the elements of partition ``split``, on an executor."""
        raise NotImplementedError(type(self).__name__ + " must implement compute()")

    def iterator(self, split: int, task_ctx: TaskContext) -> Iterator[T]:
        """Internal (called by the engine and by subclasses' ``compute``): ``compute``, or
        for a persisted RDD the cached partition (computed and stored on first use)."""
        if self._storage_level is None:
            return self.compute(split, task_ctx)

        return get_or_compute(self, split, task_ctx)

    # -- persistence ---------------------------------------------------------------------

    _storage_level: StorageLevel | None = None  # the engine's level (storage/level.py)
    _user_level: StorageLevel | None = None  # the level persist() was given

    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD[T]:
        """Keep this RDD's partitions once computed (default ``MEMORY_ONLY``), on the
        executors that computed them, for later jobs. Lazy, as in PySpark: nothing is
        stored until an action computes a partition. Memory levels keep live objects
        (see ``StorageLevel``).

        >>> sc.range(3).persist(StorageLevel.MEMORY_AND_DISK).getStorageLevel()
        StorageLevel(True, True, False, False, 1)
        """

        level = storageLevel
        if not isinstance(level, StorageLevel):
            raise TypeError(f"persist() takes a StorageLevel, got {type(level).__name__}")
        current = self._user_level
        if current is not None and current != level:
            raise ValueError(
                f"Cannot change storage level of an RDD after it was already assigned a "
                f"level: {self!r} is persisted as {current!r}, asked for {level!r} "
                "(unpersist() it first)")
        if level.is_valid:
            self._user_level = level
            self._storage_level = _engine_level(level)
        else:
            self._user_level = self._storage_level = None
        return self

    def cache(self) -> RDD[T]:
        """``persist(StorageLevel.MEMORY_ONLY)``, PySpark's default for RDDs.

        >>> rdd = sc.parallelize([1, 2, 3]).cache()
        >>> rdd.is_cached, await rdd.sum(), await rdd.count()
        (True, 6, 3)
        >>> rdd.getStorageLevel() == StorageLevel.MEMORY_ONLY
        True
        """

        return self.persist(StorageLevel.MEMORY_ONLY)

    def unpersist(self, blocking: bool = False) -> RDD[T]:
        """Stop keeping this RDD: its cached blocks are removed from executors' memory,
        disk and the shared-memory store (in the background; ``blocking`` is accepted
        for PySpark compatibility).

        >>> rdd = sc.parallelize([1, 2]).cache()
        >>> await rdd.count()
        2
        >>> rdd.unpersist().is_cached
        False
        """
        if self._storage_level is not None:
            self._storage_level = self._user_level = None
            if self.ctx is not None:
                self.ctx.unpersist_rdd(self._id)
        return self

    def getStorageLevel(self) -> StorageLevel:
        """This RDD's storage level (``StorageLevel(False, False, False, False, 1)`` when
        not persisted).

        >>> sc.parallelize([1]).getStorageLevel()
        StorageLevel(False, False, False, False, 1)
        >>> rdd = sc.parallelize([1]).persist(StorageLevel.DISK_ONLY)
        >>> rdd.getStorageLevel() == StorageLevel.DISK_ONLY
        True
        """

        return self._user_level or StorageLevel.NONE

    @property
    def is_cached(self) -> bool:
        """Whether ``persist()``/``cache()`` was called (and not ``unpersist()``).

        >>> rdd = sc.parallelize([1])
        >>> rdd.is_cached, rdd.cache().is_cached, rdd.unpersist().is_cached
        (False, True, False)
        """
        return self._storage_level is not None

    async def prepare_self(self) -> None:
        """Internal (the scheduler's hook, awaited before a job): driver-side work an RDD
        needs done before its first job (e.g. zipWithIndex counts partitions)."""

    def user_functions(self) -> list[tuple[str, Any]]:
        """Internal (for the planner's error messages): ``(description, user function)``
        pairs, for naming unpicklable closures."""
        return []

    def plain_picklable(self) -> bool:
        """Internal (the planner's hook for serializing task binaries): whether this RDD
        alone (no parents) pickles with plain pickle exactly as with cloudpickle: only
        RDDs holding nothing but driver data of builtin types say so."""
        return False

    def _describe(self) -> str:
        return type(self).__name__

    def id(self) -> int:
        """A unique ID for this RDD (within its context).

        >>> sc.range(5).id() >= 0
        True
        """
        return self._id

    def name(self) -> str | None:
        """The name given by ``setName``, else None.

        >>> rdd = sc.parallelize([1])
        >>> rdd.name() is None, rdd.setName("one").name()
        (True, 'one')
        """
        return self._name

    def setName(self, name: str) -> RDD[T]:
        """Name this RDD (shown by ``toDebugString``); returns it.

        >>> sc.range(3).setName("numbers").name()
        'numbers'
        """
        self._name = name
        return self

    # -- checkpointing (rdds/checkpoint.py) ------------------------------------------------

    def checkpoint(self) -> None:
        """Save this RDD's partitions under ``sc.setCheckpointDir``'s directory after the
        next job that computes it, then read it from there: its lineage is truncated.

        >>> import tempfile, shutil
        >>> d = tempfile.mkdtemp()
        >>> sc.setCheckpointDir(d)
        >>> rdd = sc.parallelize(range(4), 2).map(lambda x: x * 10)
        >>> rdd.checkpoint()
        >>> rdd.isCheckpointed()
        False
        >>> await rdd.collect(), rdd.isCheckpointed(), rdd.getCheckpointFile().startswith(d)
        ([0, 10, 20, 30], True, True)
        >>> shutil.rmtree(d)
        """
        from .rdds.checkpoint import mark

        mark(self, local=False)

    def localCheckpoint(self) -> None:
        """As ``checkpoint()``, into the executors' local directories: faster, but a
        partition is lost with its executor (jobs needing it then fail).

        >>> rdd = sc.parallelize(range(3), 2).map(lambda x: x + 1)
        >>> rdd.localCheckpoint()
        >>> await rdd.collect(), rdd.isLocallyCheckpointed(), rdd.getCheckpointFile()
        ([1, 2, 3], True, None)
        """
        from .rdds.checkpoint import mark

        mark(self, local=True)

    @property
    def is_checkpointed(self) -> bool:
        """Whether ``checkpoint()`` was called (PySpark's attribute); ``isCheckpointed()``
        says whether the checkpoint is written.

        >>> import tempfile, shutil
        >>> d = tempfile.mkdtemp()
        >>> sc.setCheckpointDir(d)
        >>> rdd = sc.parallelize([1, 2])
        >>> rdd.checkpoint()
        >>> rdd.is_checkpointed, rdd.isCheckpointed()
        (True, False)
        >>> shutil.rmtree(d)
        """
        checkpoint = self.__dict__.get("_checkpoint")
        return checkpoint is not None and not checkpoint.local

    def isCheckpointed(self) -> bool:
        """Whether a checkpoint (reliable or local) of this RDD is written: after
        ``checkpoint()`` or ``localCheckpoint()`` and the next job that computed it.

        >>> rdd = sc.parallelize([1, 2], 2)
        >>> rdd.localCheckpoint()
        >>> before = rdd.isCheckpointed()
        >>> await rdd.count(), before, rdd.isCheckpointed()
        (2, False, True)
        """
        checkpoint = self.__dict__.get("_checkpoint")
        return checkpoint is not None and checkpoint.rdd is not None

    def isLocallyCheckpointed(self) -> bool:
        """Whether a local checkpoint (``localCheckpoint()``) of this RDD is written.

        >>> rdd = sc.parallelize([1, 2], 2)
        >>> rdd.localCheckpoint()
        >>> before = rdd.isLocallyCheckpointed()
        >>> await rdd.count(), before, rdd.isLocallyCheckpointed()
        (2, False, True)
        """
        checkpoint = self.__dict__.get("_checkpoint")
        return checkpoint is not None and checkpoint.local and checkpoint.rdd is not None

    def getCheckpointFile(self) -> str | None:
        """The directory of a written reliable checkpoint, else None.

        >>> import tempfile, shutil
        >>> d = tempfile.mkdtemp()
        >>> sc.setCheckpointDir(d)
        >>> rdd = sc.parallelize([1, 2], 2)
        >>> rdd.checkpoint()
        >>> rdd.getCheckpointFile() is None
        True
        >>> await rdd.count(), rdd.getCheckpointFile().startswith(sc.getCheckpointDir())
        (2, True)
        >>> shutil.rmtree(d)
        """
        checkpoint = self.__dict__.get("_checkpoint")
        if checkpoint is None or checkpoint.local or checkpoint.rdd is None:
            return None
        return checkpoint.rdd.path

    def toDebugString(self) -> bytes:
        """A description of this RDD and its lineage, one ancestor a line (indented
        by depth, with partitions, names and storage levels), as bytes (as PySpark's).

        >>> rdd = sc.parallelize(range(4), 2).map(str).setName("strings")
        >>> print(rdd.toDebugString().decode())  # doctest: +ELLIPSIS
        (2) strings MapPartitionsRDD[...] at map at ... []
          +-ParallelCollectionRDD[...] at parallelize at ... []
        """
        lines: list[str] = []

        def walk(r: RDD[Any], depth: int) -> None:
            label = f"({r._num_partitions}) " if depth == 0 else ""
            name = f"{r._name} " if r._name else ""
            level = r._user_level
            lines.append(f"{'  ' * depth}{'+-' if depth else ''}{label}{name}{r!r} "
                         f"[{level if level else ''}]")
            for d in r._deps:
                walk(d.rdd, depth + 1)

        walk(self, 0)
        return "\n".join(lines).encode()

    def __repr__(self) -> str:
        """PySpark's shape: ``Name[id] at operation at file:line`` (the user's line that
        created the RDD)."""
        op, filename, line = self.__dict__.get("_callsite") or ("?", "<unknown>", 0)
        return f"{self._describe()}[{self._id}] at {op} at {filename}:{line}"

    # -- narrow transformations ---------------------------------------------------------

    def _map_partitions(self, f, preserves=False, what="mapPartitions()", user_func=None):
        from .rdds.narrow import MapPartitionsRDD

        return MapPartitionsRDD(self, f, preserves, what, user_func)

    def map(self, f: Callable[[T], U], preservesPartitioning: bool = False) -> RDD[U]:
        """A new RDD of ``f`` applied to every element.

        >>> await sc.parallelize([1, 2, 3], 2).map(lambda x: x * x).collect()
        [1, 4, 9]
        """
        return self._map_partitions(Piped(PIPE_MAP, f), preservesPartitioning,
                                    "map()", f)

    def flatMap(self, f: Callable[[T], Iterable[U]],
                preservesPartitioning: bool = False) -> RDD[U]:
        """A new RDD of the elements of ``f(x)`` (an iterable) for every element ``x``.

        >>> await sc.parallelize([1, 2, 3], 2).flatMap(lambda x: range(x)).collect()
        [0, 0, 1, 0, 1, 2]
        """
        return self._map_partitions(Piped(PIPE_FLAT_MAP, f),
                                    preservesPartitioning, "flatMap()", f)

    def filter(self, f: Callable[[T], object]) -> RDD[T]:
        """A new RDD of the elements for which ``f`` is true.

        >>> await sc.parallelize(range(10), 3).filter(lambda x: x % 3 == 0).collect()
        [0, 3, 6, 9]
        """
        return self._map_partitions(Piped(PIPE_FILTER, f), True, "filter()", f)

    def mapPartitions(self, f: Callable[[Iterator[T]], Iterable[U]],
                      preservesPartitioning: bool = False) -> RDD[U]:
        """A new RDD of ``f`` applied to each partition's iterator (``f`` returns an
        iterable: the new partition's elements).

        >>> await sc.parallelize([1, 2, 3, 4], 2).mapPartitions(lambda it: [sum(it)]).collect()
        [3, 7]
        """
        return self._map_partitions(lambda _, it: f(it), preservesPartitioning,
                                    "mapPartitions()", f)

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[T]], Iterable[U]],
                               preservesPartitioning: bool = False) -> RDD[U]:
        """As ``mapPartitions``, ``f`` also given the partition's index.

        >>> rdd = sc.parallelize(["a", "b", "c"], 2)
        >>> await rdd.mapPartitionsWithIndex(lambda i, it: [(i, x) for x in it]).collect()
        [(0, 'a'), (1, 'b'), (1, 'c')]
        """
        return self._map_partitions(f, preservesPartitioning, "mapPartitionsWithIndex()")

    def mapPartitionsWithSplit(self, f: Callable[[int, Iterator[T]], Iterable[U]],
                               preservesPartitioning: bool = False) -> RDD[U]:
        """``mapPartitionsWithIndex`` under its old name (deprecated in PySpark).

        >>> await sc.parallelize(range(4), 2).mapPartitionsWithSplit(lambda i, it: [i]).collect()
        [0, 1]
        """
        return self.mapPartitionsWithIndex(f, preservesPartitioning)

    def glom(self) -> RDD[list[T]]:
        """A new RDD with one element per partition: the list of its elements.

        >>> await sc.parallelize(range(5), 2).glom().collect()
        [[0, 1], [2, 3, 4]]
        """
        return self._map_partitions(lambda _, it: [list(it)], False, "glom()")

    def keyBy(self, f: Callable[[T], K]) -> RDD[tuple[K, T]]:
        """A pair RDD of ``(f(x), x)`` for every element ``x``.

        >>> await sc.parallelize(["apple", "fig"]).keyBy(len).collect()
        [(5, 'apple'), (3, 'fig')]
        """
        return self._map_partitions(Piped(PIPE_KEY_BY, f), False, "keyBy()", f)

    def mapValues(self: RDD[tuple[K, V]], f: Callable[[V], U]) -> RDD[tuple[K, U]]:
        """A pair RDD with ``f`` applied to every value, the keys (and the partitioning)
        kept.

        >>> await sc.parallelize([("a", 1), ("b", 2)]).mapValues(lambda v: v * 10).collect()
        [('a', 10), ('b', 20)]
        """
        return self._map_partitions(Piped(PIPE_MAP_VALUES, f), True,
                                    "mapValues()", f)

    def flatMapValues(self: RDD[tuple[K, V]],
                      f: Callable[[V], Iterable[U]]) -> RDD[tuple[K, U]]:
        """A pair RDD of ``(k, w)`` for every ``w`` in ``f(v)``, for every pair ``(k, v)``;
        the partitioning is kept.

        >>> await sc.parallelize([("a", "xy"), ("b", "z")]).flatMapValues(list).collect()
        [('a', 'x'), ('a', 'y'), ('b', 'z')]
        """
        return self._map_partitions(Piped(PIPE_FLAT_MAP_VALUES, f), True,
                                    "flatMapValues()", f)

    def keys(self: RDD[tuple[K, V]]) -> RDD[K]:
        """The keys of a pair RDD.

        >>> await sc.parallelize([("a", 1), ("b", 2)]).keys().collect()
        ['a', 'b']
        """
        return self._map_partitions(lambda _, it: (kv[0] for kv in it), False, "keys()")

    def values(self: RDD[tuple[K, V]]) -> RDD[V]:
        """The values of a pair RDD.

        >>> await sc.parallelize([("a", 1), ("b", 2)]).values().collect()
        [1, 2]
        """
        return self._map_partitions(lambda _, it: (kv[1] for kv in it), False, "values()")

    def sample(self, withReplacement: bool, fraction: float,
               seed: int | None = None) -> RDD[T]:
        """A sampled subset, with PySpark's ``RDDSampler`` (same seed -> same sample).

        >>> rdd = sc.parallelize(range(100), 4)
        >>> s = await rdd.sample(False, 0.2, seed=7).collect()
        >>> s == await rdd.sample(False, 0.2, seed=7).collect(), set(s) <= set(range(100))
        (True, True)
        """
        if fraction < 0.0:
            raise ValueError(f"Fraction must be nonnegative, got {fraction}")
        if seed is None:
            seed = random.randint(0, sys.maxsize)
        from .rdds.partition_funcs import Sampler

        sampler = Sampler(withReplacement, fraction, seed)
        return self._map_partitions(sampler.func, True, "sample()")

    def union(self, other: RDD[U]) -> RDD[T | U]:
        """The elements of this RDD then those of ``other`` (duplicates kept; ``rdd + other``
        is the same).

        >>> rdd = sc.parallelize([1, 2])
        >>> await rdd.union(sc.parallelize([2, 3])).collect(), await (rdd + rdd).collect()
        ([1, 2, 2, 3], [1, 2, 1, 2])
        """
        from .rdds.narrow import UnionRDD

        return UnionRDD(self.context, [self, other])

    def __add__(self, other: RDD[U]) -> RDD[T | U]:
        if not isinstance(other, RDD):
            raise TypeError(f"cannot add an RDD and {type(other).__name__}")
        return self.union(other)

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD[T]:
        """The same elements in ``numPartitions`` partitions: by merging neighbouring
        partitions without a shuffle (so no more partitions than there are), or with
        ``shuffle=True`` by a round-robin shuffle (as ``repartition``).

        >>> await sc.parallelize(range(5), 3).coalesce(1).glom().collect()
        [[0, 1, 2, 3, 4]]
        >>> sc.parallelize(range(5), 2).coalesce(4, shuffle=True).getNumPartitions()
        4
        """
        if numPartitions < 1:
            raise ValueError(f"Number of partitions ({numPartitions}) must be positive.")
        if shuffle:
            return self._coalesce_shuffle(numPartitions)
        from .rdds.narrow import CoalescedRDD

        return CoalescedRDD(self, numPartitions)

    def zip(self, other: RDD[U]) -> RDD[tuple[T, U]]:
        """Pairs of the elements of this RDD and ``other`` at equal positions; both must
        have as many partitions and as many elements in each.

        >>> await sc.parallelize([1, 2, 3], 2).zip(sc.parallelize("abc", 2)).collect()
        [(1, 'a'), (2, 'b'), (3, 'c')]
        """
        from .rdds.narrow import ZippedPartitionsRDD

        return ZippedPartitionsRDD(self, other)

    def zipWithIndex(self) -> RDD[tuple[T, int]]:
        """Each element with its index in the RDD's order: ``(x, i)``. Runs a job first
        (before the RDD's first action) to count the elements of every partition but the last.

        >>> await sc.parallelize(["a", "b", "c"], 2).zipWithIndex().collect()
        [('a', 0), ('b', 1), ('c', 2)]
        """
        from .rdds.narrow import ZippedWithIndexRDD

        return ZippedWithIndexRDD(self)

    def zipWithUniqueId(self) -> RDD[tuple[T, int]]:
        """Each element with a unique id: the ``i``-th element of partition ``k`` (of
        ``n``) gets ``i * n + k``. No job runs, but the ids have gaps (see ``zipWithIndex``).

        >>> await sc.parallelize(["a", "b", "c", "d", "e"], 3).zipWithUniqueId().collect()
        [('a', 0), ('b', 1), ('c', 4), ('d', 2), ('e', 5)]
        """
        n = self._num_partitions

        def func(k, it):
            for i, v in enumerate(it):
                yield v, i * n + k

        return self._map_partitions(func, False, "zipWithUniqueId()")

    def pipe(self, command: str, env: dict[str, str] | None = None,
             checkCode: bool = False) -> RDD[str]:
        """Each partition's elements, one per line, through ``command``'s stdin; its stdout
        lines are the new elements. ``env`` is added to the executor's environment.

        >>> await sc.parallelize(["a", "b", "c"], 2).pipe("tr a-z A-Z").collect()
        ['A', 'B', 'C']
        """
        from .rdds.partition_funcs import pipe_partition

        args = shlex.split(command)
        extra_env = dict(env or {})

        def func(_, iterator):
            return pipe_partition(args, command, extra_env, checkCode, iterator)

        return self._map_partitions(func, False, "pipe()")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _callsite() -> tuple[str, str, int]:
    """(public method, file, line) of the user's call that is creating an RDD: the first
    frame outside asyncspark, and the last public function inside it before that."""
    f: FrameType | None = sys._getframe(2)
    op = "?"
    while f is not None and f.f_code.co_filename.startswith(_PACKAGE_DIR):
        name = f.f_code.co_name
        if not name.startswith("_") and name not in ("transformation", "action", "func"):
            op = name
        f = f.f_back
    if f is None:
        return op, "<unknown>", 0
    return op, f.f_code.co_filename, f.f_lineno


def _engine_level(level: StorageLevel) -> StorageLevel:
    """The engine's level for a user's: memory levels (not off-heap) keep live objects."""
    if level.useMemory and not level.useOffHeap and not level.deserialized:
        return StorageLevel(level.useDisk, True, False, True, level.replication)
    return level
