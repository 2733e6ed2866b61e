"""The DAGScheduler's event queue: FIFO, many producers on the loop, one consumer.

``asyncio.Queue`` does more than this needs on the path of every job (its ``put`` and
``get`` check the running loop each call, keep a deque of getters and putters and wake
them through ``_wakeup_next``). Here ``put_nowait`` appends and, if the one consumer
waits, resolves its future; ``get`` returns at once while items are queued and awaits a
new future only when the queue is empty. Same order, same hop to the consumer.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

__all__ = ["EventQueue"]


class EventQueue:
    """See the module docstring. Not thread-safe: producers call ``put_nowait`` on the
    loop's thread (others use ``call_soon_threadsafe``)."""

    __slots__ = ("_items", "_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: collections.deque = collections.deque()
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> Any:
        """The oldest item, waiting for one if there is none (one consumer only)."""
        items = self._items
        while not items:
            if self._waiter is not None:
                raise RuntimeError("EventQueue.get() has one consumer; another waits")
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:  # cancelled: nobody resolved it
                    self._waiter = None
        return items.popleft()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items
