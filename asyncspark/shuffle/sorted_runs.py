"""sortByKey's shuffle, the sort-specific parts: sorted runs written by the sampling
pass, which the map stage then cuts without reading the input again, and the reduce
side's sort of a whole partition's batches.

**Sorted runs.** sortByKey samples its input to choose the range bounds, which costs a
pass over the input (as PySpark's), and the map stage used to compute the input again.
When the keys are the records' own (no key function) and the records are pairs of a
64-bit int key and a None, bool, int or float value, the sampling task instead keeps its
partition's records in chunks (as many as half the memory budget holds), sorts each in C
and writes it as marshaled batches of ``PRESORT_BATCH`` records (``encode_sorted_pairs``)
to a file in the executor's local directory, with an index of each batch's offset,
length, record count and first and last key (``write_sorted_runs``). The map task that
finds its partition's file on its host (``cut_sorted_runs``) puts each batch whose first
and last keys fall into the same range partition into that partition's output as it is
(bytes copied, checksum checked, nothing decoded): every batch but those that straddle a
bound, which are decoded and bucketed record by record. A file that is missing, cut or
corrupt makes the map task compute its input as before. The files are named after the
shuffle, so they go with its other files (``remove_shuffles``); a map task that used one
deletes it.

A reduce partition of sortByKey arrives as batches, bodies of marshaled lists of
``(key, value)`` tuples for the core types. While they are estimated to fit the shuffle
memory budget, the bodies are held as bytes (some 11 bytes a record for int pairs) and,
when every key is an int within 64 bits and every value None, a bool, such an int or a
float, sorted at once by ``sort_marshaled_pairs`` (``asyncspark._accel``): the C twin
reads marshal's format itself into an array of (key, value) machine words, radix-sorts
it, and makes each output tuple when it is asked for. No record is decoded into objects
that are then touched in random memory order (freeing 625k records in sorted order
costs more than decoding and sorting them).

Other records are decoded and, while they fit the budget, sorted by
``sorted_int_pairs`` when their keys are ints (the records' references copied out, the
decoded records freed in the order they were made, output tuples made when asked);
anything else, and partitions over the budget, go through ``ExternalSorter``, which
spills sorted runs.
"""

from __future__ import annotations

import marshal
import math
import os
from collections.abc import Iterable, Iterator
from itertools import chain, islice

from .._accel import encode_sorted_pairs, sort_marshaled_pairs, sorted_int_pairs
from .._files import naming
from ..errors import CorruptDataError
from ..sizes import estimate_size
from .batch import check_frame, marshaled_frame, marshaled_list_length
from .reader import count_read_records, decode_shuffle_body, shuffle_bodies
from .sorter import FIRST_ITEM, ExternalSorter

__all__ = ["PRESORT_BATCH", "Reservoir", "cut_sorted_runs", "sort_batches", "sort_shuffle",
           "write_sorted_runs"]

PRESORT_BATCH = 4096  # records per batch of a sorted run
_FIRST_CHUNK = 4096  # records looked at before the chunk size is chosen

_LIST_SLOT = 8  # a held batch's pointer to each of its records
# Bytes a record costs in sort_marshaled_pairs: its 24-byte (key, value) entry and the
# radix sort's second array of them.
_ENTRY_BYTES = 48


def sort_shuffle(shuffle_id: int, reduce_id: int, ascending: bool, budget: float,
                 spill_dir: str | os.PathLike | None
                 ) -> tuple[Iterator, ExternalSorter | None]:
    """Reduce partition ``reduce_id`` of ``shuffle_id`` sorted by key (sortByKey by the
    keys themselves), and the ``ExternalSorter`` that sorted it when it had to (None when
    it was sorted in memory)."""
    bodies = shuffle_bodies(shuffle_id, reduce_id)
    held: list[bytes] = []
    counts: list[int] = []
    blocks: list[tuple[int, str]] = []
    nbytes = records = 0
    for marshaled, body, block in bodies:
        n = marshaled_list_length(body) if marshaled else -1
        if n < 0 or nbytes + len(body) + (records + n) * _ENTRY_BYTES > budget:
            first = [(marshaled, body, block)]
            done = zip([True] * len(held), held, blocks, strict=True)
            return _decoded(chain(done, first, bodies), shuffle_id, reduce_id, ascending,
                            budget, spill_dir)
        held.append(body)
        counts.append(n)
        blocks.append(block)
        nbytes += len(body)
        records += n
    pairs = sort_marshaled_pairs(held, counts, not ascending)
    if pairs is None:
        return _decoded(zip([True] * len(held), held, blocks, strict=True), shuffle_id, reduce_id,
                        ascending, budget, spill_dir)
    count_read_records(records)
    return pairs, None


def _decoded(bodies: Iterable[tuple[bool, bytes, tuple[int, str]]], shuffle_id: int,
             reduce_id: int, ascending: bool, budget: float,
             spill_dir: str | os.PathLike | None) -> tuple[Iterator, ExternalSorter | None]:
    def batches() -> Iterator[list]:
        n = 0
        try:
            for marshaled, body, block in bodies:
                batch = decode_shuffle_body(marshaled, body, block, shuffle_id, reduce_id)
                n += len(batch)
                yield batch
        finally:
            count_read_records(n)

    return sort_batches(batches(), ascending, budget, spill_dir)


def sort_batches(batches: Iterator[list], ascending: bool, budget: float,
                 spill_dir: str | os.PathLike | None) -> tuple[Iterator, ExternalSorter | None]:
    """The records of ``batches`` sorted by key (``sortByKey``'s order, stable), and the
    ``ExternalSorter`` that sorted them when they did not fit ``budget`` bytes or have
    keys other than exact ints (None when they were sorted in memory)."""
    held: list[list] = []
    records = 0
    mean = 0.0  # bytes per held record: the first record of each batch, averaged
    sampled = 0
    it = iter(batches)
    for batch in it:
        if not batch:
            continue
        held.append(batch)
        records += len(batch)
        sampled += 1
        mean += (estimate_size(batch[0]) + _LIST_SLOT - mean) / sampled
        if records * mean > budget:
            rest = chain(chain.from_iterable(held), chain.from_iterable(it))
            del held
            return _external(rest, ascending, budget, spill_dir)
    pairs = sorted_int_pairs(held, not ascending)
    if pairs is not None:
        return pairs, None
    return _external(chain.from_iterable(held), ascending, budget, spill_dir)


def _external(records: Iterator, ascending: bool, budget: float,
              spill_dir: str | os.PathLike | None) -> tuple[Iterator, ExternalSorter]:
    sorter = ExternalSorter(budget, spill_dir)
    return sorter.sorted(records, key=FIRST_ITEM, reverse=not ascending), sorter


# -- sorted runs written by the sampling pass ----------------------------------------------

class Reservoir:
    """A uniform sample of ``size`` items of a stream offered in chunks (Li's "Algorithm
    L": the positions picked are drawn ahead, so a chunk costs O(picks in it))."""

    def __init__(self, size: int, rng) -> None:
        self.size = size
        self.rng = rng
        self.items: list = []
        self.seen = 0
        self.w = 1.0
        self.next = -1  # position of the next item to pick, once the reservoir is full

    def _advance(self) -> None:
        rng = self.rng
        self.w *= math.exp(math.log(1.0 - rng.random()) / self.size)
        denom = math.log1p(-self.w)  # -inf when w is 1: skip nothing
        skip = int(math.log(1.0 - rng.random()) / denom) if denom else 0
        self.next += skip + 1

    def offer(self, chunk: list) -> None:
        base = self.seen
        self.seen += len(chunk)
        items = self.items
        if len(items) < self.size:
            take = self.size - len(items)
            items.extend(chunk[:take])
            if len(items) < self.size:
                return
            self.next = base + take - 1
            self._advance()
        rng = self.rng
        while self.next < self.seen:
            items[rng.randrange(self.size)] = chunk[self.next - base]
            self._advance()


def write_sorted_runs(records: Iterator, path: str, budget: float, reservoir: Reservoir
                      ) -> bool:
    """Consume ``records`` into ``reservoir`` and, while they are int-keyed pairs of the
    core types, into sorted runs at ``path`` (and its index at ``path + ".index"``);
    whether the whole input went into the file (else there is none)."""
    it = iter(records)
    chunk = list(islice(it, _FIRST_CHUNK))
    if not chunk:
        return False
    probes = chunk[:: max(1, len(chunk) // 16)]
    mean = sum(map(estimate_size, probes)) / len(probes)
    # a chunk's records, its list slots and the C sort's two arrays: half the budget
    per_chunk = max(_FIRST_CHUNK, int(budget / 2 / (mean + 8 + 48)))
    tmp = path + ".tmp"
    index: list[tuple[int, int, int, int, int]] = []
    try:
        with open(tmp, "wb") as f:
            offset = 0
            while chunk:
                reservoir.offer(chunk)
                encoded = encode_sorted_pairs(chunk, PRESORT_BATCH)
                if encoded is None:
                    del chunk
                    _offer_rest(it, reservoir)
                    return False
                bodies, firsts, lasts = encoded
                left = len(chunk)
                del chunk
                for body, first, last in zip(bodies, firsts, lasts, strict=True):
                    frame = marshaled_frame(body)
                    f.write(frame)
                    n = min(left, PRESORT_BATCH)
                    index.append((offset, len(frame), n, first, last))
                    left -= n
                    offset += len(frame)
                del bodies
                chunk = list(islice(it, per_chunk))
        with open(path + ".index.tmp", "wb") as f:
            f.write(marshal.dumps(index, 2))
        os.replace(tmp, path)
        os.replace(path + ".index.tmp", path + ".index")
        return True
    except OSError as exc:
        raise naming(exc, path, "writing sortByKey's sorted runs") from exc
    finally:
        for p in (tmp, path + ".index.tmp"):
            if os.path.exists(p):
                os.unlink(p)


def _offer_rest(it: Iterator, reservoir: Reservoir) -> None:
    while chunk := list(islice(it, 1 << 16)):
        reservoir.offer(chunk)


def cut_sorted_runs(path: str, partitioner, add_frame, add_records) -> None:
    """Put the sorted runs at ``path`` into a map task's output: ``add_frame(part, frame,
    count)`` for a batch whose records all go to partition ``part`` (its checksum
    checked), ``add_records(records)`` for the records of a batch that straddles a bound
    (the caller buckets them). ``OSError`` or ``CorruptDataError`` when the file cannot
    be read whole: the caller then drops what it was given and computes its input."""
    try:
        with open(path + ".index", "rb") as f:
            index = marshal.loads(f.read())
    except (ValueError, EOFError, TypeError) as exc:
        raise CorruptDataError(f"{path}.index: {exc}") from exc
    get_partition = partitioner.getPartition
    with open(path, "rb", buffering=1 << 20) as f:
        pos = 0
        for offset, length, count, first, last in index:
            if offset != pos:
                raise CorruptDataError(f"{path}: the index does not follow the file")
            frame = f.read(length)
            pos += length
            body_length = check_frame(frame)
            p = get_partition(first)
            if p == get_partition(last):
                add_frame(p, frame, count)
                continue
            records = marshal.loads(memoryview(frame)[len(frame) - body_length:])
            if len(records) != count:
                raise CorruptDataError(f"{path}: a batch holds {len(records)} records, "
                                       f"the index says {count}")
            add_records(records)
