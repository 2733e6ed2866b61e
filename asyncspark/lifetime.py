"""The driver process's lifetime: what happens to live contexts when it ends.

Owns the weak set of started, not yet stopped contexts, and the two hooks that clean up
after them when the application did not call ``stop()``:

- at interpreter exit (``atexit``: a script that never stops its context, ``exit()`` in
  the REPL): a context whose event loop still runs in another thread (the blocking
  facade's) is stopped on it, bounded; then every context's executors are killed and its
  scratch and ``/dev/shm`` directories removed;
- on SIGTERM: the same forced clean-up, then the default action (the process dies of
  SIGTERM, as it would have). The handler is installed, from the main thread, only while
  SIGTERM has its default disposition: an application that installed its own handler
  (or ignores SIGTERM) keeps it, and is responsible for calling ``stop()``.

A context only needs ``_loop`` and ``stop()`` (a coroutine) and ``_release_now(on_loop)``
(synchronous, idempotent); nothing here imports it.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from typing import Any

from .threads import call_on_loop

__all__ = ["install_sigterm_handler", "live_contexts", "register", "release_all",
           "unregister"]

log: logging.Logger = logging.getLogger("asyncspark")

_live: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()
_hooks_installed = False
_EXIT_STOP_BOUND_S = 10.0  # an orderly stop at exit waits this long at most


def live_contexts() -> list[Any]:
    return list(_live)


def register(ctx: Any) -> None:
    """``ctx`` has started: clean up after it if the process ends before its stop()."""
    global _hooks_installed
    with _lock:
        _live.add(ctx)
        if not _hooks_installed:
            _hooks_installed = True
            atexit.register(_at_exit)
    install_sigterm_handler()


def unregister(ctx: Any) -> None:
    _live.discard(ctx)


def release_all(orderly: bool) -> None:
    """Clean up after every live context: ``orderly`` first tries ``stop()`` on a loop
    running in another thread; then the forced clean-up of each."""
    for ctx in list(_live):
        loop = getattr(ctx, "_loop", None)
        if (orderly and loop is not None and loop.is_running() and not loop.is_closed()
                and not _runs_here(loop)):
            try:
                call_on_loop(loop, ctx.stop(), _EXIT_STOP_BOUND_S, "stop() at exit")
            except BaseException as exc:  # the forced clean-up follows
                log.warning("stopping %r at exit failed: %r", ctx, exc)
        try:
            ctx._release_now(on_loop=False)
        except Exception:
            log.exception("cleaning up after %r failed", ctx)
        _live.discard(ctx)


def _runs_here(loop: Any) -> bool:
    import asyncio

    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _at_exit() -> None:
    if _live:
        release_all(orderly=True)


def install_sigterm_handler() -> None:
    """Install the SIGTERM clean-up if SIGTERM has its default disposition; only from
    the main thread (elsewhere a no-op: the blocking facade calls it from its caller's
    thread, its context starts on the engine's)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - no signals here
        return
    if current is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    release_all(orderly=False)
    # Then what SIGTERM would have done without us: die of it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
