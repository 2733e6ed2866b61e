"""The table of requests waiting for an answer: request id -> future.

Owns the request id counter, registering a waiter (with the context its answer needs),
resolving it when the answer arrives (only by the peer it was sent to, when the table is
shared by several) and resolving or failing every waiter when the connection or its
owner closes. Loop-thread only, as the futures are. Used by the executor's commit client
and driver link, the block client, and the backend's RDD removals.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["PendingRequests"]

_ANY: Any = object()


class PendingRequests:
    """Request id -> ``(future, context)``."""

    __slots__ = ("_ids", "_waiting")

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[asyncio.Future[Any], Any]] = {}

    def next_id(self) -> int:
        """A fresh request id (for a request sent before its waiter is registered)."""
        return next(self._ids)

    def add(self, fut: asyncio.Future[Any], context: Any = None,
            request_id: int | None = None) -> int:
        """Register ``fut`` as the waiter of a request (a fresh id unless given)."""
        if request_id is None:
            request_id = next(self._ids)
        self._waiting[request_id] = (fut, context)
        return request_id

    def pop(self, request_id: int, context: Any = _ANY) -> tuple[asyncio.Future[Any], Any] | None:
        """Remove and return the waiter of ``request_id`` (None if there is none, or if
        ``context`` is given and it is not the waiter's)."""
        entry = self._waiting.get(request_id)
        if entry is None or (context is not _ANY and entry[1] != context):
            return None
        del self._waiting[request_id]
        return entry

    def discard(self, request_id: int) -> None:
        self._waiting.pop(request_id, None)

    def discard_future(self, fut: asyncio.Future[Any]) -> None:
        """Forget the request(s) ``fut`` waits for (its waiter gave up)."""
        for request_id in [r for r, (f, _) in self._waiting.items() if f is fut]:
            del self._waiting[request_id]

    def resolve(self, request_id: int, value: Any, context: Any = _ANY) -> bool:
        """Answer ``request_id`` with ``value``; True if a waiter took it."""
        entry = self.pop(request_id, context)
        if entry is None or entry[0].done():
            return False
        entry[0].set_result(value)
        return True

    def resolve_all(self, value: Any,
                    where: Callable[[Any], bool] | None = None) -> None:
        """Answer every waiter (those whose context ``where`` accepts) with ``value``,
        e.g. the error that closed the connection, and forget them."""
        for request_id, (fut, context) in list(self._waiting.items()):
            if where is not None and not where(context):
                continue
            del self._waiting[request_id]
            if not fut.done():
                fut.set_result(value)

    def futures(self) -> Iterator[asyncio.Future[Any]]:
        return (fut for fut, _ in self._waiting.values())

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, request_id: int) -> bool:
        return request_id in self._waiting
