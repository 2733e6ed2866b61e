"""Task messages and the task-level wire formats shared by the executor and the driver.

Owns, defined once for both sides:

- the messages of launching tasks and reporting them (``TaskBinary``, ``LaunchTasks``,
  ``KillTask``, ``ForgetBinaries``, ``TaskStatuses``, ``MapOutputs``; codes 4-7, 9, 11);
- the task state codes of a status (``FINISHED``, ``FAILED``, ``KILLED``, ``INDIRECT``);
- the failure envelope (``encode_failure`` on the executor, ``decode_failure`` into a
  ``TaskEndReason`` on the driver);
- the reference a status carries for a result written to a file (``encode_ref`` /
  ``decode_ref``; reading the file and counting sizes is ``scheduler/results.py``);
- the key and encoding of a finished task's accumulator updates in its metrics
  (``UPDATES_KEY``, ``encode_updates``; applying them is ``accumulators.py``).
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from ...errors import CommitDeniedError, FetchFailedError, TaskResultLostError
from ..codec import Message, message

__all__ = [
    "FAILED",
    "FINISHED",
    "INDIRECT",
    "KILLED",
    "UPDATES_KEY",
    "ForgetBinaries",
    "KillTask",
    "LaunchTasks",
    "MapOutputs",
    "TaskBinary",
    "TaskEndReason",
    "TaskStatuses",
    "decode_failure",
    "decode_ref",
    "encode_failure",
    "encode_ref",
    "encode_updates",
]

# The state of a status in ``TaskStatuses``. ``INDIRECT``: finished, and the payload is a
# reference to a file holding the result (``encode_ref``).
FINISHED, FAILED, KILLED, INDIRECT = 0, 1, 2, 3

# Key of the pickled ``[(accumulator id, value), ...]`` in a finished task's metrics; the
# task scheduler takes it out before the metrics go anywhere else.
UPDATES_KEY = "accumulator_updates"


@message(4)
class TaskBinary(Message):
    """Driver -> executor: a stage's cloudpickled (rdd, func), sent once per executor."""

    binary_id: int
    body: bytes


@message(5)
class LaunchTasks(Message):
    """Driver -> executor: tasks to run, each
    ``[task_id, binary_id, partition, attempt, stage_id]``."""

    tasks: list


@message(6)
class KillTask(Message):
    """Driver -> executor: interrupt a running task."""

    task_id: int
    reason: str


@message(7)
class ForgetBinaries(Message):
    """Driver -> executor: drop cached task binaries of finished stages."""

    binary_ids: list


@message(9)
class TaskStatuses(Message):
    """Executor -> driver: finished tasks, each ``[task_id, state, nbytes, run_us,
    metrics, stamps]`` (``metrics`` a dict or None; ``stamps`` ``[received, started,
    finished]`` monotonic ns when the driver asked for tracing, else None).

    The payloads (pickled results, or pickled failure descriptions) are concatenated in
    ``body`` in the same order, ``nbytes`` each.
    """

    statuses: list
    body: bytes


@message(11)
class MapOutputs(Message):
    """Driver -> executor: where the map outputs of a shuffle are, sent before the first
    launch of a task that reads it (and again when they change: ``epoch``). One entry
    per map partition: ``[executor_id, host, port, data_path, sizes]`` or None."""

    shuffle_id: int
    epoch: int
    statuses: list


# -- the failure envelope ---------------------------------------------------------------

@dataclass(slots=True)
class TaskEndReason:
    """Why a task attempt ended unsuccessfully; ``counts`` says if it counts toward
    ``maxFailures`` (an executor lost through no fault of the task does not)."""

    kind: str  # "exception", "killed", "executor_lost", "result_error", "fetch_failed"
    message: str
    remote_traceback: str | None = None
    exception: BaseException | None = None
    counts: bool = True


def encode_failure(exc: BaseException, max_size: int | None = None) -> bytes:
    """msgpack ``[type, message, traceback text, pickled exception or None]``, at most
    ``max_size`` bytes: a report too big for that (a huge message, traceback or exception
    state) keeps the exception's type, with its message and traceback cut (head and tail
    kept) and, if its pickle is big too, an instance of its type made from the cut message
    (or none, the type's name then tells)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    exc_bytes = _pickled(exc)
    try:
        text = str(exc)
    except Exception:
        text = "<exception str() failed>"
    name = type(exc).__qualname__
    payload = msgpack.packb([name, text, tb, exc_bytes], use_bin_type=True)
    if max_size is None or len(payload) <= max_size:
        return payload
    budget = max(64, (max_size - len(name) - 256) // 4)  # message, traceback, pickle
    text = _cut(text, budget)
    tb = _cut(tb, budget)
    for pickled in (lambda: exc_bytes, lambda: _pickled(type(exc)(text)), lambda: None):
        try:
            candidate = pickled()
        except Exception:
            continue
        payload = msgpack.packb([name, text, tb, candidate], use_bin_type=True)
        if len(payload) <= max_size:
            return payload
    if len(payload) > max_size:  # a tiny limit: the type and what fits of the message
        payload = msgpack.packb([name[:max_size // 4], _cut(text, max_size // 8), "", None],
                                use_bin_type=True)
    return payload


def _pickled(exc: BaseException) -> bytes | None:
    try:
        data = pickle.dumps(exc, 5)
        pickle.loads(data)  # must round-trip here to be worth sending
    except Exception:
        return None
    return data


def _cut(text: str, max_bytes: int) -> str:
    """``text`` in at most about ``max_bytes`` UTF-8 bytes: its head and tail, and how much
    was left out between them."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    half = max(1, (max_bytes - 80) // 2)
    head = data[:half].decode("utf-8", "ignore")
    tail = data[-half:].decode("utf-8", "ignore")
    return f"{head}\n... [{len(data) - 2 * half} of {len(data)} bytes cut] ...\n{tail}"


def decode_failure(payload: bytes) -> TaskEndReason:
    """The executor's failure envelope: msgpack ``[type, message, traceback, pickled exc]``."""
    try:
        type_name, text, tb, exc_bytes = msgpack.unpackb(payload, raw=False)
    except Exception as exc:
        return TaskEndReason("exception", f"undecodable failure report: {exc!r}")
    exc_obj = None
    if exc_bytes:
        try:
            exc_obj = pickle.loads(exc_bytes)
        except Exception:
            exc_obj = None  # the class may not exist on the driver: the text still tells
        if not isinstance(exc_obj, BaseException):
            exc_obj = None
    if isinstance(exc_obj, CommitDeniedError):
        # Another attempt committed the output: not a failure of this task.
        return TaskEndReason("commit_denied", f"{type_name}: {text}", tb, exc_obj,
                             counts=False)
    if isinstance(exc_obj, FetchFailedError):
        # Not the task's fault and retrying it cannot help: the scheduler deals with it.
        return TaskEndReason("fetch_failed", f"{type_name}: {text}", tb, exc_obj,
                             counts=False)
    return TaskEndReason("exception", f"{type_name}: {text}", tb, exc_obj)


# -- result references ------------------------------------------------------------------

def encode_ref(path: str, size: int) -> bytes:
    """The payload of an ``INDIRECT`` status: msgpack ``[path, size]``."""
    return msgpack.packb([path, size], use_bin_type=True)


def decode_ref(payload: bytes) -> tuple[str, int]:
    """``(path, size)`` of an ``INDIRECT`` status' payload."""
    try:
        path, size = msgpack.unpackb(payload, raw=False)
    except Exception as exc:
        raise TaskResultLostError(f"undecodable indirect result reference: {exc!r}") from exc
    if not isinstance(path, str) or not isinstance(size, int) or size < 0:
        raise TaskResultLostError(f"invalid indirect result reference {[path, size]!r}")
    return path, size


# -- accumulator updates ----------------------------------------------------------------

def encode_updates(updates: dict, dumps: Callable[[Any], bytes]) -> bytes:
    """A task's update table as sent with its status under ``UPDATES_KEY`` (executor
    side), pickled with ``dumps`` (the executor's result pickler)."""
    return dumps(list(updates.items()))
