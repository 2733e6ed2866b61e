"""Dynamic allocation: how many executors an application should have, as Spark's
``ExecutorAllocationManager`` and ``ExecutorMonitor`` decide it (``spark.dynamicAllocation.*``).

Pure logic: no loop, no processes. Its inputs are what the driver sees (executors
added and removed, each executor's running tasks and when its last task ended, the
shuffles whose outputs it holds, whether it holds cached blocks, the shuffles active
jobs still need) and time from an injected clock; ``schedule(pending, running)``, called
every 100 ms by the driver (``backends/dynamic.py``), returns the target and the executors
to remove.

Growing: while tasks wait for a slot (``pending > 0``) for ``schedulerBacklogTimeout``,
the target grows by 1, then, each ``sustainedSchedulerBacklogTimeout`` the backlog lasts,
by twice as many as the last time (1, 2, 4, ...), never beyond what the unfinished tasks
need (``ceil((pending + running) * executorAllocationRatio / tasks per executor)``) nor
``maxExecutors``. When the backlog clears, the next growth starts at 1 again.

Shrinking: when fewer executors are needed than the target, the target drops to what is
needed (at least ``minExecutors``), but nothing is killed for it: executors go only when
they have been idle (no running task) for their timeout. ``executorIdleTimeout`` in
general; ``cachedExecutorIdleTimeout`` for one holding cached blocks;
``shuffleTracking.timeout`` for one holding shuffle outputs (both: the shorter). An
executor holding outputs of a shuffle an active job still needs is never removed (with
``shuffleTracking.enabled``): its files would be lost and recomputed. Removals never
take the executors below ``minExecutors`` nor below the target. Until the first stage
is submitted or an executor first times out, the target stays at ``initialExecutors``
(Spark's ``initializing``: the first job does not have to ramp up again).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..conf import Config

__all__ = ["AllocationConf", "Decision", "ExecutorAllocationManager"]

INFINITY = math.inf


@dataclass(frozen=True)
class AllocationConf:
    """``spark.dynamicAllocation.*`` (times in seconds; ``max_executors`` None: no
    limit). ``tasks_per_executor``: task slots of one executor."""

    min_executors: int = 0
    max_executors: int | None = None
    initial_executors: int = 0
    executor_idle_timeout: float = 60.0
    cached_executor_idle_timeout: float = INFINITY
    scheduler_backlog_timeout: float = 1.0
    sustained_scheduler_backlog_timeout: float = 1.0
    shuffle_tracking: bool = True
    shuffle_tracking_timeout: float = INFINITY
    allocation_ratio: float = 1.0
    tasks_per_executor: int = 1

    def __post_init__(self) -> None:
        if self.min_executors < 0:
            raise ValueError("minExecutors must be >= 0")
        if self.max_executors is not None and self.max_executors < max(1, self.min_executors):
            raise ValueError("maxExecutors must be >= 1 and >= minExecutors")
        if self.scheduler_backlog_timeout <= 0 or self.sustained_scheduler_backlog_timeout <= 0:
            raise ValueError("the scheduler backlog timeouts must be > 0")
        if self.tasks_per_executor < 1:
            raise ValueError("tasks_per_executor must be >= 1")

    @property
    def maximum(self) -> float:
        return INFINITY if self.max_executors is None else self.max_executors

    @classmethod
    def from_config(cls, conf: Config, default_max: int | None = None) -> AllocationConf:
        """From a ``Config``; ``default_max``: ``maxExecutors`` when it is not set
        (``local[N]``: N). The initial target is Spark's: the largest of
        ``initialExecutors``, ``minExecutors`` and ``spark.executor.instances``."""
        maximum = conf.dyn_max_executors if conf.dyn_max_executors is not None else default_max
        initial = max(conf.dyn_min_executors, conf.dyn_initial_executors or 0,
                      conf.executor_instances or 0)
        if maximum is not None:
            initial = min(initial, maximum)
        backlog = conf.dyn_backlog_timeout
        sustained = conf.dyn_sustained_backlog_timeout
        return cls(min_executors=conf.dyn_min_executors, max_executors=maximum,
                   initial_executors=initial,
                   executor_idle_timeout=conf.dyn_idle_timeout,
                   cached_executor_idle_timeout=conf.dyn_cached_idle_timeout,
                   scheduler_backlog_timeout=backlog,
                   sustained_scheduler_backlog_timeout=backlog if sustained is None
                   else sustained,
                   shuffle_tracking=conf.dyn_shuffle_tracking,
                   shuffle_tracking_timeout=conf.dyn_shuffle_tracking_timeout,
                   allocation_ratio=conf.dyn_allocation_ratio,
                   tasks_per_executor=conf.task_slots)


@dataclass(frozen=True)
class Decision:
    """What ``schedule`` decided: keep ``target`` executors; remove ``remove`` (idle
    past their timeout, in id order), already counted out of ``target``."""

    target: int
    remove: tuple[str, ...] = ()


class _Tracker:
    __slots__ = ("cached", "idle_since", "last_busy", "pending_removal", "running", "shuffles")

    def __init__(self, now: float) -> None:
        self.running = 0
        self.idle_since: float | None = now
        self.last_busy = now
        self.shuffles: frozenset[int] = frozenset()
        self.cached = False
        self.pending_removal = False


class ExecutorAllocationManager:
    """The target number of executors and the idle ones to remove (see the module
    docstring). Every input is an event or a snapshot; ``clock`` gives the time."""

    def __init__(self, conf: AllocationConf, clock: Callable[[], float]) -> None:
        self.conf = conf
        self.clock = clock
        self.target: int = conf.initial_executors
        self.initializing: bool = True
        self.to_add: int = 1  # the next growth step
        self.add_at: float | None = None  # when the backlog next grows the target
        self.active_shuffles: frozenset[int] = frozenset()
        self.executors: dict[str, _Tracker] = {}
        self.added: int = 0  # counters: executors asked for / removed
        self.removed: int = 0

    # -- inputs --------------------------------------------------------------------------

    def executor_added(self, executor_id: str) -> None:
        if executor_id not in self.executors:
            self.executors[executor_id] = _Tracker(self.clock())

    def executor_removed(self, executor_id: str) -> None:
        self.executors.pop(executor_id, None)

    def stage_submitted(self) -> None:
        self.initializing = False

    def activity(self, executor_id: str, running: int, last_task_end: float | None = None) -> None:
        """``running`` tasks on the executor now; ``last_task_end``: when it last
        reported a task done (a task may have started and ended since the last call).
        Idle since the latest of: when it went idle, its last task end, the last time
        it was seen busy."""
        ex = self.executors.get(executor_id)
        if ex is None:
            return
        now = self.clock()
        ex.running = running
        if running > 0:
            ex.idle_since = None
            ex.last_busy = now
            return
        since = ex.last_busy if ex.idle_since is None else ex.idle_since
        if last_task_end is not None and last_task_end > since:
            since = min(last_task_end, now)
        ex.idle_since = since

    def holdings(self, executor_id: str, shuffles: Iterable[int], cached: bool) -> None:
        """The shuffles whose outputs the executor holds now, and whether it holds
        cached blocks."""
        ex = self.executors.get(executor_id)
        if ex is not None:
            ex.shuffles = frozenset(shuffles)
            ex.cached = cached

    def set_active_shuffles(self, shuffle_ids: Iterable[int]) -> None:
        """The shuffles some active job reads or writes (their outputs are needed)."""
        self.active_shuffles = frozenset(shuffle_ids)

    # -- queries -------------------------------------------------------------------------

    def max_needed(self, pending: int, running: int) -> int:
        tasks = (pending + running) * self.conf.allocation_ratio
        return math.ceil(tasks / self.conf.tasks_per_executor)

    def has_active_shuffle(self, executor_id: str) -> bool:
        ex = self.executors[executor_id]
        return self.conf.shuffle_tracking and not ex.shuffles.isdisjoint(self.active_shuffles)

    def timeout_of(self, executor_id: str) -> float:
        """How long the executor may idle before it is removed (Spark's rule: holding
        cached blocks or shuffle outputs, the shorter of those timeouts, else
        ``executorIdleTimeout``)."""
        ex = self.executors[executor_id]
        holds_shuffle = self.conf.shuffle_tracking and bool(ex.shuffles)
        if not ex.cached and not holds_shuffle:
            return self.conf.executor_idle_timeout
        cache = self.conf.cached_executor_idle_timeout if ex.cached else INFINITY
        shuffle = self.conf.shuffle_tracking_timeout if holds_shuffle else INFINITY
        return min(cache, shuffle)

    def timed_out(self) -> list[str]:
        """Idle executors past their timeout, not being removed, holding no output of
        an active shuffle, in id order."""
        now = self.clock()
        out = []
        for eid, ex in self.executors.items():
            if ex.pending_removal or ex.running or ex.idle_since is None:
                continue
            if self.has_active_shuffle(eid):
                continue
            if now - ex.idle_since >= self.timeout_of(eid):
                out.append(eid)
        return sorted(out, key=_id_order)

    # -- the decision --------------------------------------------------------------------

    def schedule(self, pending: int, running: int) -> Decision:
        """Spark's ``schedule()``: ``pending`` tasks waiting for a slot and ``running``
        ones (launched, not finished) over all active stages."""
        now = self.clock()
        if pending > 0:
            if self.add_at is None:
                self.add_at = now + self.conf.scheduler_backlog_timeout
        else:
            self.add_at = None
            self.to_add = 1
        expired = self.timed_out()
        if expired:
            self.initializing = False
        if not self.initializing:
            self._update_target(now, self.max_needed(pending, running))
        return Decision(self.target, self._remove(expired))

    def _update_target(self, now: float, needed: int) -> None:
        conf = self.conf
        if needed < self.target:
            self.to_add = 1
            self.target = max(needed, conf.min_executors)
        elif self.add_at is not None and now >= self.add_at:
            self._add(needed)
            self.add_at = now + conf.sustained_scheduler_backlog_timeout

    def _add(self, needed: int) -> None:
        conf = self.conf
        old = self.target
        if old >= conf.maximum:
            self.to_add = 1
            return
        live = sum(1 for ex in self.executors.values() if not ex.pending_removal)
        target = max(old, live) + self.to_add
        target = min(target, needed)
        target = int(max(min(target, conf.maximum), conf.min_executors))
        delta = target - old
        self.target = target
        if delta > 0:
            self.added += delta
        self.to_add = self.to_add * 2 if delta == self.to_add else 1

    def _remove(self, expired: list[str]) -> tuple[str, ...]:
        live = sum(1 for ex in self.executors.values() if not ex.pending_removal)
        removed = []
        for eid in expired:
            if live - 1 < self.conf.min_executors or live - 1 < self.target:
                continue
            self.executors[eid].pending_removal = True
            removed.append(eid)
            live -= 1
        self.removed += len(removed)
        return tuple(removed)


def _id_order(executor_id: str) -> tuple[int, str]:
    return (int(executor_id), "") if executor_id.isdigit() else (1 << 62, executor_id)
