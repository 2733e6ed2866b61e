"""Exclusion of executors that keep failing one task set's tasks
(``spark.excludeOnFailure.*``, off by default). Pure bookkeeping, no I/O.

As Spark's ``TaskSetExcludelist``: a task that failed
``maxTaskAttemptsPerExecutor`` times on an executor never runs there again in this task
set, and an executor on which ``maxFailedTasksPerExecutor`` different tasks of the set
failed gets none of its tasks. A pending task no live executor may run makes the task
set unschedulable: the TaskScheduler fails it rather than wait forever.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["ExclusionConf", "StageExclusion"]


@dataclass(frozen=True, slots=True)
class ExclusionConf:
    max_task_attempts_per_executor: int = 1
    max_failed_tasks_per_executor: int = 2

    @classmethod
    def from_config(cls, conf: Any) -> ExclusionConf | None:
        """From a ``conf.Config``; None when ``spark.excludeOnFailure.enabled`` is off."""
        if not conf.exclude_on_failure:
            return None
        return cls(conf.exclude_task_attempts_per_executor,
                   conf.exclude_failed_tasks_per_executor)


class StageExclusion:
    """The exclusion state of one task set (``TaskSetManager.exclusion``)."""

    __slots__ = ("conf", "excluded_executors", "failed_tasks", "last_failure", "task_failures")

    def __init__(self, conf: ExclusionConf) -> None:
        self.conf: ExclusionConf = conf
        # task index -> executor id -> failed attempts there
        self.task_failures: dict[int, dict[str, int]] = {}
        self.failed_tasks: dict[str, set[int]] = {}  # executor -> indices that failed there
        self.excluded_executors: set[str] = set()  # for the whole task set
        self.last_failure: dict[int, str] = {}  # task index -> most recent failure message

    def record_failure(self, index: int, executor_id: str, message: str = "") -> None:
        per_task = self.task_failures.setdefault(index, {})
        per_task[executor_id] = per_task.get(executor_id, 0) + 1
        failed = self.failed_tasks.setdefault(executor_id, set())
        failed.add(index)
        if len(failed) >= self.conf.max_failed_tasks_per_executor:
            self.excluded_executors.add(executor_id)
        if message:
            self.last_failure[index] = message

    def executor_excluded(self, executor_id: str) -> bool:
        return executor_id in self.excluded_executors

    def excludes(self, index: int, executor_id: str) -> bool:
        """May task ``index`` not run on ``executor_id``?"""
        if executor_id in self.excluded_executors:
            return True
        per_task = self.task_failures.get(index)
        return per_task is not None and \
            per_task.get(executor_id, 0) >= self.conf.max_task_attempts_per_executor

    def unschedulable(self, pending: Iterable[int], alive: Collection[str]) -> int | None:
        """A pending task index that no live executor may run, or None (also while no
        executor is alive: one may come)."""
        if not alive or not self.task_failures:
            return None
        for index in pending:
            if all(self.excludes(index, e) for e in alive):
                return index
        return None

    def describe(self, index: int, alive: Collection[str]) -> str:
        """Why task ``index`` can run nowhere, for the abort message."""
        c = self.conf
        whole = sorted(e for e in alive if e in self.excluded_executors)
        per_task = sorted(e for e in alive if e not in self.excluded_executors)
        parts = []
        if per_task:
            parts.append(f"it failed {c.max_task_attempts_per_executor} time(s) on executor(s) "
                         f"{', '.join(per_task)} "
                         "(spark.excludeOnFailure.task.maxTaskAttemptsPerExecutor = "
                         f"{c.max_task_attempts_per_executor})")
        if whole:
            parts.append(f"executor(s) {', '.join(whole)} failed "
                         f"{c.max_failed_tasks_per_executor} or more tasks of the stage "
                         "(spark.excludeOnFailure.stage.maxFailedTasksPerExecutor = "
                         f"{c.max_failed_tasks_per_executor})")
        text = "; ".join(parts)
        last = self.last_failure.get(index)
        if last:
            text += f". Most recent failure: {last}"
        return text
