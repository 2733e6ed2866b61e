"""Spilling aggregation and sorting within a memory budget: the reduce side of a shuffle
(and map-side combining).

``ExternalMerger`` combines ``(key, value)`` records by key, as PySpark's
``ExternalMerger`` does: an in-memory dict that, past the budget, is written out hashed
by key into ``num_spill_partitions`` files and cleared; at the end each spill partition is
merged on its own (recursively re-spilled with another hash if it is still too big).
``ExternalSorter`` sorts: sorted runs spilled past the budget, ``heapq.merge``d at the
end.

Memory is *estimated*, not measured (measuring the process RSS is process-wide, lags
behind frees and never shrinks back reliably). Every batch of records (at most 2048,
fewer when records are big next to the budget) the loop stops for an O(1) check:

- the sorter samples the size of a couple of the newly buffered items (``estimate_size``:
  ``sys.getsizeof`` of the item and of its elements, sampled for long containers) into a
  running mean; estimate = ``getsizeof(buffer) + len(buffer) * mean``;
- the merger's estimate is ``getsizeof(dict) + entries * mean_entry + heavy entries``.
  ``mean_entry`` comes from a systematic sample of 32 entries (key + combiner sizes),
  re-taken after as many records as the dict has entries (a C-level walk of the keys,
  ~15 ns per entry, so amortised to a few ns per record) and extrapolated in between by
  its growth per record (combiners that grow, like ``groupByKey``'s lists). The key of
  the batch's last record is measured every check: that sample is weighted by record
  count, so the keys receiving most records (the large combiners of skewed data) are
  found and tracked apart as "heavy" entries.

Shared objects are counted at every reference (small ints, repeated values), so the
estimate errs high; against ``tracemalloc`` it is within 10% for str/int records, growing
lists and skewed keys. The goal is that a shuffle process peaks within about twice its
budget plus a fixed overhead (a batch of records, pickle and file buffers); measured
peaks (``tracemalloc``, data 4-7x the budget) are 1.1-1.5x the budget. The exception is
a single key whose combiner alone is bigger than the budget: it is built whole in memory
(after at most ``_MAX_DEPTH`` levels of re-spilling), as it has to be to be returned.

Spill files are sequences of frames (``batch.frame_header``: length and CRC-32, then a
pickled batch), checked as they are read back: a corrupt or truncated one fails the task
with ``CorruptDataError`` naming the file (the task is retried); a write that fails (a
full disk) raises an ``OSError`` naming it.

Both classes run synchronously (on a task thread) and make one private directory under
``spill_dir`` on their first spill, removed by ``close()`` (also when ``items()`` or the
iterator of ``sorted()`` is exhausted or closed, and when the object is collected).
"""

from __future__ import annotations

import heapq
import os
import pickle
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from .._accel import merge_into, merge_mode, sort_int_keys
from .._files import naming
from ..errors import CorruptDataError, SerializationError
from ..functions import Aggregator, identity
from ..sizes import estimate_size
from .batch import frame_header, read_frames

__all__ = ["FIRST_ITEM", "ExternalMerger", "ExternalSorter"]

_getsizeof = sys.getsizeof
_PICKLE_PROTOCOL = 5
_MAX_BATCH = 2048  # records between two budget checks, at most
_MIN_BATCH = 16
_FIRST_BATCH = 64  # before anything is known of record sizes
_SPILL_BATCH = 512  # (key, combiner) pairs per pickled batch in a spill partition file
_MAX_FANIN = 64  # sorted runs read at once, at most; more are merged in several passes
_MAX_DEPTH = 3  # spill levels (64**3 x the budget) before merging in memory regardless
_SAMPLES = 32  # dict entries sampled per full estimate
_MAX_HEAVY = 16
_END = object()



FIRST_ITEM = itemgetter(0)  # sort key of records by their key, as sortByKey sorts


def _sort(buf: list, key: Callable | None, reverse: bool) -> None:
    """``buf.sort(key=key, reverse=reverse)``; records keyed by ``FIRST_ITEM`` with int
    keys are radix-sorted (same order, ~15x faster on 625k records)."""
    if key is FIRST_ITEM and sort_int_keys(buf, reverse):
        return
    buf.sort(key=key, reverse=reverse)


def _entry_size(k: Any, c: Any) -> int:
    return estimate_size(k) + estimate_size(c)


class _SpillDir:
    """A private directory under ``parent``, made on first use (``get``), removed by
    ``remove()`` or when ``owner`` is collected."""

    __slots__ = ("_finalizer", "_parent", "path")

    def __init__(self, parent: str | os.PathLike | None) -> None:
        self._parent = parent
        self.path: str | None = None
        self._finalizer: weakref.finalize | None = None

    def get(self, owner: object, prefix: str) -> str:
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix=prefix, dir=self._parent)
            self._finalizer = weakref.finalize(owner, shutil.rmtree, self.path, True)
        return self.path

    def remove(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs shutil.rmtree once
            self._finalizer = None
        self.path = None


def _load_batches(path: str, buffering: int = 1 << 16) -> Iterator[Any]:
    """The batches of a spill file, each checked against its checksum."""
    loads = pickle.loads
    with open(path, "rb", buffering=buffering) as f:
        for body in read_frames(f, path):
            try:
                batch = loads(body)
            except Exception as exc:  # matched its checksum: written by other code
                raise CorruptDataError(f"{path}: a spilled batch does not unpickle: "
                                       f"{exc!r}") from exc
            yield batch


def _dump_batch(batch: list, f: Any, path: str) -> int:
    """Write one framed pickled batch to the spill file ``f``; the bytes written."""
    try:
        body = pickle.dumps(batch, _PICKLE_PROTOCOL)
    except Exception as exc:
        raise SerializationError(
            f"cannot spill records to disk: a key, value or combiner does not pickle "
            f"({exc})") from exc
    header = frame_header(body)
    try:
        f.write(header)
        f.write(body)
    except OSError as exc:
        raise naming(exc, path, "writing a spill file") from exc
    return len(header) + len(body)


def _check_budget(memory_budget: Any) -> float:
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)):
        raise TypeError(f"memory_budget must be a number of bytes, not "
                        f"{type(memory_budget).__name__}")
    if not memory_budget > 0:
        raise ValueError(f"memory_budget must be positive, got {memory_budget}")
    return memory_budget


class _DictSizer:
    """The merger's memory estimate of its dict (see the module docstring)."""

    __slots__ = ("dmean", "heavy", "mean", "records", "records_full")

    def __init__(self) -> None:
        self.mean = 0.0  # bytes per ordinary entry at the last full estimate
        self.dmean = 0.0  # its growth per record since the full estimate before
        self.heavy: dict[Any, int] = {}  # key -> bytes of its entry, for the big ones
        self.records = 0  # records merged so far (all spills included)
        self.records_full = -1  # self.records at the last full estimate

    def reset(self) -> None:
        """The dict was spilled and cleared; keep what was learnt of entry sizes."""
        self.heavy.clear()
        self.records_full = -1

    def _full(self, d: dict) -> None:
        n = len(d)
        heavy = self.heavy
        for k in [k for k in heavy if k not in d]:
            del heavy[k]
        for k in heavy:
            heavy[k] = _entry_size(k, d[k])
        step = max(1, n // _SAMPLES)
        sizes = sorted(_entry_size(k, d[k])
                       for k in islice(d, step // 2, None, step) if k not in heavy)
        if sizes:
            # Outliers (8x the median) are tracked apart instead of inflating the mean.
            cut = 8 * sizes[len(sizes) // 2] + 512
            ordinary = [s for s in sizes if s <= cut]
            mean = sum(ordinary) / len(ordinary)
            if len(ordinary) < len(sizes) and len(heavy) < _MAX_HEAVY:
                for k in islice(d, step // 2, None, step):
                    if len(heavy) >= _MAX_HEAVY:
                        break
                    if k not in heavy and (s := _entry_size(k, d[k])) > cut:
                        heavy[k] = s
            if self.records_full >= 0 and self.records > self.records_full:
                self.dmean = max(0.0, (mean - self.mean) / (self.records - self.records_full))
            self.mean = mean
        limit = 4 * self.mean + 512
        for k in [k for k, s in heavy.items() if s <= limit]:
            del heavy[k]
        self.records_full = self.records

    def estimate(self, d: dict, probe: Any) -> float:
        """Bytes held by ``d``; ``probe`` is the key of the last record merged."""
        n = len(d)
        if self.records_full < 0 or self.records - self.records_full >= max(n, 8192):
            self._full(d)
        heavy = self.heavy
        c = d.get(probe, _END)
        if c is not _END:
            if probe in heavy:
                heavy[probe] = _entry_size(probe, c)
            elif (s := _entry_size(probe, c)) > 4 * self.mean + 512:
                heavy[probe] = s
                if len(heavy) > _MAX_HEAVY:
                    self._full(d)  # many big entries: the mean is stale
        mean = self.mean + self.dmean * (self.records - self.records_full)
        return _getsizeof(d) + (n - len(heavy)) * mean + sum(heavy.values())


class ExternalMerger:
    """Combines ``(key, value)`` records per key with an ``Aggregator``, spilling to disk
    past ``memory_budget`` bytes (estimated).

    Feed it with ``merge_values`` (raw values) and/or ``merge_combiners`` (combiners made
    elsewhere, e.g. map-side), then iterate ``items()`` once: every key exactly once with
    its fully merged combiner. Values and combiners are merged in the order they were fed,
    also across spills (``groupByKey`` lists keep the order of arrival). Keys and
    combiners must pickle once it spills (``SerializationError`` otherwise).

    ``spill_count`` counts the times in-memory data went to disk (re-spills of a spill
    partition that was still too big included), ``spilled_bytes`` the bytes written,
    ``memory_spilled`` the (estimated) bytes the spilled data held in memory.
    ``createCombiner=identity`` (this module's) skips a call per new key.

    >>> import operator
    >>> m = ExternalMerger(Aggregator(identity, operator.add, operator.add), 1 << 20)
    >>> m.merge_values([("a", 1), ("b", 2), ("a", 3)])
    >>> sorted(m.items())
    [('a', 4), ('b', 2)]
    """

    def __init__(self, aggregator: Aggregator, memory_budget: float,
                 spill_dir: str | os.PathLike[str] | None = None,
                 num_spill_partitions: int = 64, *, _depth: int = 0) -> None:
        if num_spill_partitions < 2:
            raise ValueError(f"num_spill_partitions must be at least 2, "
                             f"got {num_spill_partitions}")
        self.aggregator = aggregator
        self.memory_budget: float = _check_budget(memory_budget)
        self.num_spill_partitions = num_spill_partitions
        self.spill_count: int = 0
        self.spilled_bytes: int = 0
        self.memory_spilled: int = 0
        self._depth = _depth
        self._data: dict[Any, Any] = {}
        self._sizer = _DictSizer()
        self._batch = _FIRST_BATCH
        self._dir = _SpillDir(spill_dir)
        self._paths: list[str] | None = None  # spill partition files, after the first spill

    # --- feeding -------------------------------------------------------------------------

    def merge_values(self, iterable: Iterable[tuple[Any, Any]]) -> None:
        """Merge raw ``(key, value)`` records (``createCombiner``/``mergeValue``)."""
        agg = self.aggregator
        create = agg.createCombiner
        self._merge(iterable, None if create is identity else create, agg.mergeValue)

    def merge_combiners(self, iterable: Iterable[tuple[Any, Any]]) -> None:
        """Merge ``(key, combiner)`` pairs (``mergeCombiners``)."""
        self._merge(iterable, None, self.aggregator.mergeCombiners)

    def _merge(self, iterable: Iterable[tuple[Any, Any]],
               create: Callable[[Any], Any] | None, merge: Callable[[Any, Any], Any]) -> None:
        d = self._data
        it = iter(iterable)
        sizer = self._sizer
        mode = merge_mode(create, merge)
        while True:
            batch = self._batch
            n, k = merge_into(d, it, create, merge, batch, mode)
            if not n:
                return
            sizer.records += n
            held = sizer.estimate(d, k)
            if held > self.memory_budget and self._depth < _MAX_DEPTH:
                self._spill(held=held)
            if n < batch:
                return
            self._batch = max(_MIN_BATCH, int(min(
                _MAX_BATCH, self.memory_budget / 8 / (sizer.mean + sizer.dmean + 64))))

    # --- spilling ------------------------------------------------------------------------

    def _spill(self, force: bool = False, held: float | None = None) -> None:
        """Write the dict's entries to the spill partition files, hashed by key, and clear
        it. A dict of one entry is not spilled (unless forced): it would come back whole.
        ``held``: the dict's estimated size, if known."""
        d = self._data
        if len(d) < (1 if force else 2):
            return
        self.memory_spilled += int(held if held is not None
                                   else self._sizer.estimate(d, None))
        n = self.num_spill_partitions
        if self._paths is None:
            root = self._dir.get(self, "asyncspark-merge-")
            self._paths = [os.path.join(root, str(i)) for i in range(n)]
        paths = self._paths
        # Keys grouped by partition (8 bytes each), then one file at a time: the spill
        # needs little memory beyond the dict's. Each level of recursion hashes anew.
        keys_by_part: list[list] = [[] for _ in range(n)]
        depth = self._depth
        if depth == 0:
            for k in d:
                keys_by_part[hash(k) % n].append(k)
        else:
            for k in d:
                keys_by_part[hash((depth, k)) % n].append(k)
        written = 0
        for i, keys in enumerate(keys_by_part):
            if not keys:
                continue
            path = paths[i]
            try:
                with open(path, "ab", buffering=1 << 16) as f:
                    for j in range(0, len(keys), _SPILL_BATCH):
                        batch = [(k, d[k]) for k in keys[j:j + _SPILL_BATCH]]
                        written += _dump_batch(batch, f, path)
            except OSError as exc:  # the flush at close: a full disk
                raise naming(exc, path, "writing a spill file") from exc
            keys_by_part[i] = []
        d.clear()
        self.spill_count += 1
        self.spilled_bytes += written
        self._sizer.reset()

    # --- results -------------------------------------------------------------------------

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every key once with its merged combiner; then the spill files are removed.
        Keys come in no particular order. Call it once, after all merging."""
        if self._paths is None:  # never spilled: the dict's own iterator, at C speed
            d, self._data = self._data, {}
            self.close()
            return iter(d.items())
        return self._merged_items()

    def _merged_items(self) -> Iterator[tuple[Any, Any]]:
        try:
            self._spill(force=True)
            assert self._paths is not None
            for path in self._paths:
                if not os.path.exists(path):
                    continue
                sub = ExternalMerger(self.aggregator, self.memory_budget,
                                     self._dir.path, self.num_spill_partitions,
                                     _depth=self._depth + 1)
                try:
                    sub.merge_combiners(chain.from_iterable(_load_batches(path)))
                    os.unlink(path)
                    yield from sub.items()
                finally:
                    self.spill_count += sub.spill_count
                    self.spilled_bytes += sub.spilled_bytes
                    self.memory_spilled += sub.memory_spilled
                    sub.close()
        finally:
            self.close()

    def close(self) -> None:
        """Drop the data and remove the spill files."""
        self._data = {}
        self._paths = None
        self._dir.remove()

    def __enter__(self) -> ExternalMerger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExternalSorter:
    """Sorts more records than fit in ``memory_budget`` bytes: sorted runs spilled to
    disk, merged at the end. Stable, like ``sorted``. The merge reads at most ``fan-in``
    runs at once (what half the budget allows, 2 to 64), in several passes if needed.

    ``spill_count`` counts the sorted runs written (those of merge passes included),
    ``spilled_bytes`` the bytes written, ``memory_spilled`` the (estimated) bytes the
    runs spilled from memory held there (merge passes go from disk to disk).

    >>> list(ExternalSorter(1 << 20).sorted([3, 1, 2], reverse=True))
    [3, 2, 1]
    """

    def __init__(self, memory_budget: float,
                 spill_dir: str | os.PathLike[str] | None = None) -> None:
        self.memory_budget: float = _check_budget(memory_budget)
        self.spill_count: int = 0
        self.spilled_bytes: int = 0
        self.memory_spilled: int = 0
        self._dir = _SpillDir(spill_dir)
        self._runs = 0  # run files made, for their names
        self._merging = 0  # iterators of sorted() still reading runs
        # Reading a run holds its file buffer and one unpickled batch (~3x this); the
        # runs read at once share half the budget.
        self._batch_bytes = int(max(4 << 10, min(64 << 10, self.memory_budget / 32)))
        self._fanin = max(2, min(_MAX_FANIN, int(self.memory_budget / 2
                                                  / (3 * self._batch_bytes))))

    def sorted(self, iterable: Iterable[Any], key: Callable[[Any], Any] | None = None,
               reverse: bool = False) -> Iterator[Any]:
        """Consume ``iterable`` and return an iterator over its items in order, as
        ``sorted(iterable, key=key, reverse=reverse)`` would give them."""
        budget = self.memory_budget
        it = iter(iterable)
        buf: list[Any] = []
        runs: list[str] = []
        mean = 0.0  # bytes per buffered item (item and, with a key, its sort key)
        samples = 0
        batch = _FIRST_BATCH
        while True:
            n0 = len(buf)
            buf.extend(islice(it, batch))
            n = len(buf)
            if n == n0:
                break
            for item in (buf[n0], buf[-1]) if n - n0 > 1 else (buf[-1],):
                s = estimate_size(item) + 8
                if key is not None:
                    s += estimate_size(key(item)) + 8
                samples += 1
                mean += (s - mean) / samples
            held = _getsizeof(buf) + n * mean
            if held > budget and n > 1:
                self.memory_spilled += int(held)
                _sort(buf, key, reverse)
                runs.append(self._write_run(buf, mean))
                buf.clear()
            batch = max(_MIN_BATCH, int(min(_MAX_BATCH, budget / 8 / (mean + 64))))
        _sort(buf, key, reverse)
        if not runs:
            return iter(buf)
        return self._merge_runs(runs, buf, key, reverse, mean)

    def _write_run(self, items: Iterable[Any], item_size: float) -> str:
        root = self._dir.get(self, "asyncspark-sort-")
        path = os.path.join(root, f"run{self._runs}")
        self._runs += 1
        per_batch = max(1, min(4096, int(self._batch_bytes / max(item_size, 1))))
        it = iter(items)
        try:
            with open(path, "wb", buffering=self._batch_bytes) as f:
                while batch := list(islice(it, per_batch)):
                    self.spilled_bytes += _dump_batch(batch, f, path)
        except OSError as exc:  # the flush at close: a full disk
            raise naming(exc, path, "writing a spill file") from exc
        self.spill_count += 1
        return path

    def _read_run(self, path: str) -> Iterator[Any]:
        for batch in _load_batches(path, self._batch_bytes):
            yield from batch

    def _merge_runs(self, runs: list[str], last: list[Any], key: Callable | None,
                    reverse: bool, item_size: float) -> Iterator[Any]:
        self._merging += 1
        try:
            # Passes merging consecutive runs (so equal items keep their input order)
            # until the last pass reads few enough runs at once.
            fanin = self._fanin
            while len(runs) + 1 > fanin:
                merged_runs = []
                for i in range(0, len(runs), fanin):
                    group = runs[i:i + fanin]
                    if len(group) > 1:
                        merged = heapq.merge(*map(self._read_run, group), key=key,
                                             reverse=reverse)
                        merged_runs.append(self._write_run(merged, item_size))
                        for path in group:
                            os.unlink(path)
                    else:
                        merged_runs.extend(group)
                runs = merged_runs
            yield from heapq.merge(*map(self._read_run, runs), last, key=key,
                                   reverse=reverse)
        finally:
            for path in runs:
                if os.path.exists(path):
                    os.unlink(path)
            self._merging -= 1
            if not self._merging:
                self._dir.remove()

    def close(self) -> None:
        """Remove every spill file of this sorter (iterators of ``sorted`` that are not
        exhausted stop working)."""
        self._dir.remove()

    def __enter__(self) -> ExternalSorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
