"""The engine's per-record loops (narrow transformations, the shuffle): from the C
extension ``asyncspark._speedups`` when it was built (``pip install`` compiles it where a
C compiler is available), else these pure-Python twins, which behave the same
(tests/unit/test_accel.py runs both).

Each loop takes at most ``limit`` records and returns, so that its caller can check a
memory budget or flush buffers between batches.

``NATIVE`` tells which is in use; ``ASYNCSPARK_PURE_PYTHON=1`` in the environment forces
the twins (to compare, or to rule the extension out when debugging).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .functions import append_to, to_list

__all__ = [
    "MODE_ADD",
    "MODE_CALL",
    "MODE_CELLS",
    "MODE_LIST",
    "NATIVE",
    "PIPE_FILTER",
    "PIPE_FLAT_MAP",
    "PIPE_FLAT_MAP_VALUES",
    "PIPE_KEY_BY",
    "PIPE_MAP",
    "PIPE_MAP_VALUES",
    "STOP_ITERATION_MSG",
    "bucket_hash",
    "bucket_range",
    "count",
    "encode_pairs",
    "encode_sorted_pairs",
    "int_sums",
    "merge_into",
    "merge_mode",
    "pair_buckets",
    "pipe",
    "sort_int_keys",
    "sort_marshaled_pairs",
    "sorted_int_pairs",
    "sum_table",
]

MODE_CALL, MODE_ADD, MODE_LIST, MODE_CELLS = 0, 1, 2, 4
(PIPE_MAP, PIPE_FLAT_MAP, PIPE_FILTER, PIPE_KEY_BY, PIPE_MAP_VALUES,
 PIPE_FLAT_MAP_VALUES) = range(6)
STOP_ITERATION_MSG = "Caught StopIteration thrown from user's code; failing the task"


# -- the per-element iterators of narrow transformations ------------------------------------
# A StopIteration escaping the user's function would end the iteration that called it and
# silently drop the rest of the partition (PySpark's SPARK-23754): it fails the task instead.

def _map(f: Callable, it: Iterator) -> Iterator:
    try:
        for x in it:
            yield f(x)
    except StopIteration as exc:
        raise RuntimeError(STOP_ITERATION_MSG) from exc


def _flat_map(f: Callable, it: Iterator) -> Iterator:
    try:
        for x in it:
            yield from f(x)
    except StopIteration as exc:
        raise RuntimeError(STOP_ITERATION_MSG) from exc


def _filter(f: Callable, it: Iterator) -> Iterator:
    try:
        for x in it:
            if f(x):
                yield x
    except StopIteration as exc:
        raise RuntimeError(STOP_ITERATION_MSG) from exc


def _key_by(f: Callable, it: Iterator) -> Iterator:
    try:
        for x in it:
            yield f(x), x
    except StopIteration as exc:
        raise RuntimeError(STOP_ITERATION_MSG) from exc


def _map_values(f: Callable, it: Iterator) -> Iterator:
    try:
        for k, v in it:
            yield k, f(v)
    except StopIteration as exc:
        raise RuntimeError(STOP_ITERATION_MSG) from exc


def _flat_map_values(f: Callable, it: Iterator) -> Iterator:
    try:
        for k, v in it:
            for x in f(v):
                yield k, x
    except StopIteration as exc:
        raise RuntimeError(STOP_ITERATION_MSG) from exc


_PIPES = (_map, _flat_map, _filter, _key_by, _map_values, _flat_map_values)


def py_pipe(kind: int, f: Callable, iterable: Iterable) -> Iterator:
    """The elements of ``iterable`` through ``f`` as transformation ``kind`` does
    (``PIPE_MAP``, ``PIPE_FLAT_MAP``, ...)."""
    if not 0 <= kind < len(_PIPES):
        raise ValueError(f"unknown pipe kind {kind}")
    return _PIPES[kind](f, iter(iterable))


def py_count(iterable: Iterable) -> int:
    """The number of elements ``iterable`` yields (consuming it)."""
    n = 0
    for _ in iterable:
        n += 1
    return n


def py_sort_int_keys(records: list, reverse: bool) -> bool:
    """Sort ``records`` in place by ``record[0]`` as ``sort(key=itemgetter(0),
    reverse=reverse)`` does, when every record is a tuple or list whose first item is an
    exact int within 64 bits; else leave it untouched and return False (the C twin
    radix-sorts those keys)."""
    lo, hi = -(1 << 63), (1 << 63) - 1
    for r in records:
        if type(r) not in (tuple, list) or not r:
            return False
        k = r[0]
        if type(k) is not int or not lo <= k <= hi:
            return False
    records.sort(key=operator.itemgetter(0), reverse=reverse)
    return True


def py_sorted_int_pairs(batches: list[list], reverse: bool) -> Iterator | None:
    """When every record of the lists in ``batches`` is a 2-tuple whose key is an exact
    int within 64 bits: empty the lists and return an iterator over the records in the
    order ``sorted(records, key=itemgetter(0), reverse=reverse)`` gives; else None, the
    lists untouched. (The C twin copies the keys out, frees the records in the order
    they were made and makes each tuple afresh when it is asked for: a record's
    memory is then touched in order, not at random.)"""
    if type(batches) is not list or any(type(b) is not list for b in batches):
        raise TypeError("sorted_int_pairs() needs a list of lists")
    lo, hi = -(1 << 63), (1 << 63) - 1
    for batch in batches:
        for r in batch:
            if type(r) is not tuple or len(r) != 2:
                return None
            k = r[0]
            if type(k) is not int or not lo <= k <= hi:
                return None
    records = [r for batch in batches for r in batch]
    for batch in batches:
        batch.clear()
    records.sort(key=operator.itemgetter(0), reverse=reverse)
    return iter(records)


_INT64 = (-(1 << 63), (1 << 63) - 1)


def py_sort_marshaled_pairs(bodies: list[bytes], counts: list[int],
                            reverse: bool) -> Iterator | None:
    """When each of ``bodies`` is the marshal of a list of ``counts[i]`` 2-tuples whose
    keys are exact ints within 64 bits and whose values are None, bools, such ints or
    floats: an iterator over the records in the order ``sorted(records,
    key=itemgetter(0), reverse=reverse)`` gives; else None. (The C twin reads marshal's
    format itself, making no object until a record is asked for.)"""
    import marshal

    if (type(bodies) is not list or type(counts) is not list
            or len(bodies) != len(counts)):
        raise TypeError("sort_marshaled_pairs() needs two lists of the same length")
    if any(type(b) is not bytes for b in bodies) or any(operator.index(c) < 0 for c in counts):
        raise TypeError("sort_marshaled_pairs() needs bytes and counts >= 0")
    lo, hi = _INT64
    records: list = []
    for body, n in zip(bodies, counts, strict=True):
        try:
            batch = marshal.loads(body)
        except (ValueError, EOFError, TypeError):
            return None
        if type(batch) is not list or len(batch) != n:
            return None
        for r in batch:
            if type(r) is not tuple or len(r) != 2:
                return None
            k, v = r
            if type(k) is not int or not lo <= k <= hi:
                return None
            t = type(v)
            if not (v is None or t is bool or t is float or (t is int and lo <= v <= hi)):
                return None
        records.extend(batch)
    records.sort(key=operator.itemgetter(0), reverse=reverse)
    return iter(records)


def py_encode_sorted_pairs(records: list, batch: int
                           ) -> tuple[list[bytes], list[int], list[int]] | None:
    """When every item of ``records`` is a 2-tuple whose key is an exact int within 64
    bits and whose value is None, a bool, such an int or a float: the records sorted by
    key (stable), cut into lists of ``batch``, each as ``marshal.dumps(..., 2)`` bytes,
    with the first and last key of each; else None."""
    import marshal

    if type(records) is not list:
        raise TypeError("encode_sorted_pairs() needs a list")
    if operator.index(batch) < 1:
        raise ValueError(f"limit must be at least 1, got {batch}")
    lo, hi = _INT64
    for r in records:
        if type(r) is not tuple or len(r) != 2:
            return None
        k, v = r
        if type(k) is not int or not lo <= k <= hi:
            return None
        t = type(v)
        if not (v is None or t is bool or t is float or (t is int and lo <= v <= hi)):
            return None
    ordered = sorted(records, key=operator.itemgetter(0))
    cuts = [ordered[i:i + batch] for i in range(0, len(ordered), batch)]
    return ([marshal.dumps(c, 2) for c in cuts], [c[0][0] for c in cuts],
            [c[-1][0] for c in cuts])


class _IntSums:
    """Sums of int values per int key (``py_int_sums``)."""

    def __init__(self) -> None:
        self._sums: dict[int, int] | None = {}
        self._items: Iterator | None = None

    def add_marshaled(self, body: bytes) -> int:
        """When ``body`` is the marshal of a list of 2-tuples of ints within 64 bits: add
        each value to its key's sum, return the number of pairs; else -1, nothing added."""
        import marshal

        if type(body) is not bytes:
            raise TypeError("add_marshaled() needs bytes")
        if self._items is not None:
            raise RuntimeError("IntSums: add_marshaled() after reading")
        try:
            pairs = marshal.loads(body)
        except (ValueError, EOFError, TypeError):
            return -1
        lo, hi = _INT64
        if type(pairs) is not list:
            return -1
        for r in pairs:
            if (type(r) is not tuple or len(r) != 2 or type(r[0]) is not int
                    or type(r[1]) is not int or not lo <= r[0] <= hi
                    or not lo <= r[1] <= hi):
                return -1
        sums = self._sums
        for k, v in pairs:
            sums[k] = sums[k] + v if k in sums else v
        return len(pairs)

    @property
    def nbytes(self) -> int:
        import sys

        sums = self._sums or {}
        return sys.getsizeof(sums) + 64 * len(sums)

    def __len__(self) -> int:
        return len(self._sums or {})

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> tuple[int, int]:
        if self._items is None:
            self._items = iter(list((self._sums or {}).items()))
        try:
            return next(self._items)
        except StopIteration:
            self._sums = None
            raise


def py_int_sums() -> _IntSums:
    """An empty table of sums of int values per int key, added from marshaled batches of
    pairs (``add_marshaled``); ``nbytes`` is the memory it holds; iterating gives each
    ``(key, sum)`` once and empties it. (The C twin is an open-addressing table of 64-bit
    keys and 128-bit sums: no object is made until the sums are read out.)"""
    return _IntSums()


def _encodable(x: Any) -> bool:
    t = type(x)
    if t is int:
        return _INT64[0] <= x <= _INT64[1]
    if t is str:
        try:
            x.encode("utf-8")
        except UnicodeEncodeError:  # surrogates: marshal's own way
            return False
        return True
    return x is None or t is bool or t is float


def py_encode_pairs(records: list) -> bytes | None:
    """``marshal.dumps(records, 2)`` when ``records`` is a list of 2-tuples whose items
    are exact ints within 64 bits, None, bools, floats or str; else None."""
    import marshal

    if type(records) is not list:
        raise TypeError("encode_pairs() needs a list")
    for r in records:
        if type(r) is not tuple or len(r) != 2 or not (_encodable(r[0]) and _encodable(r[1])):
            return None
    return marshal.dumps(records, 2)


class _PairBuckets:
    """Per-partition buffers of encodable records (``py_pair_buckets``)."""

    def __init__(self, nparts: int, batch: int) -> None:
        if operator.index(nparts) < 1 or operator.index(batch) < 1:
            raise ValueError(f"limit must be at least 1, got {min(nparts, batch)}")
        self.batch = batch
        self.bufs: list[list] = [[] for _ in range(nparts)]

    def _emit(self, p: int, ready: list) -> None:
        import marshal

        buf = self.bufs[p]
        ready.append((p, len(buf), marshal.dumps(buf, 2)))
        self.bufs[p] = []

    def fill(self, it: Iterator, buckets: list[list], fast: bool,
             get_partition: Callable[[Any], int], limit: int, ready: list) -> int:
        """As ``bucket_hash``, except that a record ``encode_pairs`` can write, of a
        partition whose list in ``buckets`` is empty, goes into this object's buffer of
        that partition; a buffer reaching ``batch`` records, or about to be followed by a
        record of the list, is appended to ``ready`` as ``(partition, count, marshaled
        body)``: a partition's records come out in their order, ``ready`` first."""
        if len(buckets) != len(self.bufs) or type(ready) is not list:
            raise TypeError("fill() needs nparts buckets and a ready list")
        sink: list[list] = [[] for _ in buckets]
        n = py_bucket_hash(it, sink, fast, get_partition, limit)
        # replay in arrival order: py_bucket_hash kept each partition's order
        order = []
        for p, recs in enumerate(sink):
            order.extend((p, r) for r in recs)
        return self._place(order, buckets, ready, n)

    def _place(self, order: list, buckets: list[list], ready: list, n: int) -> int:
        for p, kv in order:
            buf = self.bufs[p]
            if (not buckets[p] and type(kv) is tuple and len(kv) == 2
                    and _encodable(kv[0]) and _encodable(kv[1])):
                buf.append(kv)
                if len(buf) >= self.batch:
                    self._emit(p, ready)
            else:
                if buf:
                    self._emit(p, ready)
                buckets[p].append(kv)
        return n

    def flush(self, ready: list) -> None:
        """Append every non-empty buffer to ``ready`` (see ``fill``)."""
        if type(ready) is not list:
            raise TypeError("flush() needs a list")
        for p, buf in enumerate(self.bufs):
            if buf:
                self._emit(p, ready)


def py_pair_buckets(nparts: int, batch: int) -> _PairBuckets:
    """Per-partition buffers of records as marshal (version 2) writes them, filled by
    ``fill`` (the C twin writes marshal's bytes itself, as records arrive)."""
    return _PairBuckets(nparts, batch)


class _SumTable:
    """Int sums per key in insertion order (``py_sum_table``)."""

    def __init__(self) -> None:
        self._sums: dict = {}
        self._reading = False
        self._busy = False

    def add(self, it: Iterator, limit: int) -> tuple[int, Any]:
        """Add up to ``limit`` ``(key, value)`` records of ``it``; ``(n, pending)``:
        ``pending`` is None or the record that stopped it (a value that is not an exact
        int within 64 bits, or a sum that would leave them), taken and not added."""
        if not isinstance(it, Iterator):
            raise TypeError("add() needs an iterator")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if self._reading or self._busy:
            raise RuntimeError("SumTable: add() while adding" if self._busy
                               else "SumTable: add() after items()")
        lo, hi = _INT64
        sums = self._sums
        n = 0
        self._busy = True
        try:
            for k, v in it:
                if type(v) is not int or not lo <= v <= hi:
                    return n, (k, v)
                s = sums.get(k, _MISSING)
                if s is _MISSING:
                    sums[k] = v
                elif not lo <= s + v <= hi:
                    return n, (k, v)
                else:
                    sums[k] = s + v
                n += 1
                if n >= limit:
                    break
        finally:
            self._busy = False
        return n, None

    @property
    def nbytes(self) -> int:
        import sys

        return sys.getsizeof(self._sums) + sum(sys.getsizeof(k) for k in self._sums)

    def __len__(self) -> int:
        return 0 if self._reading else len(self._sums)

    def items(self) -> Iterator[tuple[Any, int]]:
        if self._busy:
            raise RuntimeError("SumTable: items() while adding")
        if self._reading:
            raise RuntimeError("SumTable: items() twice")
        self._reading = True
        sums, self._sums = self._sums, {}
        return iter(sums.items())


def py_sum_table() -> _SumTable:
    """An empty table of int sums per key, in insertion order: the map-side combine of
    ``reduceByKey(operator.add)`` over records whose values are ints. ``add(it, limit)``
    adds records, ``len()`` is the number of keys, ``nbytes`` the memory it holds,
    ``items()`` gives each ``(key, sum)`` once, in the order the keys came. (The C twin
    keeps each sum as a 64-bit int beside its key: a record costs one probe and makes
    no object.)"""
    return _SumTable()


# -- shuffle loops -------------------------------------------------------------------------


def py_merge_into(d: dict, it: Iterator, create: Callable | None, merge: Callable,
                  limit: int, mode: int) -> tuple[int, Any]:
    """Merge up to ``limit`` ``(key, value)`` records of ``it`` into ``d``: a new key gets
    ``create(v)`` (``v`` when ``create`` is None), a known one ``merge(d[k], v)``. Modes:
    ``MODE_CALL`` calls the functions, ``MODE_ADD`` merges with ``+``, ``MODE_LIST`` makes
    ``[v]`` and appends; ``MODE_CALL`` or ``MODE_ADD`` plus ``MODE_CELLS`` keep each
    combiner in a one-item list replaced in place (one dict lookup per record, not
    two). ``(records merged, key of the last one)``; fewer than ``limit`` means ``it``
    is exhausted."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    cells = bool(mode & MODE_CELLS)
    base = mode & ~MODE_CELLS
    if base not in (MODE_CALL, MODE_ADD, MODE_LIST) or (cells and base == MODE_LIST):
        raise ValueError(f"unknown merge mode {mode}")
    n = 0
    k = None
    if base == MODE_ADD:
        merge = operator.add
    if cells:
        for k, v in it:
            n += 1
            c = d.get(k, _MISSING)
            if c is _MISSING:
                d[k] = [v if create is None else create(v)]
            else:
                if type(c) is not list or len(c) != 1:
                    raise TypeError("merge_into(): a cell is not a 1-item list")
                c[0] = merge(c[0], v)
            if n >= limit:
                break
    elif base == MODE_LIST:
        for k, v in it:
            n += 1
            c = d.get(k, _MISSING)
            if c is _MISSING:
                d[k] = [v]
            elif type(c) is list:
                c.append(v)
            else:
                d[k] = merge(c, v)
            if n >= limit:
                break
    elif create is None:
        for k, v in it:
            n += 1
            if k in d:
                d[k] = merge(d[k], v)
            else:
                d[k] = v
            if n >= limit:
                break
    else:
        for k, v in it:
            n += 1
            if k in d:
                d[k] = merge(d[k], v)
            else:
                d[k] = create(v)
            if n >= limit:
                break
    return n, k


_MISSING = object()


def _check_partition(key: Any, p: int, nparts: int) -> int:
    if not 0 <= p < nparts:
        raise ValueError(f"the partitioner put key {key!r:.200} in partition {p}: "
                         f"not in [0, {nparts})")
    return p


def py_bucket_hash(it: Iterator, buckets: list[list], fast: bool,
                   get_partition: Callable[[Any], int], limit: int) -> int:
    """Append up to ``limit`` records of ``it`` to ``buckets[p]``, ``p`` being the
    partition of ``kv[0]``: ``hash(key) % len(buckets)`` for str and int keys when
    ``fast``, else ``get_partition(key)``. Returns the records taken."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    nparts = len(buckets)
    appends = [b.append for b in buckets]
    n = 0
    for kv in it:
        k = kv[0]
        t = k.__class__
        if fast and (t is str or t is int):
            p = hash(k) % nparts
        else:
            p = _check_partition(k, operator.index(get_partition(k)), nparts)
        appends[p](kv)
        n += 1
        if n >= limit:
            break
    return n


def py_bucket_range(it: Iterator, buckets: list[list], bounds: list, ascending: bool,
                    limit: int) -> int:
    """As ``bucket_hash`` for a range partitioner with the identity key function: a key
    goes to ``bisect_left(bounds, key)``, mirrored when not ``ascending``."""
    from bisect import bisect_left

    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    nparts = len(buckets)
    appends = [b.append for b in buckets]
    last = nparts - 1
    n = 0
    for kv in it:
        k = kv[0]
        p = bisect_left(bounds, k)
        if not ascending:
            p = last - p
        appends[_check_partition(k, p, nparts) if p > last or p < 0 else p](kv)
        n += 1
        if n >= limit:
            break
    return n


def merge_mode(create: Callable | None, merge: Callable) -> int:
    """The fastest mode of ``merge_into`` that behaves as calling these functions."""
    if create is None and merge is operator.add:
        return MODE_ADD
    if create is to_list and merge is append_to:
        return MODE_LIST
    return MODE_CALL


merge_into = py_merge_into
bucket_hash = py_bucket_hash
bucket_range = py_bucket_range
pipe = py_pipe
count = py_count
sort_int_keys = py_sort_int_keys
sorted_int_pairs = py_sorted_int_pairs
sort_marshaled_pairs = py_sort_marshaled_pairs
encode_sorted_pairs = py_encode_sorted_pairs
int_sums = py_int_sums
encode_pairs = py_encode_pairs
pair_buckets = py_pair_buckets
sum_table = py_sum_table
NATIVE = False
if os.environ.get("ASYNCSPARK_PURE_PYTHON", "") in ("", "0"):
    try:
        from ._speedups import (  # type: ignore[import-not-found]
            bucket_hash,
            bucket_range,
            count,
            encode_pairs,
            encode_sorted_pairs,
            int_sums,
            merge_into,
            pair_buckets,
            pipe,
            sort_int_keys,
            sort_marshaled_pairs,
            sorted_int_pairs,
            sum_table,
        )
    except ImportError:  # not built (no compiler at install time): the twins serve
        pass
    else:
        NATIVE = True
