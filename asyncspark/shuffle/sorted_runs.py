"""sortByKey's shuffle, the sort-specific parts: the reduce side's sort of whole decoded
batches.

A reduce partition of sortByKey arrives as decoded batches (lists of ``(key, value)``
tuples). While their records are estimated to fit the shuffle memory budget, the batches
are held as they are and, when every key is an exact 64-bit int, sorted at once by
``sorted_int_pairs`` (``asyncspark._accel``): a C radix sort of the keys that frees the
decoded records in the order they were made and builds each output tuple when it is
asked for, so that no record is touched in random memory order (freeing 625k records
in sorted order costs more than decoding and sorting them). Other keys, and partitions
over the budget, go through ``ExternalSorter`` (which spills sorted runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import chain

from .._accel import sorted_int_pairs
from ..sizes import estimate_size
from .sorter import FIRST_ITEM, ExternalSorter

__all__ = ["sort_batches"]

_LIST_SLOT = 8  # a held batch's pointer to each of its records


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
