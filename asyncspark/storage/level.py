"""``StorageLevel``: how a persisted RDD's partitions are kept (PySpark's class).

Flags, constants, ``repr`` and ``str`` as PySpark's ``StorageLevel(useDisk, useMemory,
useOffHeap, deserialized, replication=1)``: ``MEMORY_ONLY`` is ``StorageLevel(False,
True, False, False, 1)`` and prints ``Memory Serialized 1x Replicated``.

One difference, internal: PySpark's memory levels keep pickled bytes (Python objects
live in the JVM as bytes). asyncspark's executors are Python processes, so for the memory
levels a user persists with (``MEMORY_ONLY``, ``MEMORY_AND_DISK``, ...) the engine keeps
the partition's live objects (fast to read), and pickles only what goes to disk or to
``OFF_HEAP`` (a host-level shared-memory store that the driver owns: it survives the
crash of the executor that wrote it). ``RDD.getStorageLevel()`` returns the level as given.
Inside the engine (``RDD._storage_level``, the block manager) ``deserialized`` means "live
objects", and ``MEMORY_ONLY_SER``/``MEMORY_AND_DISK_SER`` (PySpark 3's names, aliases of
``MEMORY_ONLY``/``MEMORY_AND_DISK`` there and here) are the serialized memory levels.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StorageLevel"]


class StorageLevel:
    """Flags for controlling the storage of an RDD (see the module docstring)."""

    __slots__ = ("deserialized", "replication", "useDisk", "useMemory", "useOffHeap")

    DISK_ONLY: StorageLevel
    DISK_ONLY_2: StorageLevel
    DISK_ONLY_3: StorageLevel
    MEMORY_ONLY: StorageLevel
    MEMORY_ONLY_2: StorageLevel
    MEMORY_ONLY_SER: StorageLevel
    MEMORY_ONLY_SER_2: StorageLevel
    MEMORY_AND_DISK: StorageLevel
    MEMORY_AND_DISK_2: StorageLevel
    MEMORY_AND_DISK_SER: StorageLevel
    MEMORY_AND_DISK_SER_2: StorageLevel
    MEMORY_AND_DISK_DESER: StorageLevel
    OFF_HEAP: StorageLevel
    NONE: StorageLevel

    def __init__(self, useDisk: bool, useMemory: bool, useOffHeap: bool,
                 deserialized: bool, replication: int = 1) -> None:
        if isinstance(replication, bool) or not isinstance(replication, int) \
                or not 1 <= replication <= 40:
            raise ValueError(f"replication must be an integer from 1 to 40, got {replication!r}")
        self.useDisk: bool = bool(useDisk)
        self.useMemory: bool = bool(useMemory)
        self.useOffHeap: bool = bool(useOffHeap)
        self.deserialized: bool = bool(deserialized)
        self.replication: int = replication

    @property
    def is_valid(self) -> bool:
        """Whether blocks are stored anywhere at all (``NONE`` is not)."""
        return self.useDisk or self.useMemory or self.useOffHeap

    def _flags(self) -> tuple[bool, bool, bool, bool, int]:
        return (self.useDisk, self.useMemory, self.useOffHeap, self.deserialized,
                self.replication)

    def to_wire(self) -> list[bool | int]:
        """The five flags as they travel to executors (internal).

        >>> StorageLevel.MEMORY_AND_DISK.to_wire()
        [True, True, False, False, 1]
        """
        return list(self._flags())

    @classmethod
    def from_wire(cls, flags: list[Any]) -> StorageLevel:
        """A storage level from ``to_wire()``'s flags (internal).

        >>> StorageLevel.from_wire([True, True, False, False, 1]) == StorageLevel.MEMORY_AND_DISK
        True
        """
        if not isinstance(flags, (list, tuple)) or len(flags) != 5:
            raise ValueError(f"not a storage level: {flags!r}")
        return cls(*flags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageLevel) and self._flags() == other._flags()

    def __hash__(self) -> int:
        return hash(self._flags())

    def __repr__(self) -> str:
        return "StorageLevel({}, {}, {}, {}, {})".format(*self._flags())

    def __str__(self) -> str:
        result = ""
        result += "Disk " if self.useDisk else ""
        result += "Memory " if self.useMemory else ""
        result += "OffHeap " if self.useOffHeap else ""
        result += "Deserialized " if self.deserialized else "Serialized "
        result += f"{self.replication}x Replicated"
        return result


StorageLevel.NONE = StorageLevel(False, False, False, False)
StorageLevel.DISK_ONLY = StorageLevel(True, False, False, False)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, False, 2)
StorageLevel.DISK_ONLY_3 = StorageLevel(True, False, False, False, 3)
StorageLevel.MEMORY_ONLY = StorageLevel(False, True, False, False)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, False, False)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, False, False, 2)
StorageLevel.OFF_HEAP = StorageLevel(True, True, True, False, 1)
StorageLevel.MEMORY_AND_DISK_DESER = StorageLevel(True, True, False, True)
StorageLevel.MEMORY_ONLY_SER = StorageLevel.MEMORY_ONLY
StorageLevel.MEMORY_ONLY_SER_2 = StorageLevel.MEMORY_ONLY_2
StorageLevel.MEMORY_AND_DISK_SER = StorageLevel.MEMORY_AND_DISK
StorageLevel.MEMORY_AND_DISK_SER_2 = StorageLevel.MEMORY_AND_DISK_2
