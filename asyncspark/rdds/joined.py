"""``JoinedRDD``: the reduce side of ``join`` and its outer variants as a hash join.

Per reduce partition, the side with fewer shuffle bytes in that partition (known from
the map output sizes before anything is read) is grouped by key into a table, with
groupByKey's merge at C speed; the other side streams past it, each record probing the
table once. Neither side is tagged, nor grouped with the other, nor turned into
per-key value lists only to be multiplied out again, as a cogroup would.

Results are PySpark's: every ``(k, (v, w))`` of the key's values on each side (all
duplicates), ``None`` standing for the missing side of an outer join's unmatched key;
pairs come in no particular order within a partition (as PySpark's, which promise
none). A build side too big for ``asyncspark.shuffle.memoryBudget`` spills: then the
partition is joined by cogrouping both sides with the spilling merger instead, as
before, so it still fits the budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..dependency import OneToOneDependency, ShuffleDependency
from ..functions import Aggregator, append_to, extend_with, to_list
from ..rdd import RDD
from ..runtime import get_env
from ..shuffle.reader import shuffle_records
from ..shuffle.sorter import ExternalMerger
from .shuffled import _budget, _reporting_spills

if TYPE_CHECKING:
    from ..taskcontext import TaskContext

__all__ = ["HOW", "JoinedRDD"]

# how -> (keep unmatched left records, keep unmatched right records)
HOW = {"inner": (False, False), "left": (True, False), "right": (False, True),
       "full": (True, True)}
_GROUP = Aggregator(to_list, append_to, extend_with)


class JoinedRDD(RDD[Any]):
    """``left.join(right)`` (``how="inner"``), ``leftOuterJoin`` (``"left"``),
    ``rightOuterJoin`` (``"right"``), ``fullOuterJoin`` (``"full"``) under
    ``partitioner``. A side already partitioned by an equal partitioner is read
    narrowly; the same RDD on both sides is read once."""

    def __init__(self, left: RDD[Any], right: RDD[Any], partitioner: Any, how: str) -> None:
        if how not in HOW:
            raise ValueError(f"how must be one of {', '.join(HOW)}, got {how!r}")
        rdds = [left] if left is right else [left, right]
        deps = [OneToOneDependency(r) if r.partitioner is not None and r.partitioner ==
                partitioner else ShuffleDependency(r, partitioner) for r in rdds]
        super().__init__(left.ctx, deps, partitioner.numPartitions)
        self.partitioner: Any = partitioner
        self.how = how

    def _side(self, i: int, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        dep = self._deps[i]
        if isinstance(dep, ShuffleDependency):
            return shuffle_records(dep.shuffle_id, split)
        return dep.rdd.iterator(split, task_ctx)

    def _side_bytes(self, i: int, split: int) -> float:
        """The shuffle bytes of side ``i`` in partition ``split`` (inf when read
        narrowly: its size is not known before it is computed)."""
        dep = self._deps[i]
        if not isinstance(dep, ShuffleDependency):
            return math.inf
        statuses = get_env().map_outputs.get(dep.shuffle_id) or ()
        return sum(st[4][split] for st in statuses if st is not None)

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:

        if len(self._deps) == 1:  # x.join(x): every key matches itself
            return _self_join(self._side(0, split, task_ctx))
        keep_left, keep_right = HOW[self.how]
        # Build from the smaller side (the right one on a tie, as Spark's hash join).
        build = 0 if self._side_bytes(0, split) < self._side_bytes(1, split) else 1
        probe = 1 - build
        keep = (keep_left, keep_right)
        return _hash_join(self._side(build, split, task_ctx),
                          lambda: self._side(probe, split, task_ctx),
                          build == 0, keep[build], keep[probe])

    def _describe(self) -> str:
        return f"JoinedRDD[{self.how}]"


def _self_join(records: Iterable) -> Iterator[Any]:
    budget, spill_dir = _budget()
    merger = ExternalMerger(_GROUP, budget, spill_dir)
    merger.merge_values(records)
    return _reporting_spills(_products(merger.items()), merger)


def _products(groups: Iterable) -> Iterator[Any]:
    for k, vs in groups:
        for v in vs:
            for w in vs:
                yield k, (v, w)


def _hash_join(build: Iterable, probe, build_left: bool, keep_build: bool,
               keep_probe: bool) -> Iterator[Any]:
    """The joined pairs of ``build`` (records, grouped by key into a table first) and
    ``probe()`` (records, streamed past it); ``build_left``: the build side is the
    join's left one; ``keep_*``: that side's unmatched records come out with None."""
    budget, spill_dir = _budget()
    merger = ExternalMerger(_GROUP, budget, spill_dir)
    merger.merge_values(build)
    if merger.spill_count:  # too big for the budget: cogroup with the spilling merger
        return _cogrouped(merger, probe(), build_left, keep_build, keep_probe, budget,
                          spill_dir)
    table = dict(merger.items())
    if build_left:
        return _probe_right(table, probe(), keep_build, keep_probe)
    return _probe_left(table, probe(), keep_build, keep_probe)


def _probe_left(table: dict, left: Iterator, keep_right: bool, keep_left: bool) -> Iterator[Any]:
    """Left records stream past the table of the right side's values."""
    get = table.get
    if not keep_right:
        for k, v in left:
            ws = get(k)
            if ws is not None:
                for w in ws:
                    yield k, (v, w)
            elif keep_left:
                yield k, (v, None)
        return
    matched = set()
    for k, v in left:
        ws = get(k)
        if ws is not None:
            matched.add(k)
            for w in ws:
                yield k, (v, w)
        elif keep_left:
            yield k, (v, None)
    for k, ws in table.items():
        if k not in matched:
            for w in ws:
                yield k, (None, w)


def _probe_right(table: dict, right: Iterator, keep_left: bool,
                 keep_right: bool) -> Iterator[Any]:
    """Right records stream past the table of the left side's values."""
    get = table.get
    if not keep_left:
        for k, w in right:
            vs = get(k)
            if vs is not None:
                for v in vs:
                    yield k, (v, w)
            elif keep_right:
                yield k, (None, w)
        return
    matched = set()
    for k, w in right:
        vs = get(k)
        if vs is not None:
            matched.add(k)
            for v in vs:
                yield k, (v, w)
        elif keep_right:
            yield k, (None, w)
    for k, vs in table.items():
        if k not in matched:
            for v in vs:
                yield k, (v, None)


def _cogrouped(built: ExternalMerger, probe: Iterator, build_left: bool, keep_build: bool,
               keep_probe: bool, budget: float, spill_dir: Any) -> Iterator[Any]:
    """The join of a build side that spilled (``built``, its values grouped) and the
    probe records, through a second spilling merger of ``[build values, probe values]``
    per key."""
    b, p = (0, 1) if build_left else (1, 0)

    def create(v: Any) -> list:
        groups: list = [[], []]
        groups[p].append(v)
        return groups

    def merge(groups: list, v: Any) -> list:
        groups[p].append(v)
        return groups

    def combine(x: list, y: list) -> list:
        x[0].extend(y[0])
        x[1].extend(y[1])
        return x

    def as_groups(items: Iterator) -> Iterator[Any]:
        for k, vs in items:
            groups: list = [[], []]
            groups[b] = vs
            yield k, groups

    merger = ExternalMerger(Aggregator(create, merge, combine), budget, spill_dir)
    try:
        merger.merge_combiners(as_groups(built.items()))
    finally:
        built.close()
    merger.merge_values(probe)
    keep = [False, False]
    keep[b], keep[p] = keep_build, keep_probe

    def pairs() -> Iterator[Any]:
        for k, (vs, ws) in merger.items():
            if vs and ws:
                for v in vs:
                    for w in ws:
                        yield k, (v, w)
            elif vs and keep[0]:
                for v in vs:
                    yield k, (v, None)
            elif ws and keep[1]:
                for w in ws:
                    yield k, (None, w)

    return _spills_of_both(pairs(), built, merger)


def _spills_of_both(items: Iterator, built: ExternalMerger,
                    merger: ExternalMerger) -> Iterator[Any]:
    """``items``, reporting both mergers' spilled bytes to the task when done."""
    yield from _reporting_spills(items, merger)
    yield from _reporting_spills(iter(()), built)
