"""The reduce side of ``reduceByKey(operator.add)`` (and of any combine whose merge of
combiners is ``operator.add`` on values that are their own combiners) for int pairs,
without decoding records.

The batches of such a shuffle are marshaled lists of ``(int, int)`` pairs. ``int_sums``
(``asyncspark._accel``) adds them up straight from the marshal bytes into a C table of
64-bit keys and 128-bit sums (25 bytes a key, measured as the table's own ``nbytes``),
making no object until the sums are read out: decoding 20 M pairs into tuples, merging
them into a dict and freeing them was most of this side's time. A batch that holds
anything else (a str key, a float, an int beyond 64 bits), or a table that would outgrow
the memory budget, hands over to the general path: the sums so far go into an
``ExternalMerger`` (which spills) as combiners, then every remaining batch is decoded and
merged there. Either way each key comes out once with the sum of its values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from .._accel import int_sums
from ..functions import Aggregator
from .reader import count_read_records, decode_shuffle_body, shuffle_bodies
from .sorter import ExternalMerger

__all__ = ["sum_shuffle"]


def sum_shuffle(shuffle_id: int, reduce_id: int, aggregator: Aggregator, combined: bool,
                budget: float, spill_dir: str | os.PathLike | None
                ) -> tuple[Iterator, ExternalMerger | None]:
    """Reduce partition ``reduce_id`` of ``shuffle_id`` merged with ``aggregator`` (whose
    merges are ``operator.add``; ``combined``: the map side combined), and the
    ``ExternalMerger`` that merged it when the fast path could not (else None)."""
    table = int_sums()
    bodies = shuffle_bodies(shuffle_id, reduce_id)
    records = 0
    for marshaled, body, block in bodies:
        n = table.add_marshaled(body) if marshaled else -1
        if n < 0 or table.nbytes > budget:
            if n >= 0:
                records += n
                first: list = []
            else:
                first = [(marshaled, body, block)]
            count_read_records(records)
            return _general(table, first, bodies, shuffle_id, reduce_id, aggregator,
                            combined, budget, spill_dir)
        records += n
    count_read_records(records)
    return table, None


def _general(table, first: list, bodies: Iterable, shuffle_id: int, reduce_id: int,
             aggregator: Aggregator, combined: bool, budget: float,
             spill_dir: str | os.PathLike | None) -> tuple[Iterator, ExternalMerger]:
    merger = ExternalMerger(aggregator, budget, spill_dir)
    merger.merge_combiners(table)  # the sums so far, as combiners (emptying the table)
    n = 0
    try:
        for items in (first, bodies):
            for marshaled, body, block in items:
                batch = decode_shuffle_body(marshaled, body, block, shuffle_id, reduce_id)
                n += len(batch)
                if combined:
                    merger.merge_combiners(batch)
                else:
                    merger.merge_values(batch)
    except BaseException:
        merger.close()
        raise
    finally:
        count_read_records(n)
    return merger.items(), merger
