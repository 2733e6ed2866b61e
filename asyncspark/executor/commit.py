"""The executor's side of output commits: a task thread asks the driver, over the
control connection, whether its attempt may move its output into place
(``scheduler/commit_coordinator.py``), and waits (bounded) for the answer."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import CommitDeniedError
from ..pending import PendingRequests
from ..threads import call_on_loop
from ..transport.messages.control import AskCommit

__all__ = ["COMMIT_TIMEOUT", "CommitClient"]

COMMIT_TIMEOUT = 60.0  # seconds a task waits for the driver's answer


class CommitClient:
    """Called from task threads; answers arrive on the loop (``on_answer``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        self.loop = loop
        self.conn = conn
        self._pending = PendingRequests()

    def ask(self, stage_id: int, partition: int, task_id: int,
            timeout: float = COMMIT_TIMEOUT) -> None:
        """Return if this attempt may commit; raise ``CommitDeniedError`` if another
        attempt does, ``TimeoutError`` naming the task if the driver does not answer."""

        async def ask() -> str | None:
            fut = self.loop.create_future()
            request_id = self._pending.add(fut)
            try:
                self.conn.send(AskCommit(request_id, stage_id, partition, task_id))
                return await fut
            finally:
                self._pending.discard(request_id)

        denied = call_on_loop(
            self.loop, ask(), timeout,
            f"the driver did not answer within {timeout}s whether task {task_id} may "
            f"commit partition {partition} of stage {stage_id}")
        if denied is not None:
            raise CommitDeniedError(denied)

    def on_answer(self, msg: Any) -> None:
        """Loop thread: a ``CommitAnswer`` arrived."""
        self._pending.resolve(msg.request_id, msg.denied)
