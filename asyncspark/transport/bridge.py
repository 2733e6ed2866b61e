"""The thread bridge of block fetches: ``fetch_blocks_blocking`` runs a client pool's
``fetch_blocks`` on its event loop for a thread that is not the loop's (task threads:
shuffle readers, broadcast fetches), one item per ``next()``, errors as
``FetchFailedError``; ``transport/client.py`` re-exports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import FetchFailedError
from ..threads import LoopClosedError, submit_to_loop

if TYPE_CHECKING:
    from .client import TransportClientPool

__all__ = ["DEFAULT_MAX_BYTES_IN_FLIGHT", "fetch_blocks_blocking"]

DEFAULT_MAX_BYTES_IN_FLIGHT = 48 << 20  # spark.reducer.maxSizeInFlight
BlockId = tuple[int, int]

_DONE = object()
_POLL = 0.25  # how often a waiting task thread checks that the loop still runs


def fetch_blocks_blocking(loop: asyncio.AbstractEventLoop, pool: TransportClientPool,
                          address: Any, shuffle_id: int, blocks: Iterable[BlockId],
                          max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT
                          ) -> Iterator[tuple[BlockId, bytes]]:
    """``pool.fetch_blocks`` as a plain generator, for a thread other than ``loop``'s.

    Each item is fetched on ``loop`` when the thread asks for it, so the bytes the thread
    has not taken yet count against ``max_bytes_in_flight`` as in the async version.
    Errors arrive as ``FetchFailedError`` (also when ``loop`` stops); closing the
    generator early (or an exception in the thread) cancels the fetch on the loop and
    waits (bounded) for its cleanup.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("fetch_blocks_blocking() would deadlock on its own event loop's "
                           "thread; use pool.fetch_blocks() there")
    wanted = [(operator.index(m), operator.index(r)) for m, r in blocks]
    if not wanted:
        return
    agen = pool.fetch_blocks(address, shuffle_id, wanted, max_bytes_in_flight)
    demand: asyncio.Queue = asyncio.Queue()
    out: queue.SimpleQueue = queue.SimpleQueue()
    finished = threading.Event()
    last = wanted[0]

    def loop_gone(why: str) -> FetchFailedError:
        return FetchFailedError(
            f"cannot fetch shuffle {shuffle_id} block (map {last[0]}, reduce {last[1]}) "
            f"from {address}: {why}", shuffle_id, last[0], last[1], address)

    coro = _pump(agen, demand, out, finished)
    try:
        pump = submit_to_loop(loop, coro)
    except LoopClosedError as exc:
        raise loop_gone("the event loop is closed") from exc
    ended = False  # the pump delivered its last item and is finishing on its own
    try:
        while True:
            try:
                loop.call_soon_threadsafe(demand.put_nowait, None)
            except RuntimeError as exc:
                raise loop_gone("the event loop is closed") from exc
            while True:
                try:
                    item = out.get(timeout=_POLL)
                    break
                except queue.Empty:
                    if finished.is_set() and out.empty():
                        raise loop_gone("the fetch stopped") from None
                    if loop.is_closed() or not loop.is_running():
                        raise loop_gone("the event loop stopped") from None
            if item is _DONE:
                ended = True
                return
            if isinstance(item, BaseException):
                ended = True
                if isinstance(item, asyncio.CancelledError):
                    raise loop_gone("the fetch was cancelled on the event loop") from item
                raise item  # FetchFailedError; ValueError/TypeError for bad arguments
            last = item[0]
            yield item
    finally:
        if not ended and not finished.is_set():
            pump.cancel()
            if not loop.is_closed() and loop.is_running():
                finished.wait(pool.io_timeout)


async def _pump(agen, demand: asyncio.Queue, out: queue.SimpleQueue,
                finished: threading.Event) -> None:
    """On the loop: one item of ``agen`` into ``out`` per demand; last an exception or
    ``_DONE``. Cancelled when the thread gives up; ``agen`` is closed either way."""
    try:
        async with contextlib.aclosing(agen):
            while True:
                await demand.get()
                try:
                    item = await anext(agen)
                except StopAsyncIteration:
                    out.put(_DONE)
                    return
                out.put(item)
    except asyncio.CancelledError as exc:
        out.put(exc)
        raise
    except Exception as exc:
        out.put(exc)
    finally:
        finished.set()

