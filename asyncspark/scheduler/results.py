"""Task results on their way to the driver (Spark's ``DirectTaskResult`` /
``IndirectTaskResult`` and ``TaskSetManager.canFetchMoreResults``).

A result up to ``asyncspark.task.maxDirectResultSize`` travels in the ``TaskStatuses``
frame. A larger one is written by the executor's task thread to a file in its local dir
(temp file, then rename) and the status carries a reference ``[path, size]`` with state
``INDIRECT`` (the state codes and the reference's encoding are in
``transport/messages/tasks.py``); the driver reads the file in a thread, bounded by
``spark.network.timeout``, and deletes it. A missing or short file fails the task with
``TaskResultLostError`` (retried like any failure). An executor that dies takes its local
dir, and so its unread result files, with it (the backend removes the dir).

``spark.driver.maxResultSize`` bounds the serialized results one task set (a stage
attempt: for a job, its result stage) fetches to the driver, as Spark does; an executor
refuses to send a single result above it (the task fails with ``ResultTooLargeError``).
Both end the job at once, not after retries: a deterministic task would only do it again.
"""

from __future__ import annotations

import os
from collections.abc import Hashable

from .._files import atomic_file
from ..errors import ResultTooLargeError, TaskResultLostError
from ..transport.messages.tasks import encode_ref

__all__ = ["ResultSizeTracker", "direct_limit", "format_size", "read_result_file",
           "too_large_for_executor", "write_result_file"]

RESULTS_DIR = "results"
_FRAME_SLACK = 4096  # room in a frame for the status header around a direct result


def format_size(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def direct_limit(max_direct_result_size: int, max_frame_size: int) -> int:
    """The largest result sent in the status frame: the configured size, but always
    small enough for a frame."""
    return max(0, min(max_direct_result_size, max_frame_size - _FRAME_SLACK))


def too_large_for_executor(task_id: int, size: int, limit: int) -> ResultTooLargeError:
    """The error an executor fails a task with when its one result is over the limit."""
    return ResultTooLargeError(
        f"the serialized result of task {task_id} is {format_size(size)} ({size} bytes), "
        f"bigger than spark.driver.maxResultSize ({format_size(limit)}); it was not sent "
        "to the driver")


class ResultSizeTracker:
    """Serialized result bytes fetched per task set, against ``spark.driver.maxResultSize``
    (``limit``; 0 means unlimited). Pure bookkeeping: the caller aborts the task set."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._totals: dict[Hashable, list[int]] = {}  # key -> [bytes, results]

    def add(self, key: Hashable, size: int, what: str) -> ResultTooLargeError | None:
        """Count a result of ``size`` bytes for ``key`` (``what`` names the job and stage
        in the error); the error if the total now passes the limit (not counted then)."""
        if self.limit <= 0:
            return None
        entry = self._totals.setdefault(key, [0, 0])
        total = entry[0] + size
        if total > self.limit:
            return ResultTooLargeError(
                f"Total size of serialized results of {entry[1] + 1} tasks of {what} "
                f"({format_size(total)}, {total} bytes, {format_size(entry[0])} fetched "
                f"before this one) is bigger than spark.driver.maxResultSize "
                f"({format_size(self.limit)}, {self.limit} bytes)")
        entry[0] = total
        entry[1] += 1
        return None

    def total(self, key: Hashable) -> int:
        entry = self._totals.get(key)
        return 0 if entry is None else entry[0]

    def forget(self, key: Hashable) -> None:
        self._totals.pop(key, None)


# -- the executor side --------------------------------------------------------------------

def write_result_file(local_dir: str, task_id: int, payload: bytes) -> bytes:
    """Write ``payload`` under ``local_dir`` atomically (temp file, then rename); the
    reference to send instead (msgpack ``[path, size]``). Runs in the task thread."""
    folder = os.path.join(local_dir, RESULTS_DIR)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"task-{task_id}.result")
    with atomic_file(path) as f:
        f.write(payload)
    return encode_ref(path, len(payload))


# -- the driver side ----------------------------------------------------------------------

def read_result_file(path: str, size: int) -> bytes:
    """The result in ``path`` (``size`` bytes), deleting the file whatever happens.
    Blocking: the driver calls it in a thread."""
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)
    except OSError as exc:
        raise TaskResultLostError(
            f"cannot read the task result file {path} ({size} bytes expected): "
            f"{exc.strerror or exc}") from exc
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    if len(data) != size:
        raise TaskResultLostError(
            f"the task result file {path} holds {len(data)} bytes, {size} expected")
    return data
