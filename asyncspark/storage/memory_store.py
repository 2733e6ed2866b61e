"""The executor's memory store: cached partitions in LRU order under a byte budget.

An entry is either a deserialized partition (a ``list`` of records, sized with the
shuffle's ``estimate_size``) or serialized (pickled ``bytes``, sized by length). Putting
an entry evicts least recently used ones until it fits; the caller decides what happens
to the evicted (spilled to disk or dropped). Not thread-safe: the ``BlockManager`` holds
its lock around every call.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["MemoryEntry", "MemoryStore"]


@dataclass(slots=True)
class MemoryEntry:
    value: Any  # list of records (deserialized) or bytes (serialized)
    size: int
    deserialized: bool
    level: Any  # the StorageLevel it was put with (decides spill or drop on eviction)


class MemoryStore:
    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ValueError(f"memory budget must not be negative, got {budget}")
        self.budget = budget
        self.used: int = 0
        self._entries: OrderedDict[str, MemoryEntry] = OrderedDict()

    def __contains__(self, block_id: str) -> bool:
        return block_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def block_ids(self) -> list[str]:
        return list(self._entries)

    def get(self, block_id: str) -> MemoryEntry | None:
        """The entry, marked most recently used; None when absent."""
        entry = self._entries.get(block_id)
        if entry is not None:
            self._entries.move_to_end(block_id)
        return entry

    def put(self, block_id: str, entry: MemoryEntry) -> tuple[bool, list[tuple[str, MemoryEntry]]]:
        """Store ``entry`` if it can fit in the budget at all, evicting least recently
        used entries (never ``block_id`` itself) as needed. Returns ``(stored,
        evicted)``; nothing is evicted when the entry cannot fit."""
        old = self._entries.pop(block_id, None)
        if old is not None:
            self.used -= old.size
        if entry.size > self.budget:
            if old is not None:  # leave the store as it was
                self._entries[block_id] = old
                self.used += old.size
            return False, []
        evicted: list[tuple[str, MemoryEntry]] = []
        while self.used + entry.size > self.budget and self._entries:
            victim_id, victim = self._entries.popitem(last=False)
            self.used -= victim.size
            evicted.append((victim_id, victim))
        self._entries[block_id] = entry
        self.used += entry.size
        return True, evicted

    def remove(self, block_id: str) -> MemoryEntry | None:
        entry = self._entries.pop(block_id, None)
        if entry is not None:
            self.used -= entry.size
        return entry
