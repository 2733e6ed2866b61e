"""Dependencies between RDDs: narrow ones are pipelined into one task; shuffle ones cut
stages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .functions import Aggregator
    from .rdd import RDD

__all__ = [
    "Dependency",
    "ListDependency",
    "NarrowDependency",
    "OneToOneDependency",
    "RangeDependency",
    "ShuffleDependency",
]


class Dependency:
    """A child RDD's dependency on one parent RDD."""

    __slots__ = ("rdd",)

    def __init__(self, rdd: RDD[Any]) -> None:
        self.rdd: RDD[Any] = rdd


class NarrowDependency(Dependency):
    """Each child partition depends on a small, known set of parent partitions."""

    __slots__ = ()

    def get_parents(self, partition: int) -> Sequence[int]:
        raise NotImplementedError  # abstract: every concrete dependency overrides it


class OneToOneDependency(NarrowDependency):
    __slots__ = ()

    def get_parents(self, partition: int) -> Sequence[int]:
        return (partition,)


class RangeDependency(NarrowDependency):
    """Child partitions ``[out_start, out_start + length)`` map to parent ``[in_start, ...)``."""

    __slots__ = ("in_start", "length", "out_start")

    def __init__(self, rdd: RDD[Any], in_start: int, out_start: int, length: int) -> None:
        super().__init__(rdd)
        self.in_start: int = in_start
        self.out_start: int = out_start
        self.length: int = length

    def get_parents(self, partition: int) -> Sequence[int]:
        if self.out_start <= partition < self.out_start + self.length:
            return (partition - self.out_start + self.in_start,)
        return ()


class ListDependency(NarrowDependency):
    """Child partition ``i`` depends on the parent partitions ``groups[i]``."""

    __slots__ = ("groups",)

    def __init__(self, rdd: RDD[Any], groups: Sequence[Sequence[int]]) -> None:
        super().__init__(rdd)
        self.groups: Sequence[Sequence[int]] = groups

    def get_parents(self, partition: int) -> Sequence[int]:
        return self.groups[partition]


class ShuffleDependency(Dependency):
    """The child reads, for each of its partitions, the matching bucket of every parent
    partition's output: a stage boundary.

    ``rdd`` must hold ``(key, value)`` pairs. ``aggregator`` (with ``map_side_combine``)
    combines values per key before and after the shuffle; ``key_ordering`` sorts each
    reduce partition by key (``(ascending, keyfunc)``), as ``sortByKey`` needs.
    ``sorted_runs``, set by sortByKey's sampling, maps a map partition to the
    ``(executor_id, host, path)`` of the sorted runs it wrote (``shuffle.sorted_runs``).
    """

    # __weakref__: weakly referenced by the ContextCleaner
    __slots__ = ("__weakref__", "aggregator", "key_ordering", "map_side_combine",
                 "partitioner", "shuffle_id", "sorted_runs")

    def __init__(self, rdd: RDD[Any], partitioner: Any, aggregator: Aggregator | None = None,
                 map_side_combine: bool = False,
                 key_ordering: tuple[bool, Callable[[Any], Any]] | None = None) -> None:
        super().__init__(rdd)
        self.partitioner: Any = partitioner
        self.aggregator: Aggregator | None = aggregator
        self.map_side_combine: bool = map_side_combine and aggregator is not None
        self.key_ordering: tuple[bool, Callable[[Any], Any]] | None = key_ordering
        self.shuffle_id: int = rdd.context.new_shuffle_id()
        self.sorted_runs: dict[int, tuple[str, str, str]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("rdd", *self.__slots__) if k != "__weakref__"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
