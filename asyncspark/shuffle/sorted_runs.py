"""sortByKey's shuffle, the sort-specific parts: the reduce side's sort of a whole
partition's batches.

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

import os
from collections.abc import Iterable, Iterator
from itertools import chain

from .._accel import sort_marshaled_pairs, sorted_int_pairs
from ..sizes import estimate_size
from .batch import marshaled_list_length
from .reader import count_read_records, decode_shuffle_body, shuffle_bodies
from .sorter import FIRST_ITEM, ExternalSorter

__all__ = ["sort_batches", "sort_shuffle"]

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
            return _decoded(chain(zip([True] * len(held), held, blocks), first, bodies),
                            shuffle_id, reduce_id, ascending, budget, spill_dir)
        held.append(body)
        counts.append(n)
        blocks.append(block)
        nbytes += len(body)
        records += n
    pairs = sort_marshaled_pairs(held, counts, not ascending)
    if pairs is None:
        return _decoded(zip([True] * len(held), held, blocks), shuffle_id, reduce_id,
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
