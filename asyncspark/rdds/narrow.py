"""RDDs with narrow dependencies only: pipelined into the tasks of one stage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from .._accel import count
from ..dependency import ListDependency, OneToOneDependency, RangeDependency
from ..rdd import RDD

if TYPE_CHECKING:
    from ..planner import LineageContext
    from ..taskcontext import TaskContext

__all__ = ["CartesianRDD", "CoalescedRDD", "MapPartitionsRDD", "UnionRDD", "ZippedPartitionsRDD",
           "ZippedWithIndexRDD"]


class MapPartitionsRDD(RDD[Any]):
    """``f(split, iterator)`` applied to each partition of the parent.

    Chains of narrow transformations (``map().filter().map()``) compose into one function
    over the first non-pipelinable parent, as PySpark's ``PipelinedRDD`` does, so a task
    runs one generator chain and the lineage stays short.
    """

    def __init__(self, prev: RDD[Any], f: Callable, preservesPartitioning: bool = False,
                 what: str = "mapPartitions()", user_func: Any = None) -> None:
        funcs = [(what, user_func if user_func is not None else f)]
        if isinstance(prev, MapPartitionsRDD) and prev._pipelinable():
            prev_f = prev._func
            parent = prev._parent

            def composed(split, it, _f=f, _g=prev_f):
                return _f(split, _g(split, it))

            func = composed
            funcs = prev._user_funcs + funcs
        else:
            parent = prev
            func = f
        super().__init__(prev.ctx, [OneToOneDependency(parent)], parent._num_partitions)
        self._parent = parent
        self._func = func
        self._user_funcs = funcs
        self.partitioner: Any = prev.partitioner if preservesPartitioning else None

    def _pipelinable(self) -> bool:
        # As PySpark's PipelinedRDD: never through an RDD marked for checkpointing or
        # persisted (its children must read the checkpoint or the cached partition, not
        # compose with its function).
        return "_checkpoint" not in self.__dict__ and self._storage_level is None

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        return iter(self._func(split, self._parent.iterator(split, task_ctx)))

    def user_functions(self) -> list[tuple[str, Any]]:
        return self._user_funcs


class UnionRDD(RDD[Any]):
    """The partitions of several RDDs, one after another."""

    def __init__(self, ctx: LineageContext, rdds: list[RDD[Any]]) -> None:
        deps = []
        self._index: list[tuple[RDD, int]] = []
        pos = 0
        for r in rdds:
            n = r._num_partitions
            deps.append(RangeDependency(r, 0, pos, n))
            self._index.extend((r, i) for i in range(n))
            pos += n
        super().__init__(ctx, deps, pos)

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        rdd, i = self._index[split]
        return rdd.iterator(i, task_ctx)


def coalesce_groups(n_parent: int, n_target: int) -> list[range]:
    """Spark's ``DefaultPartitionCoalescer`` without locality: contiguous, balanced groups."""
    n_target = max(1, min(n_target, n_parent)) if n_parent else 0
    return [range((i * n_parent) // n_target, ((i + 1) * n_parent) // n_target)
            for i in range(n_target)]


class CoalescedRDD(RDD[Any]):
    """Fewer partitions without a shuffle: each groups a contiguous run of the parent's."""

    def __init__(self, prev: RDD[Any], num_partitions: int) -> None:
        self._groups = coalesce_groups(prev._num_partitions, num_partitions)
        self._prev = prev
        super().__init__(prev.ctx, [ListDependency(prev, self._groups)], len(self._groups))

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        prev = self._prev
        return chain.from_iterable(prev.iterator(i, task_ctx) for i in self._groups[split])


class ZippedPartitionsRDD(RDD[Any]):
    """Pairs the i-th elements of the i-th partitions of two RDDs (``zip``)."""

    def __init__(self, a: RDD[Any], b: RDD[Any]) -> None:
        if a._num_partitions != b._num_partitions:
            raise ValueError(
                f"Can only zip RDDs with the same number of partitions: "
                f"{a._num_partitions} != {b._num_partitions}")
        self._a = a
        self._b = b
        super().__init__(a.ctx, [OneToOneDependency(a), OneToOneDependency(b)],
                         a._num_partitions)

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        ia = self._a.iterator(split, task_ctx)
        ib = self._b.iterator(split, task_ctx)
        sentinel = object()
        while True:
            x = next(ia, sentinel)
            y = next(ib, sentinel)
            if x is sentinel or y is sentinel:
                if x is not y:
                    raise ValueError(
                        "Can only zip RDDs with same number of elements in each partition "
                        f"(partition {split} differs)")
                return
            yield (x, y)


class ZippedWithIndexRDD(RDD[Any]):
    """``zipWithIndex``: needs the size of every partition before it runs.

    The sizes are counted by a job of their own when an action first needs them (the
    ``_prepare`` hook), as PySpark counts them eagerly.
    """

    def __init__(self, prev: RDD[Any]) -> None:
        self._prev = prev
        self._starts: list[int] | None = None
        super().__init__(prev.ctx, [OneToOneDependency(prev)], prev._num_partitions)

    async def prepare_self(self) -> None:
        if self._starts is not None:
            return
        n = self._num_partitions
        starts = [0]
        if n > 1:
            counts = await self.ctx.run_job(self._prev, count, range(n - 1))
            for c in counts:
                starts.append(starts[-1] + c)
        self._starts = starts

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        assert self._starts is not None, "zipWithIndex offsets were not computed"
        return ((v, i) for i, v in enumerate(self._prev.iterator(split, task_ctx),
                                              self._starts[split]))



class CartesianRDD(RDD[Any]):
    """Every pair ``(a, b)``: partition ``i * m + j`` pairs partition i of the first RDD
    with partition j of the second (m partitions), as Spark's CartesianRDD."""

    def __init__(self, a: RDD[Any], b: RDD[Any]) -> None:
        m = b._num_partitions
        self._a = a
        self._b = b
        groups_a = [[i // m] for i in range(a._num_partitions * m)] if m else []
        groups_b = [[i % m] for i in range(a._num_partitions * m)] if m else []
        super().__init__(a.ctx, [ListDependency(a, groups_a), ListDependency(b, groups_b)],
                         a._num_partitions * m)

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        m = self._b._num_partitions
        right = list(self._b.iterator(split % m, task_ctx))
        for x in self._a.iterator(split // m, task_ctx):
            for y in right:
                yield (x, y)
