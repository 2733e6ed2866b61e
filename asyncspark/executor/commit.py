"""The executor's side of output commits: a task thread asks the driver, over the
control connection, whether its attempt may move its output into place
(``scheduler/commit_coordinator.py``), and waits (bounded) for the answer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
from typing import Any

from ..errors import CommitDeniedError

__all__ = ["COMMIT_TIMEOUT", "CommitClient"]

COMMIT_TIMEOUT = 60.0  # seconds a task waits for the driver's answer


class CommitClient:
    """Called from task threads; answers arrive on the loop (``on_answer``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        self.loop = loop
        self.conn = conn
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}

    def ask(self, stage_id: int, partition: int, task_id: int,
            timeout: float = COMMIT_TIMEOUT) -> None:
        """Return if this attempt may commit; raise ``CommitDeniedError`` if another
        attempt does, ``TimeoutError`` naming the task if the driver does not answer."""
        from ..transport.messages.control import AskCommit

        async def ask() -> str | None:
            request_id = next(self._ids)
            fut = self.loop.create_future()
            self._waiting[request_id] = fut
            try:
                self.conn.send(AskCommit(request_id, stage_id, partition, task_id))
                return await fut
            finally:
                self._waiting.pop(request_id, None)

        cfut = asyncio.run_coroutine_threadsafe(ask(), self.loop)
        try:
            denied = cfut.result(timeout)
        except concurrent.futures.TimeoutError:
            cfut.cancel()
            raise TimeoutError(
                f"the driver did not answer within {timeout}s whether task {task_id} may "
                f"commit partition {partition} of stage {stage_id}") from None
        except BaseException:
            cfut.cancel()
            raise
        if denied is not None:
            raise CommitDeniedError(denied)

    def on_answer(self, msg: Any) -> None:
        """Loop thread: a ``CommitAnswer`` arrived."""
        fut = self._waiting.get(msg.request_id)
        if fut is not None and not fut.done():
            fut.set_result(msg.denied)
