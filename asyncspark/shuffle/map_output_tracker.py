"""The driver's MapOutputTracker: where each map task of each shuffle left its output.

Plain state, touched only from the driver's event loop (DAGScheduler handlers register
and unregister; the TaskScheduler reads when it ships locations to executors).
"""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = ["MapOutputTracker", "MapStatus"]

# A map task's result: [executor_id, host, port, data_path, sizes] (sizes: bytes per
# reduce partition). A list, not a class, so it travels as msgpack unchanged.
MapStatus: TypeAlias = list[Any]


class _ShuffleOutputs:
    __slots__ = ("available", "epoch", "num_reduces", "statuses")

    def __init__(self, num_maps: int, num_reduces: int) -> None:
        self.statuses: list[MapStatus | None] = [None] * num_maps
        self.available = 0
        self.num_reduces = num_reduces
        self.epoch = 0


class MapOutputTracker:
    def __init__(self) -> None:
        self._shuffles: dict[int, _ShuffleOutputs] = {}

    def register_shuffle(self, shuffle_id: int, num_maps: int, num_reduces: int) -> None:
        if shuffle_id not in self._shuffles:
            self._shuffles[shuffle_id] = _ShuffleOutputs(num_maps, num_reduces)

    def has_shuffle(self, shuffle_id: int) -> bool:
        return shuffle_id in self._shuffles

    def register(self, shuffle_id: int, map_id: int, status: MapStatus) -> None:
        out = self._shuffles[shuffle_id]
        if out.statuses[map_id] is None:
            out.available += 1
        out.statuses[map_id] = status
        out.epoch += 1

    def unregister(self, shuffle_id: int, map_id: int, executor_id: str | None = None) -> bool:
        """Forget one map output (only if ``executor_id``, when given, holds it: a newer
        output of that map task stays); True if it was registered."""
        out = self._shuffles.get(shuffle_id)
        if out is None or not 0 <= map_id < len(out.statuses):
            return False
        st = out.statuses[map_id]
        if st is None or (executor_id is not None and st[0] != executor_id):
            return False
        out.statuses[map_id] = None
        out.available -= 1
        out.epoch += 1
        return True

    def remove_executor(self, executor_id: str) -> list[tuple[int, int]]:
        """Forget every output held by ``executor_id``; the (shuffle, map) ids lost."""
        lost = []
        for sid, out in self._shuffles.items():
            for map_id, st in enumerate(out.statuses):
                if st is not None and st[0] == executor_id:
                    out.statuses[map_id] = None
                    out.available -= 1
                    lost.append((sid, map_id))
            if lost and lost[-1][0] == sid:
                out.epoch += 1
        return lost

    def is_available(self, shuffle_id: int) -> bool:
        out = self._shuffles.get(shuffle_id)
        return out is not None and out.available == len(out.statuses)

    def missing(self, shuffle_id: int) -> list[int]:
        out = self._shuffles[shuffle_id]
        return [i for i, st in enumerate(out.statuses) if st is None]

    def statuses(self, shuffle_id: int) -> list[MapStatus | None]:
        return self._shuffles[shuffle_id].statuses

    def epoch(self, shuffle_id: int) -> int:
        return self._shuffles[shuffle_id].epoch

    def unregister_shuffle(self, shuffle_id: int) -> None:
        self._shuffles.pop(shuffle_id, None)
