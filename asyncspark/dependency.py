"""Dependencies between RDDs: narrow ones are pipelined into one task; shuffle ones cut
stages (the shuffle issue adds ``ShuffleDependency``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["Dependency", "NarrowDependency", "OneToOneDependency", "RangeDependency"]


class Dependency:
    """A child RDD's dependency on one parent RDD."""

    __slots__ = ("rdd",)

    def __init__(self, rdd: RDD) -> None:
        self.rdd = rdd


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

    def __init__(self, rdd: RDD, in_start: int, out_start: int, length: int) -> None:
        super().__init__(rdd)
        self.in_start = in_start
        self.out_start = out_start
        self.length = length

    def get_parents(self, partition: int) -> Sequence[int]:
        if self.out_start <= partition < self.out_start + self.length:
            return (partition - self.out_start + self.in_start,)
        return ()


class ListDependency(NarrowDependency):
    """Child partition ``i`` depends on the parent partitions ``groups[i]``."""

    __slots__ = ("groups",)

    def __init__(self, rdd: RDD, groups: Sequence[Sequence[int]]) -> None:
        super().__init__(rdd)
        self.groups = groups

    def get_parents(self, partition: int) -> Sequence[int]:
        return self.groups[partition]
