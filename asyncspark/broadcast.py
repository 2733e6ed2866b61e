"""Broadcast variables: a read-only value shipped to each executor once (PySpark's API).

::

    lookup = sc.broadcast({"a": 1, "b": 2})
    await rdd.map(lambda k: lookup.value.get(k)).collect()
    lookup.unpersist()   # executors drop their copies (fetched again on next use)
    lookup.destroy()     # gone everywhere; any later use raises, naming the broadcast

How it travels: ``sc.broadcast(value)`` pickles the value once, into a file under the
driver's local directory, served by a ``TransportServer`` the driver runs for broadcasts
(the same authenticated, chunked protocol as shuffle blocks: ``OpenBlocks`` with the
broadcast id in the ``shuffle_id`` field and the one block ``[0, 0]``, then chunks of at
most ``asyncspark.rpc.maxFrameSize`` less a header, so a value larger than a frame
works). A ``Broadcast`` pickles as its id and that server's address only, so task
binaries stay small. On an executor, the first ``.value`` fetches and unpickles the value
and keeps it in the executor's broadcast cache (``executor/broadcasts.py``, reached
through ``runtime``); every later task there reads that copy.
``unpersist()``/``destroy()`` send ``RemoveBroadcast`` on each executor's task channel,
ordered before any later launch, so tasks launched afterwards fetch again (unpersist) or
fail (destroy: the driver has deleted the file, and it refuses to pickle a destroyed
broadcast into new tasks).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections import Counter
from typing import Any, Generic, TypeVar

from . import runtime
from ._files import atomic_file
from .errors import BroadcastDestroyedError

__all__ = ["Broadcast", "BroadcastManager"]

log: logging.Logger = logging.getLogger("asyncspark.broadcast")

T = TypeVar("T")


def _executor_value(bid: int, address: Any) -> Any:
    """The value in a task: the executor's broadcast cache (``executor/broadcasts.py``,
    installed in the executor's environment) fetches it on first use."""
    return runtime.get_env().broadcasts.value(bid, address)


class Broadcast(Generic[T]):
    """A read-only value cached on each executor; create one with ``sc.broadcast(v)``.

    ``value`` is the value (on an executor, fetched from the driver on first use);
    ``unpersist()`` drops the executors' copies, ``destroy()`` the value everywhere.
    """

    def __init__(self, manager: BroadcastManager | None, bid: int, value: Any,
                 address: tuple[str, int] | None) -> None:
        self._manager = manager  # None on executors
        self._bid = bid
        self._value = value
        self._address = address

    @property
    def id(self) -> int:
        return self._bid

    @property
    def value(self) -> T:
        manager = self._manager
        if manager is None:
            return _executor_value(self._bid, self._address)
        if manager.is_destroyed(self._bid):
            raise BroadcastDestroyedError.of(self._bid)
        return self._value

    def unpersist(self, blocking: bool = False) -> None:
        """locking`` changes nothing (accepted for PySpark compatibility).

        >>> b = sc.broadcast([1, 2])
        >>> await sc.parallelize([0]).map(lambda _: sum(b.value)).collect()
        [3]
        >>> b.unpersist()
        >>> await sc.parallelize([0]).map(lambda _: len(b.value)).collect()
        [2]
        """
        self._driver_only("unpersist")
        if self._manager.is_destroyed(self._bid):  # type: ignore[union-attr]
            raise BroadcastDestroyedError.of(self._bid)
        self._manager.remove(self._bid, destroy=False)  # type: ignore[union-attr]

    def destroy(self, blocking: bool = False) -> None:
        """roadcastDestroyedError`` (in a task: the task fails naming this broadcast).

        >>> b = sc.broadcast("x")
        >>> b.destroy()
        >>> try:
        ...     b.value
        ... except BroadcastDestroyedError as e:
        ...     print(type(e).__name__)
        BroadcastDestroyedError
        """
        self._driver_only("destroy")
        self._manager.remove(self._bid, destroy=True)  # type: ignore[union-attr]
        self._value = None

    def _driver_only(self, what: str) -> None:
        if self._manager is None:
            raise RuntimeError(f"Broadcast can only be {what}ed in driver "
                               f"(broadcast {self._bid} was used in a task)")

    def __reduce__(self) -> tuple[Any, ...]:
        manager = self._manager
        if manager is not None and manager.is_destroyed(self._bid):
            raise BroadcastDestroyedError.of(self._bid)
        return (_executor_broadcast, (self._bid, self._address))

    def __repr__(self) -> str:
        return f"Broadcast({self._bid})"


def _executor_broadcast(bid: int, address: Any) -> Broadcast[Any]:
    return Broadcast(None, bid, None, tuple(address) if address is not None else None)


# -- driver side -----------------------------------------------------------------------

class _Gone(LookupError):
    pass


class BroadcastManager:
    """The driver's broadcasts: their files, the server executors fetch them from, and
    removal (see the module docstring). ``fetches`` counts fetches per broadcast id."""

    def __init__(self, secret: str, directory: str, host: str, max_frame_size: int,
                 send_to_executors: Any, *,
                 server_options: dict[str, Any] | None = None) -> None:
        self.secret = secret
        # TransportServer keywords: io_timeout, auth_timeout, max_unauthenticated
        self.server_options: dict[str, Any] = dict(server_options or {})
        self.directory = directory
        self.host = host
        self.max_frame_size = max_frame_size
        self._send_to_executors = send_to_executors  # (message) -> None, on the loop
        self._ids = itertools.count()
        self._paths: dict[int, str] = {}
        self._destroyed: set[int] = set()
        self._lock = threading.Lock()
        self.fetches: Counter[int] = Counter()
        self.server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        from .transport.server import TransportServer

        self._loop = asyncio.get_running_loop()
        os.mkdir(self.directory, 0o700)  # inside the application's own directory
        server = TransportServer(self.secret, self._resolve, self.host, 0,
                                 max_frame_size=self.max_frame_size,
                                 name="driver broadcast server", **self.server_options)
        await server.start()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    def new(self, value: T) -> Broadcast[T]:
        if self.server is None:
            raise RuntimeError("broadcast() needs a running context")
        from .serializers import dumps_closure

        data = dumps_closure(value, "the value passed to broadcast()")
        bid = next(self._ids)
        path = os.path.join(self.directory, f"broadcast-{bid}")
        # All of it or no file (a full disk leaves no partial file), the error naming it.
        with atomic_file(path) as f:
            f.write(data)
        with self._lock:
            self._paths[bid] = path
        return Broadcast(self, bid, value, self.server.address)

    def is_destroyed(self, bid: int) -> bool:
        return bid in self._destroyed

    def _resolve(self, bid: int, map_id: int, reduce_id: int) -> tuple[str, int, int]:
        """Worker thread (the block server): where broadcast ``bid``'s bytes are."""
        with self._lock:
            if bid in self._destroyed:
                raise _Gone(f"broadcast {bid} was destroyed")
            path = self._paths.get(bid)
            if path is None or (map_id, reduce_id) != (0, 0):
                raise _Gone(f"no broadcast block ({bid}, {map_id}, {reduce_id})")
            self.fetches[bid] += 1
        return path, 0, os.path.getsize(path)

    def cleanup(self, bid: int) -> bool:
        """Broadcast ``bid`` is no longer referenced in the driver (the ContextCleaner,
        on the loop): delete its file and the executors' copies; False if it was gone."""
        with self._lock:
            path = self._paths.pop(bid, None)
            self.fetches.pop(bid, None)
            self._destroyed.discard(bid)
        if path is None:
            return False
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        from .transport.messages.control import RemoveBroadcast

        self._send_to_executors(RemoveBroadcast([bid]))
        return True

    def remove(self, bid: int, destroy: bool) -> None:
        from .transport.messages.control import RemoveBroadcast

        if destroy:
            with self._lock:
                self._destroyed.add(bid)
                path = self._paths.pop(bid, None)
            if path is not None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        msg = RemoveBroadcast([bid])
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._send_to_executors(msg)
        elif not loop.is_closed():  # another thread (asyncspark.sync's callers)
            loop.call_soon_threadsafe(self._send_to_executors, msg)
