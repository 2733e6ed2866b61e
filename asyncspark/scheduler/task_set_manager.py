"""TaskSetManager: the tasks of one stage attempt — which are pending, running, done, and
how many times each failed. Pure bookkeeping, no I/O."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from .stage import TaskSet

__all__ = ["TaskSetManager"]


class TaskSetManager:
    __slots__ = ("attempts", "failed_on", "failures", "max_failures", "num_success",
                 "pending", "running", "successful", "taskset", "zombie")

    def __init__(self, taskset: TaskSet, max_failures: int) -> None:
        n = len(taskset.partitions)
        self.taskset = taskset
        self.max_failures = max_failures
        self.pending: deque[int] = deque(range(n))
        self.running: dict[int, int] = {}  # task id -> task index
        self.successful = [False] * n
        self.num_success = 0
        self.failures = [0] * n
        self.attempts = [0] * n
        self.failed_on: dict[int, set[str]] = {}  # task index -> executors it failed on
        self.zombie = False  # no more launches: finished, aborted or cancelled

    @property
    def finished(self) -> bool:
        return self.num_success == len(self.successful)

    def next_task(self, executor_id: str, alive: Collection[str]) -> int | None:
        """A pending task index for ``executor_id`` (avoiding executors a task already
        failed on while others are alive), or None."""
        if self.zombie or not self.pending:
            return None
        pending = self.pending
        failed_on = self.failed_on
        if not failed_on:
            return pending.popleft()
        skipped: list[int] = []
        found = None
        while pending:
            idx = pending.popleft()
            bad = failed_on.get(idx)
            if bad and executor_id in bad and any(e not in bad for e in alive):
                skipped.append(idx)
                continue
            found = idx
            break
        pending.extendleft(reversed(skipped))
        return found

    def launched(self, task_id: int, index: int) -> int:
        """Record a launch; return its attempt number."""
        self.running[task_id] = index
        attempt = self.attempts[index]
        self.attempts[index] = attempt + 1
        return attempt

    def succeeded(self, task_id: int) -> int | None:
        """Record a success; the task index, or None if it was a duplicate."""
        index = self.running.pop(task_id, None)
        if index is None or self.successful[index]:
            return None
        self.successful[index] = True
        self.num_success += 1
        if self.finished:
            self.zombie = True
        return index

    def failed(self, task_id: int, executor_id: str, counts: bool) -> tuple[int | None, bool]:
        """Record a failure and re-queue the task. Returns ``(index, abort)``: ``abort``
        is True when the task has now failed ``max_failures`` times."""
        index = self.running.pop(task_id, None)
        if index is None or self.successful[index] or self.zombie:
            return index, False
        if counts:
            self.failures[index] += 1
            self.failed_on.setdefault(index, set()).add(executor_id)
            if self.failures[index] >= self.max_failures:
                self.zombie = True
                return index, True
        self.pending.appendleft(index)
        return index, False
