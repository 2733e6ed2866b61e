"""The map side of the sort-based shuffle.

A map task buckets its records by reduce partition (combining values per key first when
the dependency has a map-side aggregator), serializes them in batches, spills to disk
whenever what it holds exceeds the memory budget, and ends with **one data file and one
index file**: the data file holds each reduce partition's bytes contiguously, in
partition order; the index file holds the ``num_reduces + 1`` offsets (int64, big-endian).

A reduce partition's bytes are a sequence of batches (``batch.py``: a header and a
marshaled or pickled list of records). Spilled runs are already grouped by partition, so
the final merge concatenates segments without decoding them, checking each against the
CRC-32 it was spilled with (a mismatch fails the task with ``CorruptDataError`` naming
the spill file, and the task is retried). Map-side combined runs may repeat a key across
batches; the reduce side merges combiners anyway.

Hash-partitioned pairs of core types are written into marshaled batches as they are
bucketed (``pair_buckets`` in ``asyncspark._accel``); other records are bucketed into
lists and serialized by ``BatchEncoder``. sortByKey's map tasks cut the sorted runs its
sampling pass wrote (``sorted_runs.py``) when they can read them, without computing
their input.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, Any
from zlib import crc32

from .._accel import (
    MODE_ADD,
    MODE_CELLS,
    MODE_LIST,
    bucket_hash,
    bucket_range,
    merge_into,
    merge_mode,
    pair_buckets,
    sum_table,
)
from .._files import naming
from ..errors import CorruptDataError
from ..functions import identity
from ..runtime import get_env
from ..taskcontext import TaskContext
from .batch import BatchEncoder, marshaled_frame

if TYPE_CHECKING:
    from ..dependency import ShuffleDependency
    from ..runtime import ExecutorEnv

__all__ = ["DEFAULT_MEMORY_BUDGET", "ShuffleWriteFunc", "remove_shuffles", "write_map_output"]

DEFAULT_MEMORY_BUDGET = 256 << 20
_CHECK_EVERY = 8192
_COPY_CHUNK = 1 << 20


def _hash_fast_path(partitioner) -> bool:
    """Whether ``hash(k) % n`` equals the partitioner for str/int keys in this process:
    a HashPartitioner with portable_hash, and string hashing not randomized (executors
    run with PYTHONHASHSEED=0, which is what PySpark's portable_hash assumes)."""
    from ..partitioner import HashPartitioner, portable_hash

    return (type(partitioner) is HashPartitioner
            and partitioner.partitionFunc is portable_hash
            and not sys.flags.hash_randomization)


class _Spill:
    """Serialized batches per reduce partition, in memory until the budget says disk."""

    def __init__(self, num_reduces: int, path: str, budget: int) -> None:
        self.chunks: list[list[bytes]] = [[] for _ in range(num_reduces)]
        # (offset, length, crc32) of each spilled run of a partition
        self.segments: list[list[tuple[int, int, int]]] = [[] for _ in range(num_reduces)]
        self.in_memory = 0
        self.budget = budget
        self.path = path
        self.file = None
        self.spilled_bytes = 0
        self.memory_spilled = 0  # bytes held in memory when spilled (memoryBytesSpilled)
        self.records = 0
        self.peak = 0  # most serialized bytes held at once (peakExecutionMemory)
        self.write_ns = 0  # time spent writing to disk (shuffleWriteTime)
        self.encoder = BatchEncoder()

    def add(self, part: int, records: list) -> None:
        data = self.encoder.encode(records)
        self.chunks[part].append(data)
        self.in_memory += len(data)
        self.records += len(records)
        if self.in_memory > self.budget:
            self.spill()

    def add_frame(self, part: int, frame: bytes, records: int) -> None:
        """Add an already serialized batch (header and body) of ``records`` records."""
        self.chunks[part].append(frame)
        self.in_memory += len(frame)
        self.records += records
        if self.in_memory > self.budget:
            self.spill()

    def spill(self) -> None:
        t0 = time.perf_counter_ns()
        self.peak = max(self.peak, self.in_memory)
        self.memory_spilled += self.in_memory
        try:
            self._spill()
        except OSError as exc:
            raise naming(exc, self.path, "writing a shuffle spill file") from exc
        finally:
            self.write_ns += time.perf_counter_ns() - t0

    def _spill(self) -> None:
        if self.file is None:
            self.file = open(self.path, "w+b")
        f = self.file
        pos = f.seek(0, os.SEEK_END)
        for part, chunks in enumerate(self.chunks):
            if not chunks:
                continue
            data = b"".join(chunks)
            f.write(data)
            self.segments[part].append((pos, len(data), crc32(data)))
            pos += len(data)
            self.spilled_bytes += len(data)
            chunks.clear()
        self.in_memory = 0

    def finish(self, data_path: str, index_path: str) -> list[int]:
        """Write the data and index files; the bytes of each reduce partition."""
        t0 = time.perf_counter_ns()
        self.peak = max(self.peak, self.in_memory)
        self.memory_spilled += self.in_memory
        try:
            return self._finish(data_path, index_path)
        finally:
            self.write_ns += time.perf_counter_ns() - t0

    def _finish(self, data_path: str, index_path: str) -> list[int]:
        sizes = []
        tmp_data = data_path + ".tmp"
        try:
            with open(tmp_data, "wb") as out:
                for part in range(len(self.chunks)):
                    size = 0
                    for pos, length, crc in self.segments[part]:
                        size += _copy(self.file, self.path, pos, length, crc, out)
                    for c in self.chunks[part]:
                        out.write(c)
                        size += len(c)
                    sizes.append(size)
            offsets = [0]
            for s in sizes:
                offsets.append(offsets[-1] + s)
            with open(index_path + ".tmp", "wb") as idx:
                idx.write(struct.pack(f">{len(offsets)}q", *offsets))
            os.replace(tmp_data, data_path)
            os.replace(index_path + ".tmp", index_path)
        except OSError as exc:  # a full disk: say which file
            raise naming(exc, data_path, "writing a map output") from exc
        finally:
            self.close()
            for p in (tmp_data, index_path + ".tmp"):
                if os.path.exists(p):
                    os.unlink(p)
        return sizes

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
            os.unlink(self.path)


def _copy(src, path: str, pos: int, length: int, crc: int, out) -> int:
    """Copy a spilled run into ``out``, checking it against its checksum."""
    src.seek(pos)
    left = length
    got = 0
    while left:
        data = src.read(min(left, _COPY_CHUNK))
        if not data:
            raise CorruptDataError(f"shuffle spill file {path} ends {left} bytes before the "
                                   f"run at offset {pos} ({length} bytes) does")
        got = crc32(data, got)
        out.write(data)
        left -= len(data)
    if got != crc:
        raise CorruptDataError(f"shuffle spill file {path}: checksum mismatch in the run at "
                               f"offset {pos} ({length} bytes)")
    return length


def _bucketer(partitioner) -> Callable[[Iterator, list[list], int], int]:
    """``fill(records, buckets, limit)`` appending records to their partition's bucket:
    at C speed for hash partitioning of str/int keys and for range partitioning by the
    keys themselves (see ``asyncspark._accel``), else calling ``getPartition``."""
    from ..partitioner import RangePartitioner

    if (type(partitioner) is RangePartitioner and partitioner.keyfunc is identity
            and len(partitioner.bounds) < partitioner.numPartitions):
        bounds = list(partitioner.bounds)
        ascending = bool(partitioner.ascending)
        return lambda it, buckets, limit: bucket_range(it, buckets, bounds, ascending, limit)
    fast = _hash_fast_path(partitioner)
    get_partition = partitioner.getPartition
    return lambda it, buckets, limit: bucket_hash(it, buckets, fast, get_partition, limit)


def _bucket(records: Iterable, partitioner, num_reduces: int, spill: _Spill,
            batch: int) -> None:
    """Append records to per-partition buffers, serializing full ones. Hash-partitioned
    pairs of the core types (ints, str, floats, None, bools) are written into marshaled
    batches as they are bucketed (``pair_buckets``): one pass over the records in the
    order they were made, no per-partition list of them and no second walk to marshal
    them (that walk, in bucket order, was a cache miss a record)."""
    buckets: list[list] = [[] for _ in range(num_reduces)]
    it = iter(records)
    from ..partitioner import RangePartitioner

    if type(partitioner) is not RangePartitioner:
        _bucket_pairs(it, partitioner, buckets, spill, batch)
        return
    fill = _bucketer(partitioner)
    while True:
        n = fill(it, buckets, batch)
        for i, b in enumerate(buckets):
            if len(b) >= batch:
                spill.add(i, b)
                buckets[i] = []
        if n < batch:
            break
    for i, b in enumerate(buckets):
        if b:
            spill.add(i, b)


def _bucket_pairs(it: Iterator, partitioner, buckets: list[list], spill: _Spill,
                  batch: int) -> None:
    pb = pair_buckets(len(buckets), batch)
    fast = _hash_fast_path(partitioner)
    get_partition = partitioner.getPartition
    ready: list[tuple[int, int, bytes]] = []

    def drain() -> None:
        for p, count, body in ready:
            spill.add_frame(p, marshaled_frame(body), count)
        ready.clear()

    while True:
        n = pb.fill(it, buckets, fast, get_partition, batch, ready)
        drain()
        for i, b in enumerate(buckets):
            if len(b) >= batch:
                spill.add(i, b)
                buckets[i] = []
        if n < batch:
            break
    pb.flush(ready)
    drain()
    for i, b in enumerate(buckets):
        if b:
            spill.add(i, b)


def _estimate_entry(k, v) -> int:
    size = sys.getsizeof(k) + sys.getsizeof(v) + 104  # dict slot + hash table share
    if isinstance(v, list):
        size += sum(sys.getsizeof(x) for x in v[:8]) * max(1, len(v)) // max(1, len(v[:8]))
    return size


def _combine(records: Iterable, aggregator, budget: int, on_full) -> Any:
    """Map-side combine; ``on_full(d)`` drains what it holds when over the budget.
    Returns what is left: a dict, or a ``sum_table`` (both have ``len()`` and
    ``items()``).

    ``reduceByKey(operator.add)`` of int values sums into a ``sum_table``
    (``asyncspark._accel``): each key's sum a machine int beside its key, no int object
    made or freed a record, one probe a record. A value it cannot hold (not an int, or
    a sum beyond 64 bits) hands the sums so far on to the dict path below.

    There each combiner sits in a one-item list (``MODE_CELLS``), updated in place:
    one dict lookup per record instead of two (lookups of equal but not identical keys
    cost a rich comparison each). The dict returned holds the combiners themselves.
    """
    create = aggregator.createCombiner
    if create is identity:
        create = None
    merge = aggregator.mergeValue
    mode = merge_mode(create, merge)
    it = iter(records)
    prior: Any = None
    if mode == MODE_ADD:
        table = sum_table()
        while True:
            n, pending = table.add(it, _CHECK_EVERY)
            if pending is not None:
                it = chain((pending,), it)
                prior = table.items()
                break
            if table.nbytes > budget:
                on_full(table)
                table = sum_table()
            if n < _CHECK_EVERY:
                return table
    if mode != MODE_LIST:
        mode |= MODE_CELLS
    cells: dict = {}
    if prior is not None:
        cells.update((k, [s]) for k, s in prior)
    entry = 0
    while True:
        n, k = merge_into(cells, it, create, merge, _CHECK_EVERY, mode)
        if n:
            entry = max(entry, _estimate_entry(k, cells[k]))
            if len(cells) * entry > budget:
                on_full(_uncell(cells, mode))
                cells.clear()
        if n < _CHECK_EVERY:
            return _uncell(cells, mode)


def _uncell(cells: dict, mode: int) -> dict:
    if not mode & MODE_CELLS:
        return cells
    return {k: c[0] for k, c in cells.items()}


_SAMPLE = 65536  # records combined before deciding whether combining pays
_USELESS_COMBINE = 0.5  # more distinct keys than this fraction of the sample: skip it


def write_map_output(records: Iterable[Any], dep: ShuffleDependency, map_id: int, attempt: int,
                     local_dir: str, budget: int, stats: dict[str, Any] | None = None,
                     sorted_runs: str | None = None) -> tuple[str, list[int], int]:
    """Write one map task's output; ``(data_path, sizes, spilled_bytes)``. ``stats``, when
    given, gets ``records`` written, ``write_ns`` spent writing, ``peak`` bytes held and
    ``memory_spilled``, the bytes held in memory when they were spilled. ``sorted_runs``:
    the path of this partition's sorted runs written by sortByKey's sampling
    (``sorted_runs.py``), cut instead of reading ``records`` when it can be read whole
    (and then deleted)."""
    spills: list[_Spill] = []
    try:
        if sorted_runs is not None:
            done = _write_sorted_runs(sorted_runs, dep, map_id, attempt, local_dir, budget,
                                      spills)
            if done is not None:
                return done
        return _write_map_output(records, dep, map_id, attempt, local_dir, budget,
                                 spills)
    finally:
        if stats is not None and spills:
            spill = spills[-1]
            stats["records"] = spill.records
            stats["write_ns"] = spill.write_ns
            stats["peak"] = spill.peak
            stats["memory_spilled"] = spill.memory_spilled


def _open_spill(dep, map_id: int, attempt: int, local_dir: str, budget: int,
                spills: list) -> tuple[str, _Spill, int]:
    """One map task's output files' base path, its spill writer (registered in
    ``spills``) and the bucketing batch size for its number of reduce partitions."""
    num_reduces = dep.partitioner.numPartitions
    base = os.path.join(local_dir, f"shuffle_{dep.shuffle_id}_{map_id}_{attempt}")
    spill = _Spill(num_reduces, base + ".spill", budget)
    spills.append(spill)
    return base, spill, max(64, min(4096, (1 << 16) // max(1, num_reduces)))


def _write_sorted_runs(path: str, dep, map_id: int, attempt: int, local_dir: str,
                       budget: int, spills: list) -> tuple[str, list[int], int] | None:
    """The map output cut from sorted runs, or None (nothing left behind) when they
    cannot be read whole."""
    from .sorted_runs import cut_sorted_runs

    base, spill, batch = _open_spill(dep, map_id, attempt, local_dir, budget, spills)
    partitioner = dep.partitioner
    num_reduces = partitioner.numPartitions
    try:
        cut_sorted_runs(path, partitioner, spill.add_frame,
                        lambda records: _bucket(records, partitioner, num_reduces, spill,
                                                batch))
        sizes = spill.finish(base + ".data", base + ".index")
    except (OSError, CorruptDataError):
        spill.close()
        spills.pop()
        return None
    except BaseException:
        spill.close()
        raise
    for p in (path, path + ".index"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    return base + ".data", sizes, spill.spilled_bytes


def _write_map_output(records: Iterable, dep, map_id: int, attempt: int, local_dir: str,
                      budget: int, spills: list) -> tuple[str, list[int], int]:
    base, spill, batch = _open_spill(dep, map_id, attempt, local_dir, budget, spills)
    partitioner = dep.partitioner
    num_reduces = partitioner.numPartitions
    try:
        if dep.map_side_combine:
            def drain(d: dict) -> None:
                _bucket(d.items(), partitioner, num_reduces, spill, batch)
                spill.spill()

            records = iter(records)
            agg = dep.aggregator
            if agg.createCombiner is identity and agg.mergeValue is agg.mergeCombiners:
                # A value is its own combiner (reduceByKey): when a sample shows that
                # combining hardly reduces the records (nearly unique keys), skip it and
                # ship the rest as they are; the reduce side merges them all the same.
                head = _combine(islice(records, _SAMPLE), agg, budget, drain)
                if len(head) > _SAMPLE * _USELESS_COMBINE:
                    _bucket(head.items(), partitioner, num_reduces, spill, batch)
                    _bucket(records, partitioner, num_reduces, spill, batch)
                    return base + ".data", spill.finish(base + ".data", base + ".index"), \
                        spill.spilled_bytes
                records = chain(head.items(), records)
            rest = _combine(records, agg, budget, drain)
            _bucket(rest.items(), partitioner, num_reduces, spill, batch)
        else:
            _bucket(records, partitioner, num_reduces, spill, batch)
        sizes = spill.finish(base + ".data", base + ".index")
    except BaseException:
        spill.close()
        raise
    return base + ".data", sizes, spill.spilled_bytes


class ShuffleWriteFunc:
    """The function of a shuffle map task: write the partition's records, return its
    ``MapStatus`` (``[executor_id, host, port, data_path, sizes]``)."""

    def __init__(self, dep: ShuffleDependency) -> None:
        self.dep: ShuffleDependency = dep

    def __call__(self, iterator: Iterable[Any]) -> list[Any]:
        env = get_env()
        ctx = TaskContext.get()
        budget = env.settings.shuffle_memory
        stats: dict = {}
        runs = self.dep.sorted_runs  # written by sortByKey's sampling
        where = runs.get(ctx.partitionId()) if runs else None
        sorted_runs = None
        if where is not None:
            executor_id, host, run_path = where
            if ((env.settings.shuffle_local_read and host == env.host)
                    or executor_id == env.executor_id):
                sorted_runs = run_path
        path, sizes, spilled = write_map_output(
            iterator, self.dep, ctx.partitionId(), ctx.attemptNumber(), env.local_dir, budget,
            stats, sorted_runs)
        m = ctx._metrics
        written = sum(sizes)
        m["shuffle_spill_bytes"] = m.get("shuffle_spill_bytes", 0) + spilled
        m["shuffle_write_bytes"] = m.get("shuffle_write_bytes", 0) + written
        # Spark's names (the UI's task metrics)
        m["shuffleWriteBytes"] = m.get("shuffleWriteBytes", 0) + written
        m["shuffleWriteRecords"] = m.get("shuffleWriteRecords", 0) + stats["records"]
        m["shuffleWriteTime"] = m.get("shuffleWriteTime", 0) + stats["write_ns"]
        if spilled:
            m["diskBytesSpilled"] = m.get("diskBytesSpilled", 0) + spilled
            m["memoryBytesSpilled"] = m.get("memoryBytesSpilled", 0) + stats["memory_spilled"]
        m["peakExecutionMemory"] = max(m.get("peakExecutionMemory", 0), stats["peak"])
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        env.outputs[(self.dep.shuffle_id, ctx.partitionId())] = (path, offsets)
        return [env.executor_id, env.host, env.block_port, path, sizes]


def remove_shuffles(env: ExecutorEnv, shuffle_ids: list[int]) -> int:
    """Executor side of ``RemoveShuffle`` (the driver's ContextCleaner): forget these
    shuffles' map output locations and outputs, and delete every file of theirs in this
    executor's local directory (older attempts' too); the files removed."""
    ids = set(shuffle_ids)
    for sid in ids:
        env.map_outputs.pop(sid, None)
    for key in [k for k in env.outputs if k[0] in ids]:
        env.outputs.pop(key, None)
    prefixes = tuple(f"shuffle_{sid}_" for sid in ids)
    removed = 0
    try:
        entries = list(os.scandir(env.local_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(prefixes):
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed
