"""RDDs that read a shuffle: ``ShuffledRDD`` (one parent) and ``CoGroupedRDD`` (several,
narrow where a parent is already partitioned the same way)."""

from __future__ import annotations

import asyncio
import math
import operator
import os
import random
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..dependency import OneToOneDependency, ShuffleDependency
from ..functions import Aggregator, identity
from ..rdd import RDD
from ..runtime import get_env
from ..shuffle.reader import shuffle_records
from ..shuffle.sorted_runs import Reservoir, sort_shuffle, write_sorted_runs
from ..shuffle.sorter import FIRST_ITEM, ExternalMerger, ExternalSorter
from ..shuffle.sum_read import sum_shuffle
from ..taskcontext import TaskContext

if TYPE_CHECKING:
    from ..partitioner import RangePartitioner

__all__ = ["CoGroupedRDD", "PendingRangePartitioner", "ShuffledRDD", "SortPartition"]


class PendingRangePartitioner:
    """Stands for sortByKey's range partitioner until its bounds are sampled; then for
    the sampled ``RangePartitioner`` (``resolved``), so that RDDs derived with
    ``preservesPartitioning`` before the sampling (``sortByKey().mapValues(f)``) place
    keys as the sorted RDD does."""

    def __init__(self, numPartitions: int, ascending: bool,
                 keyfunc: Callable[[Any], Any]) -> None:
        self.numPartitions = numPartitions
        self.ascending = ascending
        self.keyfunc: Callable[[Any], Any] = keyfunc
        self.resolved: RangePartitioner | None = None
        self.lock: asyncio.Lock | None = None  # one sampling at a time (driver only)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "lock": None}

    def getPartition(self, key: Any) -> int:
        if self.resolved is None:
            raise RuntimeError("range partitioner used before its bounds were sampled")
        return self.resolved.getPartition(key)

    __call__ = getPartition


def _budget() -> tuple[int, str]:

    env = get_env()
    return env.settings.shuffle_memory, env.local_dir


class ShuffledRDD(RDD[Any]):
    """The records of ``prev`` redistributed by ``partitioner``; combined per key when
    given an aggregator, sorted by key when given ``key_ordering``."""

    def __init__(self, prev: RDD[Any], partitioner: Any, aggregator: Aggregator | None = None,
                 map_side_combine: bool = False,
                 key_ordering: tuple[bool, Callable[[Any], Any]] | None = None,
                 what: str = "a shuffle") -> None:
        dep = ShuffleDependency(prev, partitioner, aggregator, map_side_combine, key_ordering)
        super().__init__(prev.ctx, [dep], partitioner.numPartitions)
        self._dep = dep
        self._what = what
        self.partitioner: Any = partitioner
        # Only sortByKey's sampling needs the driver before a job: other shuffles spare
        # every action a walk of their lineage.
        self.needs_prepare: bool = (isinstance(partitioner, PendingRangePartitioner)
                               or prev.needs_prepare)

    def user_functions(self) -> list[tuple[str, Any]]:
        """The user's functions in this shuffle (aggregation, partitioning, sort key),
        for the checks before a job is submitted."""
        dep = self._dep
        funcs = []
        if dep.aggregator is not None:
            a = dep.aggregator
            funcs.extend((self._what, f) for f in (a.createCombiner, a.mergeValue,
                                                    a.mergeCombiners))
        if dep.key_ordering is not None:
            funcs.append((self._what, dep.key_ordering[1]))
        partition_func = getattr(dep.partitioner, "partitionFunc", None)
        if partition_func is not None:
            funcs.append((self._what, partition_func))
        return funcs

    async def prepare_self(self) -> None:
        """sortByKey: sample the keys (as PySpark: count, then ~20 keys per partition)
        and fix the range partitioner's bounds before the first job runs."""
        dep = self._dep
        pending = dep.partitioner
        if not isinstance(pending, PendingRangePartitioner):
            return
        if pending.lock is None:
            pending.lock = asyncio.Lock()
        async with pending.lock:  # concurrent first actions sample once
            if pending.resolved is None:
                await self._sample_bounds(pending)

    async def _sample_bounds(self, pending: PendingRangePartitioner) -> None:
        """One job counts every parent partition and samples it (a fixed-size reservoir),
        as Spark's ``RangePartitioner.sketch``; partitions much bigger than the others are
        sampled again in proportion to their size; bounds are the weighted quantiles."""
        from ..partitioner import RangePartitioner

        dep = self._dep
        src = dep.rdd
        n = pending.numPartitions
        sample_size = min(20.0 * n, 1e6)
        per_partition = math.ceil(3.0 * sample_size / max(1, src.getNumPartitions()))
        # Sorting by the keys themselves, the sampling tasks also write their partitions
        # as sorted runs, which the map stage cuts instead of computing its input again.
        runs_of = dep.shuffle_id if pending.keyfunc is identity else None
        sketches = await src._map_partitions(
            Sketch(per_partition, self.id(), runs_of), True, "sortByKey()")._run(_only)
        dep.sorted_runs = {i: where for i, (_, _, where) in enumerate(sketches)
                           if where is not None}
        total = sum(count for count, _, _ in sketches)
        fraction = min(sample_size / max(total, 1), 1.0)
        candidates: list[tuple] = []
        imbalanced = []
        for i, (count, keys, _) in enumerate(sketches):
            if fraction * count > per_partition:
                imbalanced.append(i)
            elif keys:
                weight = count / len(keys)
                candidates.extend((k, weight) for k in keys)
        if imbalanced:
            resampled = await src.sample(False, fraction, self.id()).map(itemgetter(0))._run(
                list, imbalanced)
            weight = 1.0 / fraction
            candidates.extend((k, weight) for keys in resampled for k in keys)
        partitioner = RangePartitioner.from_weighted_sample(
            candidates, n, pending.ascending, pending.keyfunc)
        pending.resolved = partitioner
        dep.partitioner = partitioner
        self.partitioner: Any = partitioner

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:

        dep = self._dep
        if (dep.key_ordering is not None and dep.aggregator is None
                and dep.key_ordering[1] is identity):
            return _sorted_shuffle(dep.shuffle_id, split, dep.key_ordering[0])
        if dep.key_ordering is None and _sums_by_add(dep):
            budget, spill_dir = _budget()
            sums, merger = sum_shuffle(dep.shuffle_id, split, dep.aggregator,
                                       dep.map_side_combine, budget, spill_dir)
            return sums if merger is None else _reporting_spills(sums, merger)
        records = shuffle_records(dep.shuffle_id, split)
        if dep.aggregator is not None:
            records = _aggregate(records, dep.aggregator, dep.map_side_combine)
        if dep.key_ordering is not None:
            records = _sorted(records, *dep.key_ordering)
        return records

    def _describe(self) -> str:
        return "ShuffledRDD"


def _sums_by_add(dep: ShuffleDependency) -> bool:
    """Whether the shuffle's aggregation sums values that are their own combiners with
    ``operator.add`` (``reduceByKey(add)``): int pairs then take ``sum_shuffle``."""
    agg = dep.aggregator
    if agg is None or agg.mergeCombiners is not operator.add:
        return False
    return dep.map_side_combine or (agg.createCombiner is identity
                                    and agg.mergeValue is operator.add)


def _only(it: Iterator) -> Any:
    return next(it)


class Sketch:
    """``mapPartitionsWithIndex`` function of sortByKey's sampling: one
    ``(record count, up to `size` keys sampled uniformly)`` per partition, in one pass
    that skips between picks at C speed (reservoir sampling, Li's "Algorithm L")."""

    def __init__(self, size: int, seed: int, runs_of: int | None = None) -> None:
        self.size = size
        self.seed = seed
        self.runs_of = runs_of  # a shuffle id: write sorted runs for its map stage

    def __call__(self, split: int, records: Iterable[Any]) -> list[tuple[int, list[Any]]]:
        k = self.size
        rng = random.Random(self.seed * 1_000_003 + split)
        if self.runs_of is not None:
            return [self._with_sorted_runs(split, records, rng)]
        it = iter(records)
        reservoir = list(islice(it, k))
        n = len(reservoir)
        if n == k:
            w = math.exp(math.log(1.0 - rng.random()) / k)
            while True:
                denom = math.log1p(-w)  # -inf when w is 1: skip nothing
                skip = min(int(math.log(1.0 - rng.random()) / denom) if denom else 0,
                           sys.maxsize - 1)
                # the next `skip` records are passed over, the one after is picked
                last = deque(enumerate(islice(it, skip + 1), 1), maxlen=1)
                if not last:
                    break
                taken, record = last[0]
                n += taken
                if taken <= skip:
                    break
                reservoir[rng.randrange(k)] = record
                w *= math.exp(math.log(1.0 - rng.random()) / k)
        return [(n, [kv[0] for kv in reservoir], None)]

    def _with_sorted_runs(self, split: int, records: Iterator, rng) -> tuple:
        """``(count, keys, where)``: the sample, and ``(executor_id, host, path)`` of the
        sorted runs written for the map stage (None when the records are not of the kind
        that ``write_sorted_runs`` writes)."""
        env = get_env()
        ctx = TaskContext.get()
        attempt = ctx.attemptNumber() if ctx is not None else 0
        path = os.path.join(env.local_dir,
                            f"shuffle_{self.runs_of}_{split}_{attempt}.sorted-runs")
        reservoir = Reservoir(self.size, rng)
        written = write_sorted_runs(records, path, env.settings.shuffle_memory, reservoir)
        keys = [kv[0] for kv in reservoir.items]
        return reservoir.seen, keys, (env.executor_id, env.host, path) if written else None


class SortPartition:
    """``mapPartitions`` function sorting a partition of pairs by ``keyfunc(key)``
    within the shuffle memory budget (sortByKey into one partition)."""

    def __init__(self, ascending: bool, keyfunc: Callable[[Any], Any]) -> None:
        self.ascending = ascending
        self.keyfunc: Callable[[Any], Any] = keyfunc

    def __call__(self, records: Iterable[Any]) -> Iterator[Any]:
        return _sorted(records, self.ascending, self.keyfunc)


def _sorted(records, ascending: bool, keyfunc) -> Iterator[Any]:

    budget, spill_dir = _budget()
    sorter = ExternalSorter(budget, spill_dir)
    key = FIRST_ITEM if keyfunc is identity else lambda kv: keyfunc(kv[0])
    return _reporting_spills(sorter.sorted(records, key=key, reverse=not ascending), sorter)


def _sorted_shuffle(shuffle_id: int, split: int, ascending: bool) -> Iterator:
    """sortByKey's reduce side by the keys themselves: whole batches sorted at once."""
    budget, spill_dir = _budget()
    records, sorter = sort_shuffle(shuffle_id, split, ascending, budget, spill_dir)
    return records if sorter is None else _reporting_spills(records, sorter)


def _aggregate(records, aggregator: Aggregator, combined: bool) -> Iterator[Any]:

    budget, spill_dir = _budget()
    merger = ExternalMerger(aggregator, budget, spill_dir)
    if combined:
        merger.merge_combiners(records)
    else:
        merger.merge_values(records)
    return _reporting_spills(merger.items(), merger)


def _reporting_spills(items: Iterator, spiller) -> Iterator[Any]:
    """``items``; once they are exhausted, the bytes ``spiller`` (an ``ExternalMerger``
    or ``ExternalSorter`` whose ``items()``/``sorted()`` made them) spilled are added to
    the task's ``shuffle_spill_bytes``/``diskBytesSpilled`` (and what they held in memory
    to its ``memoryBytesSpilled``). When it has not spilled, everything is in memory
    and stays there: ``items`` itself, with no generator step per record."""
    if not spiller.spill_count:
        return items
    return _report_when_done(items, spiller)


def _report_when_done(items: Iterator, spiller) -> Iterator[Any]:
    yield from items

    ctx = TaskContext.get()
    if ctx is not None:
        metrics = ctx._metrics
        metrics["shuffle_spill_bytes"] = (metrics.get("shuffle_spill_bytes", 0)
                                          + spiller.spilled_bytes)
        metrics["diskBytesSpilled"] = metrics.get("diskBytesSpilled", 0) + spiller.spilled_bytes
        metrics["memoryBytesSpilled"] = (metrics.get("memoryBytesSpilled", 0)
                                         + spiller.memory_spilled)


class CoGroupedRDD(RDD[Any]):
    """For each key, a tuple with the list of its values in each parent.

    A parent already partitioned by an equal partitioner is read narrowly, partition by
    partition; the others are shuffled. A parent given more than once (``x.cogroup(x)``) is
    read or shuffled once, its values going to each of its places. Values are tagged by
    parent and grouped with the spilling merger, so a large group does not need to fit
    the budget twice.
    """

    def __init__(self, rdds: list[RDD[Any]], partitioner: Any) -> None:
        deps: list = []
        slots: list[list[int]] = []  # per dependency: the places of its RDD in rdds
        dep_of: dict[int, int] = {}
        for i, r in enumerate(rdds):
            j = dep_of.get(id(r))
            if j is not None:
                slots[j].append(i)
                continue
            dep_of[id(r)] = len(deps)
            slots.append([i])
            if r.partitioner is not None and r.partitioner == partitioner:
                deps.append(OneToOneDependency(r))
            else:
                deps.append(ShuffleDependency(r, partitioner))
        super().__init__(rdds[0].ctx, deps, partitioner.numPartitions)
        self.partitioner: Any = partitioner
        self._n = len(rdds)
        self._slots = [tuple(s) for s in slots]

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:

        n = self._n

        def tagged():
            for dep, slots in zip(self._deps, self._slots, strict=True):
                if isinstance(dep, ShuffleDependency):
                    it = shuffle_records(dep.shuffle_id, split)
                else:
                    it = dep.rdd.iterator(split, task_ctx)
                if len(slots) == 1:
                    i = slots[0]
                    for k, v in it:
                        yield k, (i, v)
                else:
                    for k, v in it:
                        for i in slots:
                            yield k, (i, v)

        def create(iv):
            groups = tuple([] for _ in range(n))
            groups[iv[0]].append(iv[1])
            return groups

        def merge(groups, iv):
            groups[iv[0]].append(iv[1])
            return groups

        def combine(a, b):
            for x, y in zip(a, b, strict=True):
                x.extend(y)
            return a

        return _aggregate(tagged(), Aggregator(create, merge, combine), False)

    def _describe(self) -> str:
        return "CoGroupedRDD"
