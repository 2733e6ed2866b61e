"""RDDs over data held by the driver: ``parallelize``, ``range``, ``emptyRDD``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..rdd import RDD

if TYPE_CHECKING:
    from ..planner import LineageContext
    from ..taskcontext import TaskContext

__all__ = ["EmptyRDD", "ParallelCollectionRDD"]


def slice_bounds(length: int, num_slices: int, index: int) -> tuple[int, int]:
    """Spark's ``ParallelCollectionRDD.slice`` positions: ``[i*n/k, (i+1)*n/k)``."""
    return (index * length) // num_slices, ((index + 1) * length) // num_slices


class ParallelCollectionRDD(RDD[Any]):
    """A driver-side sequence cut into ``numSlices`` contiguous slices.

    A ``range`` stays a ``range`` (PySpark computes its slice bounds with the same float
    arithmetic, kept here for identical partition contents); anything else is
    materialized once as a list.
    """

    def __init__(self, ctx: LineageContext, data: Any, num_slices: int) -> None:
        num_slices = int(num_slices)  # as PySpark's parallelize
        if num_slices < 1:
            raise ValueError(f"numSlices must be at least 1, got {num_slices}")
        super().__init__(ctx, [], num_slices)
        if not isinstance(data, range):
            data = list(data)
        self._data = data

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        data = self._data
        n = self._num_partitions
        if isinstance(data, range):
            size = len(data)
            if size == 0:
                return iter(())
            step = data.step
            start0 = data.start

            def start(s: int) -> int:
                return start0 + int(s * size / n) * step

            return iter(range(start(split), start(split + 1), step))
        lo, hi = slice_bounds(len(data), n, split)
        return iter(data[lo:hi])

    def plain_picklable(self) -> bool:
        """Whether plain pickle ships this RDD as cloudpickle would: a range, or a few
        values of builtin atomic types (anything else, e.g. instances of classes defined
        in the driver's ``__main__``, needs cloudpickle's by-value pickling)."""
        data = self._data
        if isinstance(data, range):
            return True
        return len(data) <= _PLAIN_MAX and all(type(x) in _ATOMIC for x in data)


_PLAIN_MAX = 64
_ATOMIC = frozenset({int, float, str, bytes, bool, type(None)})


class EmptyRDD(RDD[Any]):
    """An RDD with no partitions."""

    def __init__(self, ctx: LineageContext) -> None:
        super().__init__(ctx, [], 0)

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        raise IndexError(f"EmptyRDD has no partition {split}")
