"""RDDs that read a shuffle: ``ShuffledRDD`` (one parent) and ``CoGroupedRDD`` (several,
narrow where a parent is already partitioned the same way)."""

from __future__ import annotations

from collections.abc import Iterator

from ..dependency import Aggregator, OneToOneDependency, ShuffleDependency
from ..rdd import RDD

__all__ = ["CoGroupedRDD", "PendingRangePartitioner", "ShuffledRDD"]


class PendingRangePartitioner:
    """Stands for sortByKey's range partitioner until its bounds are sampled."""

    def __init__(self, numPartitions: int, ascending: bool, keyfunc) -> None:
        self.numPartitions = numPartitions
        self.ascending = ascending
        self.keyfunc = keyfunc

    def getPartition(self, key):
        raise RuntimeError("range partitioner used before its bounds were sampled")


def _budget() -> tuple[int, str]:
    from ..executor.env import get_env
    from ..shuffle.writer import DEFAULT_MEMORY_BUDGET

    env = get_env()
    return env.setting("shuffle_memory", DEFAULT_MEMORY_BUDGET), env.local_dir


class ShuffledRDD(RDD):
    """The records of ``prev`` redistributed by ``partitioner``; combined per key when
    given an aggregator, sorted by key when given ``key_ordering``."""

    def __init__(self, prev: RDD, partitioner, aggregator: Aggregator | None = None,
                 map_side_combine: bool = False, key_ordering=None) -> None:
        dep = ShuffleDependency(prev, partitioner, aggregator, map_side_combine, key_ordering)
        super().__init__(prev.ctx, [dep], partitioner.numPartitions)
        self._dep = dep
        self.partitioner = partitioner

    async def _prepare_self(self) -> None:
        """sortByKey: sample the keys (as PySpark: count, then ~20 keys per partition)
        and fix the range partitioner's bounds before the first job runs."""
        dep = self._dep
        pending = dep.partitioner
        if not isinstance(pending, PendingRangePartitioner):
            return
        from ..partitioner import RangePartitioner

        src = dep.rdd
        n = pending.numPartitions
        size = await src.count()
        fraction = min(n * 20.0 / max(size, 1), 1.0)
        samples = await src.sample(False, fraction, 1).map(lambda kv: kv[0]).collect()
        partitioner = RangePartitioner.from_sample(
            samples, n, pending.ascending, pending.keyfunc)
        dep.partitioner = partitioner
        self.partitioner = partitioner

    def compute(self, split: int, task_ctx) -> Iterator:
        from ..shuffle.reader import shuffle_records

        dep = self._dep
        records = shuffle_records(dep.shuffle_id, split)
        if dep.aggregator is not None:
            records = _aggregate(records, dep.aggregator, dep.map_side_combine)
        if dep.key_ordering is not None:
            from ..shuffle.sorter import ExternalSorter

            ascending, keyfunc = dep.key_ordering
            budget, spill_dir = _budget()
            records = ExternalSorter(budget, spill_dir).sorted(
                records, key=lambda kv: keyfunc(kv[0]), reverse=not ascending)
        return records

    def _describe(self) -> str:
        return "ShuffledRDD"


def _aggregate(records, aggregator: Aggregator, combined: bool) -> Iterator:
    from ..shuffle.sorter import ExternalMerger

    budget, spill_dir = _budget()
    merger = ExternalMerger(aggregator, budget, spill_dir)
    if combined:
        merger.merge_combiners(records)
    else:
        merger.merge_values(records)
    return merger.items()


class CoGroupedRDD(RDD):
    """For each key, a tuple with the list of its values in each parent.

    A parent already partitioned by an equal partitioner is read narrowly, partition by
    partition; the others are shuffled. Values are tagged by parent and grouped with the
    spilling merger, so a large group does not need to fit the budget twice.
    """

    def __init__(self, rdds: list[RDD], partitioner) -> None:
        deps = []
        for r in rdds:
            if r.partitioner is not None and r.partitioner == partitioner:
                deps.append(OneToOneDependency(r))
            else:
                deps.append(ShuffleDependency(r, partitioner))
        super().__init__(rdds[0].ctx, deps, partitioner.numPartitions)
        self.partitioner = partitioner
        self._n = len(rdds)

    def compute(self, split: int, task_ctx) -> Iterator:
        from ..shuffle.reader import shuffle_records

        n = self._n

        def tagged():
            for i, dep in enumerate(self._deps):
                if isinstance(dep, ShuffleDependency):
                    it = shuffle_records(dep.shuffle_id, split)
                else:
                    it = dep.rdd.iterator(split, task_ctx)
                for k, v in it:
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
