"""Speculative execution for one task set: which running tasks are stragglers, and where
their one speculative copy may run. Pure bookkeeping, no I/O, no clock of its own (the
TaskScheduler passes ``now`` from its clock and calls ``check`` from a timer).

As Spark's ``TaskSetManager.checkSpeculatableTasks``: once ``quantile`` of the set's tasks
have succeeded, a task whose only running attempt has run longer than
``max(multiplier * median successful duration, min_runtime)`` is marked speculatable;
the next offer from an executor not already running an attempt of it launches a copy.
The first attempt to succeed wins; the TaskScheduler kills the others.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Speculation", "SpeculationConf"]


@dataclass(frozen=True, slots=True)
class SpeculationConf:
    """``spark.speculation.*`` (the defaults are the ones asyncspark documents)."""

    multiplier: float = 3.0
    quantile: float = 0.9
    min_runtime: float = 0.1
    interval: float = 0.1

    @classmethod
    def from_config(cls, conf: Any) -> SpeculationConf | None:
        """From a ``conf.Config``; None when ``spark.speculation`` is off."""
        if not conf.speculation:
            return None
        return cls(conf.speculation_multiplier, conf.speculation_quantile,
                   conf.speculation_min_runtime, conf.speculation_interval)


class Speculation:
    """The speculation state of one task set (``TaskSetManager.spec``)."""

    __slots__ = ("conf", "copies", "durations", "pending", "speculative", "started")

    def __init__(self, conf: SpeculationConf) -> None:
        self.conf: SpeculationConf = conf
        self.durations: list[float] = []  # of successful attempts, in finishing order
        # running attempt's task id -> (launch time, executor id, task index)
        self.started: dict[int, tuple[float, str, int]] = {}
        self.copies: dict[int, int] = {}  # task index -> running attempts
        self.pending: set[int] = set()  # indices waiting for a speculative copy
        self.speculative: set[int] = set()  # task ids launched as speculative copies

    # -- lifecycle of attempts -------------------------------------------------------------

    def on_launch(self, task_id: int, index: int, executor_id: str, now: float) -> bool:
        """Record a launch; True if it is a speculative copy (another attempt runs)."""
        running = self.copies.get(index, 0)
        self.copies[index] = running + 1
        self.started[task_id] = (now, executor_id, index)
        self.pending.discard(index)
        if running:
            self.speculative.add(task_id)
            return True
        return False

    def on_end(self, task_id: int, now: float, success: bool) -> None:
        """An attempt ended; a first success records its duration."""
        entry = self.started.pop(task_id, None)
        if entry is None:
            return
        launched, _, index = entry
        left = self.copies[index] - 1
        if left:
            self.copies[index] = left
        else:
            del self.copies[index]
        if success:
            self.durations.append(now - launched)

    def other_attempts(self, index: int) -> list[int]:
        """Task ids of the running attempts of ``index`` (the losers, once one won)."""
        if index not in self.copies:
            return []
        return [tid for tid, entry in self.started.items() if entry[2] == index]

    def copy_running(self, index: int) -> bool:
        return index in self.copies

    # -- decisions ------------------------------------------------------------------------

    def threshold(self, num_tasks: int, num_success: int) -> float | None:
        """The runtime past which a running task is a straggler, or None while fewer than
        ``quantile`` of the tasks have succeeded."""
        conf = self.conf
        needed = max(int(conf.quantile * num_tasks), 1)
        if num_success < needed or not self.durations:
            return None
        return max(conf.multiplier * statistics.median(self.durations), conf.min_runtime)

    def check(self, successful: list[bool], num_success: int, now: float) -> list[int]:
        """Mark stragglers speculatable; return the indices newly marked."""
        limit = self.threshold(len(successful), num_success)
        if limit is None:
            return []
        marked: list[int] = []
        pending = self.pending
        for launched, _, index in self.started.values():
            if (now - launched > limit and not successful[index] and index not in pending
                    and self.copies.get(index, 0) == 1):
                pending.add(index)
                marked.append(index)
        return marked

    def next_index(self, executor_id: str, successful: list[bool],
                   excluded: Callable[[int, str], bool] | None = None) -> int | None:
        """A speculatable index that may run on ``executor_id`` (none of its attempts
        runs there, and it is not excluded there), taken off the pending set."""
        pending = self.pending
        for index in sorted(pending):
            if successful[index]:
                pending.discard(index)
                continue
            if any(entry[1] == executor_id and entry[2] == index
                   for entry in self.started.values()):
                continue
            if excluded is not None and excluded(index, executor_id):
                continue
            pending.discard(index)
            return index
        return None
