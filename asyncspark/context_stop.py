"""How a ``Context`` stops (a mixin of ``Context``): ``stop()`` runs the orderly steps,
each once and as a task of its own, so a stop that was cancelled or timed out is finished
by the next one; whatever happens, it ends by killing the executors and removing every
directory of the context (``_release_now``, also what interpreter exit and SIGTERM run,
``lifetime.py``)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import TYPE_CHECKING, Any

from . import lifetime
from .errors import ContextStoppedError

if TYPE_CHECKING:
    from .listener import ListenerBus

__all__ = ["STOP_BOUND_S", "ContextShutdown"]

log: logging.Logger = logging.getLogger("asyncspark")

STOP_BOUND_S = 5.0  # stop() takes at most this long (then kills what is left)


class ContextShutdown:
    """``stop()`` of ``Context`` (``self`` is a Context, started or not)."""

    _state: str
    _admission: Any
    _dag: Any
    _task_scheduler: Any
    _broadcasts: Any
    _backend: Any
    _block_master: Any
    _removals: Any
    _stop_steps_run: dict
    _obs: Any
    cleaner: Any
    listener_bus: ListenerBus

    if TYPE_CHECKING:  # what the mixin needs of its host, the Context
        def _remove_files(self) -> None: ...

    async def stop(self) -> None:
        """Cancel running jobs, stop the executors and the scheduler, remove the scratch
        and off-heap directories. Idempotent, bounded (``STOP_BOUND_S``: past it the
        executors are killed), and retryable: a ``stop()`` that was interrupted
        (cancelled) is finished by the next one.

        >>> import asyncspark
        >>> ctx = asyncspark.Context("local[1]")
        >>> await ctx.stop(); await ctx.stop()
        >>> await ctx.parallelize([1]).collect()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        asyncspark.errors.ContextStoppedError: ...
        """
        if self._state in ("stopped", "new"):
            self._state = "stopped"
            return
        self._state = "stopping"
        if self._admission is not None:
            self._admission.close(ContextStoppedError("the context was stopped"))
        try:
            async with asyncio.timeout(STOP_BOUND_S):
                await self._stop_steps()
        except TimeoutError:
            log.warning("stop() did not finish within %gs: killing what is left",
                        STOP_BOUND_S)
        except asyncio.CancelledError:
            # Nothing outlives a stop(), even a cancelled one; the orderly steps go on
            # in the background and the next stop() waits for them.
            self._release_now(on_loop=True)
            raise
        except BaseException:
            self._finish_stop()
            raise
        self._finish_stop()

    def _finish_stop(self) -> None:
        self._release_now(on_loop=True)
        self._state = "stopped"
        lifetime.unregister(self)

    async def _stop_steps(self) -> None:
        """The orderly stop. Each step runs once, as a task of its own: a stop() that
        was cancelled leaves it running, and the next stop() waits for it. The first
        error is raised once every step has had its turn."""
        steps = [
            ("cleaner", lambda: self.cleaner.stop() if self.cleaner is not None else None),
            ("dag", lambda: self._dag.stop("the context was stopped")
             if self._dag is not None else None),
            ("results", lambda: self._task_scheduler.close()  # result files being read
             if self._task_scheduler is not None else None),
            ("broadcasts", lambda: self._broadcasts.stop()
             if self._broadcasts is not None else None),
            ("removals", lambda: asyncio.gather(*self._removals, return_exceptions=True)
             if self._removals else None),
            ("backend", lambda: self._backend.stop() if self._backend is not None else None),
            ("offheap", lambda: asyncio.to_thread(self._remove_offheap_dir)),
            ("observability", self._obs.stop),
            ("listeners", self.listener_bus.stop),
            ("observability after the bus", self._obs.after_bus_stopped),
        ]
        errors: list[BaseException] = []
        for name, make in steps:
            fut = self._stop_steps_run.get(name)
            if fut is None:
                awaitable = make()
                if awaitable is None:
                    continue
                fut = self._stop_steps_run[name] = asyncio.ensure_future(awaitable)
            elif fut.done():
                continue
            try:
                await asyncio.shield(fut)
            except asyncio.CancelledError:
                if not fut.cancelled():
                    raise  # stop() itself was cancelled
            except Exception as exc:
                log.warning("stopping the context: %s failed: %r", name, exc)
                errors.append(exc)
        if errors:
            raise errors[0]

    def _release_now(self, on_loop: bool) -> None:
        """Synchronously: kill the executors and remove every directory of this context
        (``stop()``'s last step; also at interpreter exit and on SIGTERM, where nothing
        can be awaited). ``on_loop``: called on the context's loop (its connections are
        aborted too)."""
        if self._backend is not None:
            self._backend.release_now(on_loop)
        if self._broadcasts is not None and on_loop and self._broadcasts.server is not None:
            self._broadcasts.server.guard.abort_all("the context stopped")
        self._remove_offheap_dir()
        self._remove_files()

    def _remove_offheap_dir(self) -> None:
        if self._block_master is not None and self._block_master.offheap_dir:
            shutil.rmtree(self._block_master.offheap_dir, ignore_errors=True)
