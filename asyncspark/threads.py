"""Calling into an event loop from another thread, and waiting for the answer.

Owns the one way asyncspark does it (task threads asking the driver through the
executor's loop, ``asyncspark.sync``'s blocking calls, the shuffle fetch pump): submit a
coroutine to ``loop``, wait with an optional timeout, and on any way out but a result
(timeout, ``KeyboardInterrupt``, an error) cancel it on the loop so nothing is left
running. Errors are translated the same way everywhere: a loop that is closed raises
``LoopClosedError`` (the coroutine is closed, never left un-awaited); a timeout raises
``TimeoutError`` with the caller's description; the coroutine's own exception passes
through.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopClosedError", "call_on_loop", "submit_to_loop"]

T = TypeVar("T")


class LoopClosedError(RuntimeError):
    """The event loop a thread wanted to call into is closed."""


def submit_to_loop(loop: asyncio.AbstractEventLoop,
                   coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on ``loop`` from another thread; its concurrent future."""
    try:
        return asyncio.run_coroutine_threadsafe(coro, loop)
    except RuntimeError as exc:  # call_soon_threadsafe on a closed loop
        coro.close()
        raise LoopClosedError("the event loop is closed") from exc


def call_on_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T],
                 timeout: float | None = None, what: str = "") -> T:
    """Run ``coro`` on ``loop`` and wait for its result (``timeout`` seconds at most,
    None: no limit); ``what`` describes the call in the ``TimeoutError``."""
    fut = submit_to_loop(loop, coro)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        fut.cancel()
        raise TimeoutError(what or f"no answer from the event loop within {timeout}s") \
            from None
    except BaseException:
        fut.cancel()
        raise
