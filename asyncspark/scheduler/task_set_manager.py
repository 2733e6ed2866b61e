"""TaskSetManager: the tasks of one stage attempt — which are pending, running, done, and
how many times each failed. Pure bookkeeping, no I/O.

Locality, when the task set has preferred locations (cached blocks): an offer from an
executor gets a task preferring that executor (process-local) if there is one; else a
task preferring its host (node-local) once the set has waited ``locality_wait`` without
a process-local launch; a task with no live preference at once; and any task once it has
waited another ``locality_wait`` (Spark's delay scheduling). A level no live executor
could satisfy (the executor holding the block is gone) is not waited for.

With ``spec`` (``speculation.py``), an offer that finds no pending task may get a
speculative copy of a straggler; with ``exclusion`` (``exclusion.py``), executors that
failed a task (or too many of the set's tasks) are never offered it (them) again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from .exclusion import ExclusionConf, StageExclusion
from .speculation import Speculation, SpeculationConf
from .stage import TaskSet

__all__ = ["ANY", "NODE_LOCAL", "PROCESS_LOCAL", "TaskSetManager"]

PROCESS_LOCAL, NODE_LOCAL, ANY = 0, 1, 2


class TaskSetManager:
    __slots__ = ("attempts", "exclusion", "failed_on", "failures", "last_launch", "level",
                 "locality_wait", "max_failures", "num_success", "pending", "preferred",
                 "running", "spec", "successful", "taskset", "zombie")

    def __init__(self, taskset: TaskSet, max_failures: int, locality_wait: float = 0.0,
                 now: float = 0.0, speculation: SpeculationConf | None = None,
                 exclusion: ExclusionConf | None = None) -> None:
        n = len(taskset.partitions)
        self.taskset: TaskSet = taskset
        self.max_failures: int = max_failures
        self.pending: deque[int] = deque(range(n))
        self.running: dict[int, int] = {}  # task id -> task index
        self.successful: list[bool] = [False] * n
        self.num_success: int = 0
        self.failures: list[int] = [0] * n
        self.attempts: list[int] = [0] * n
        self.failed_on: dict[int, set[str]] = {}  # task index -> executors it failed on
        self.zombie: bool = False  # no more launches: finished, aborted or cancelled
        # per index [(executor_id or None, host)]
        self.preferred: list[list[tuple[str | None, str]]] | None = taskset.preferred
        self.locality_wait: float = locality_wait
        self.level: int = PROCESS_LOCAL  # the most local level still required (delay scheduling)
        self.last_launch: float = now  # when the wait at `level` started
        self.spec: Speculation | None = (
            Speculation(speculation) if speculation is not None else None)
        self.exclusion: StageExclusion | None = (
            StageExclusion(exclusion) if exclusion is not None else None)

    @property
    def finished(self) -> bool:
        return self.num_success == len(self.successful)

    def next_task(self, executor_id: str, alive: Collection[str], host: str = "",
                  now: float = 0.0, hosts: Collection[str] = ()) -> int | None:
        """A pending task index for ``executor_id`` (avoiding executors a task already
        failed on while others are alive), or None. With preferred locations, ``host``
        is the executor's, ``hosts`` those of live executors and ``now`` the clock.
        With no pending task for it, a speculative copy (see ``spec``) may be."""
        if self.zombie:
            return None
        if self.pending:
            index = self._next_pending(executor_id, alive, host, now, hosts)
            if index is not None:
                return index
        spec = self.spec
        if spec is not None and spec.pending:
            exclusion = self.exclusion
            return spec.next_index(executor_id, self.successful,
                                   exclusion.excludes if exclusion is not None else None)
        return None

    def _avoid(self, idx: int, executor_id: str, alive: Collection[str]) -> bool:
        """Keep task ``idx`` off ``executor_id``: excluded there, or it failed there while
        another live executor is one it did not fail on."""
        exclusion = self.exclusion
        if exclusion is not None and exclusion.excludes(idx, executor_id):
            return True
        bad = self.failed_on.get(idx)
        return bool(bad) and executor_id in bad and any(e not in bad for e in alive)

    def _next_pending(self, executor_id: str, alive: Collection[str], host: str,
                      now: float, hosts: Collection[str]) -> int | None:
        if self.exclusion is not None and self.exclusion.executor_excluded(executor_id):
            return None
        if self.preferred is not None and self.locality_wait > 0:
            return self._next_local(executor_id, alive, host, now, hosts)
        pending = self.pending
        failed_on = self.failed_on
        if not failed_on:
            return pending.popleft()
        skipped: list[int] = []
        found = None
        while pending:
            idx = pending.popleft()
            if self._avoid(idx, executor_id, alive):
                skipped.append(idx)
                continue
            found = idx
            break
        pending.extendleft(reversed(skipped))
        return found

    def _next_local(self, executor_id: str, alive: Collection[str], host: str, now: float,
                    hosts: Collection[str]) -> int | None:
        prefs = self.preferred
        failed_on = self.failed_on
        node = no_pref = other = None
        valid_process = valid_node = False
        for idx in self.pending:
            if failed_on and self._avoid(idx, executor_id, alive):
                continue
            live = False
            for pref_executor, pref_host in prefs[idx]:  # type: ignore[index]
                if pref_executor is not None and pref_executor in alive:
                    if pref_executor == executor_id:
                        return self._take(idx, PROCESS_LOCAL, now)
                    valid_process = live = True
                if pref_host in hosts:
                    valid_node = live = True
                    if node is None and pref_host == host:
                        node = idx
            if not live:
                if no_pref is None:
                    no_pref = idx
            elif other is None:
                other = idx
        level = self._allowed_level(now, valid_process, valid_node)
        if node is not None and level >= NODE_LOCAL:
            return self._take(node, NODE_LOCAL, now)
        if no_pref is not None:
            self.pending.remove(no_pref)
            return no_pref
        if other is not None and level >= ANY:
            return self._take(other, ANY, now)
        return None

    def _allowed_level(self, now: float, valid_process: bool, valid_node: bool) -> int:
        """The least local level a launch may have now: levels waited at for
        ``locality_wait`` each, skipping those no live executor could satisfy."""
        level = self.level
        wait = self.locality_wait
        while level < ANY:
            valid = valid_process if level == PROCESS_LOCAL else valid_node
            if not valid:
                level += 1
                self.last_launch = now
            elif now - self.last_launch >= wait:
                level += 1
                self.last_launch += wait
            else:
                break
        self.level = level
        return level

    def _take(self, idx: int, level: int, now: float) -> int:
        self.pending.remove(idx)
        self.level = level
        self.last_launch = now
        return idx

    def locality_deadline(self) -> float | None:
        """When a task held back for locality may run less locally (None: none is)."""
        if self.preferred is None or self.locality_wait <= 0 or self.zombie \
                or not self.pending or self.level >= ANY:
            return None
        return self.last_launch + self.locality_wait

    def launched(self, task_id: int, index: int, executor_id: str = "",
                 now: float = 0.0) -> int:
        """Record a launch on ``executor_id`` at ``now``; return its attempt number."""
        self.running[task_id] = index
        attempt = self.attempts[index]
        self.attempts[index] = attempt + 1
        if self.spec is not None:
            self.spec.on_launch(task_id, index, executor_id, now)
        return attempt

    def succeeded(self, task_id: int, now: float = 0.0) -> int | None:
        """Record a success; the task index, or None if it was a duplicate."""
        index = self.running.pop(task_id, None)
        if self.spec is not None:
            self.spec.on_end(task_id, now, index is not None and not self.successful[index])
        if index is None or self.successful[index]:
            return None
        self.successful[index] = True
        self.num_success += 1
        if self.finished:
            self.zombie = True
        return index

    def failed(self, task_id: int, executor_id: str, counts: bool,
               message: str = "") -> tuple[int | None, bool]:
        """Record a failure and re-queue the task (unless another attempt of it is still
        running). Returns ``(index, abort)``: ``abort`` is True when the task has now
        failed ``max_failures`` times."""
        index = self.running.pop(task_id, None)
        spec = self.spec
        if spec is not None:
            spec.on_end(task_id, 0.0, False)
        if index is None or self.successful[index] or self.zombie:
            return index, False
        if counts:
            self.failures[index] += 1
            self.failed_on.setdefault(index, set()).add(executor_id)
            if self.exclusion is not None:
                self.exclusion.record_failure(index, executor_id, message)
            if self.failures[index] >= self.max_failures:
                self.zombie = True
                return index, True
        if spec is not None and spec.copy_running(index):
            return index, False  # that attempt may still succeed; if it fails, it re-queues
        self.pending.appendleft(index)
        return index, False
