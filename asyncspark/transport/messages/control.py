"""Control-plane messages between the driver and an executor: the registration
handshake (``Challenge`` -> ``Register`` -> ``Registered``, and ``TaskChannel`` on the task
channel; see ``transport/handshake.py``), heartbeats, the stop order, broadcast and
shuffle removal (the ContextCleaner) and output commits. Codes 1-3, 8, 10, 12-14, 50, 51.
"""

from __future__ import annotations

from ..codec import Message, message

__all__ = [
    "AskCommit",
    "Challenge",
    "CommitAnswer",
    "Heartbeat",
    "Register",
    "Registered",
    "RemoveBroadcast",
    "RemoveShuffle",
    "StopExecutor",
    "TaskChannel",
]


@message(1)
class Challenge(Message):
    """Driver -> executor on connect: prove you know the application secret."""

    nonce: bytes


@message(2)
class Register(Message):
    """Executor -> driver: HMAC of the driver's nonce, and a nonce for the driver."""

    executor_id: str
    mac: bytes
    nonce: bytes
    pid: int
    host: str


@message(3)
class Registered(Message):
    """Driver -> executor: the driver's HMAC of the executor's nonce, and settings."""

    mac: bytes
    conf: dict


@message(10)
class Heartbeat(Message):
    """Executor -> driver: still alive; ``running`` lists task ids in flight."""

    running: list


@message(8)
class StopExecutor(Message):
    """Driver -> executor: exit now."""

    reason: str


@message(12)
class TaskChannel(Message):
    """Executor -> driver, first message on the executor's second connection, its task
    channel (launches in, statuses out, served by the task thread): HMAC of the
    driver's nonce on this connection, and a nonce the driver answers with
    ``Registered``."""

    executor_id: str
    mac: bytes
    nonce: bytes


@message(13)
class RemoveBroadcast(Message):
    """Driver -> executor, on the task channel (so before any later launch): drop the
    executor's copies of these broadcast variables (``unpersist()``/``destroy()``)."""

    broadcast_ids: list


@message(14)
class RemoveShuffle(Message):
    """Driver -> executor, on the task channel: these shuffles are no longer referenced in
    the driver (``cleaner.py``): delete their map output files and locations."""

    shuffle_ids: list


# --- output commits (scheduler/commit_coordinator.py) ---------------------------------
#
# Control connection: a task about to move its output into place asks the driver
# (``AskCommit``); only the first attempt of a partition to ask is allowed.


@message(50)
class AskCommit(Message):
    """Executor -> driver: may task ``task_id`` commit its output of ``partition`` of
    stage ``stage_id``? Answered by ``CommitAnswer``."""

    request_id: int
    stage_id: int
    partition: int
    task_id: int


@message(51)
class CommitAnswer(Message):
    """Driver -> executor: the answer to an ``AskCommit``; ``denied`` says why not
    (None: commit)."""

    request_id: int
    denied: str | None
