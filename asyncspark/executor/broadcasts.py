"""The executor's broadcast cache: one copy of each broadcast value per executor.

Owns the executor side of broadcast variables (``broadcast.py`` keeps the driver side
and the ``Broadcast`` object): the first ``Broadcast.value`` read in a task fetches the
pickled value from the driver's broadcast server (the block transport, with the
broadcast id in the ``shuffle_id`` field and the one block ``[0, 0]``), unpickles it and
keeps it; every later task of this executor reads that copy. ``RemoveBroadcast`` from
the driver (``unpersist()``/``destroy()``) drops copies (``drop``). The executor installs
one ``BroadcastCache`` in its ``runtime.ExecutorEnv``.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

from ..errors import BroadcastDestroyedError, BroadcastError, FetchFailedError
from ..runtime import ExecutorEnv
from ..taskcontext import TaskContext

__all__ = ["BroadcastCache"]


class BroadcastCache:
    """Broadcast id -> value, shared by the executor's tasks."""

    def __init__(self, env: ExecutorEnv) -> None:
        self._env = env
        self._values: dict[int, Any] = {}
        self._lock = threading.Lock()

    def value(self, bid: int, address: Any) -> Any:
        values = self._values
        value = values.get(bid, values)
        if value is not values:
            return value
        with self._lock:  # one fetch, even if user code reads it from several threads
            value = values.get(bid, values)
            if value is values:
                value = values[bid] = self._fetch(bid, address)
        return value

    def _fetch(self, bid: int, address: Any) -> Any:
        # Loaded on first use, as the block server is: not on the executor's start-up path.
        from ..transport.client import fetch_blocks_blocking

        if address is None:
            raise BroadcastError(f"broadcast {bid} has no driver address to fetch it from")
        env = self._env
        data = bytearray()
        try:
            for _block, chunk in fetch_blocks_blocking(env.loop, env.client_pool(), address,
                                                       bid, [(0, 0)]):
                data += chunk
        except FetchFailedError as exc:
            reason = str(exc).split("server reported: ", 1)[-1]
            if "destroyed" in reason:
                raise BroadcastDestroyedError.of(bid) from None
            raise BroadcastError(
                f"cannot fetch broadcast {bid} from the driver at {address}: {reason}"
            ) from exc
        ctx = TaskContext.get()
        if ctx is not None:
            metrics = ctx._metrics
            metrics["broadcast_fetch_bytes"] = (metrics.get("broadcast_fetch_bytes", 0)
                                                + len(data))
        return pickle.loads(data)

    def drop(self, broadcast_ids: list[int]) -> None:
        """Forget copies (``RemoveBroadcast`` from the driver)."""
        with self._lock:
            for bid in broadcast_ids:
                self._values.pop(bid, None)

    def ids(self) -> list[int]:
        """Ids of the broadcasts this executor holds (for tests and debugging)."""
        return sorted(self._values)
