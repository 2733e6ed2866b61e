"""Per-task latency tracing, on with ``asyncspark.trace.tasks=true``.

Every task of a traced context gets one timestamp at each step of its way::

    submit          the action called Context._run_job
    serialized      the stage's task binary (lineage + function) is pickled
    stage_created   the DAGScheduler handled JobSubmitted (its queue wait included)
    launched        the LaunchTasks frame holding the task is handed to the connection
    received        the executor's event loop decoded that frame
    started         the executor's task thread began the task
    finished        the task's result is pickled
    status_received the driver decoded the TaskStatuses frame reporting it
    delivered       the awaiting coroutine has the job's result back

Serialization happens before the stage exists here (the caller's coroutine pickles, so
that the scheduler loop never does), hence ``serialized`` comes before ``stage_created``.

Clocks: all stamps are ``time.monotonic_ns()``, which on Linux reads ``CLOCK_MONOTONIC``,
one system-wide clock: stamps taken in the driver and in executor processes on the same
host are directly comparable (that is not true across hosts, nor guaranteed on every OS;
on macOS and Windows the monotonic clock is system-wide too). Executors of a
standalone cluster on other hosts would need an offset estimate per executor.

With tracing off the engine keeps ``tracer = None`` and pays one attribute check per job,
per launch batch and per status frame.
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PHASES", "STAMPS", "Tracer", "now_ns"]

now_ns: Callable[[], int] = time.monotonic_ns

STAMPS = ("submit", "serialized", "stage_created", "launched", "received", "started",
          "finished", "status_received", "delivered")
# The phases between consecutive stamps: (name, from stamp index, to stamp index).
PHASES = tuple((f"{STAMPS[i]} -> {STAMPS[i + 1]}", i, i + 1) for i in range(len(STAMPS) - 1))


class Tracer:
    """Collects the stamps of traced tasks (driver side; see the module docstring).

    Complete records (one tuple of ``len(STAMPS)`` ints per task) are kept in a bounded
    deque; ``breakdown()`` summarizes them. The DAGScheduler's event-queue waits are
    kept too (``queue_waits``, ns).
    """

    __slots__ = ("_jobs", "_launched", "queue_waits", "records")

    def __init__(self, max_records: int = 200_000) -> None:
        # job id -> [submit, serialized, stage_created, [per-task stamp tuples]]
        self._jobs: dict[int, list] = {}
        self._launched: dict[int, int] = {}  # task id -> launched stamp
        self.records: collections.deque[tuple[int, ...]] = collections.deque(maxlen=max_records)
        self.queue_waits: collections.deque[int] = collections.deque(maxlen=max_records)

    # -- hooks (called by the context and the schedulers) ----------------------------------

    def job_submitted(self, job_id: int, submit: int, serialized: int) -> None:
        self._jobs[job_id] = [submit, serialized, 0, []]

    def stage_created(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None and not job[2]:
            job[2] = now_ns()

    def launched(self, task_ids: list[int]) -> None:
        t = now_ns()
        launched = self._launched
        for task_id in task_ids:
            launched[task_id] = t

    def task_ended(self, job_id: int, task_id: int, executor_stamps: list[int] | None,
                   status_received: int) -> None:
        """A task's status arrived; ``executor_stamps`` is ``[received, started,
        finished]`` from the executor (None if it did not trace the task)."""
        launched = self._launched.pop(task_id, 0)
        job = self._jobs.get(job_id)
        if job is None or not executor_stamps or not launched:
            return
        job[3].append((launched, *executor_stamps, status_received))

    def job_ended(self, job_id: int, delivered: int | None) -> None:
        """The job's caller resumed (``delivered``), or the job failed (None)."""
        job = self._jobs.pop(job_id, None)
        if job is None or delivered is None or not job[2]:
            return
        head = (job[0], job[1], job[2])
        for task in job[3]:
            self.records.append((*head, *task, delivered))

    def queue_wait(self, ns: int) -> None:
        self.queue_waits.append(ns)

    # -- results -------------------------------------------------------------------------

    def clear(self) -> None:
        self.records.clear()
        self.queue_waits.clear()

    def breakdown(self) -> dict[str, Any]:
        """Median of each phase over the recorded tasks, in µs, plus the median total."""
        return summarize(list(self.records))


def summarize(records: list[tuple[int, ...]]) -> dict[str, Any]:
    """``{"tasks": n, "phases_us": {phase: median µs}, "total_us": median µs}``."""
    if not records:
        return {"tasks": 0, "phases_us": {}, "total_us": None}
    phases = {name: statistics.median(r[j] - r[i] for r in records) / 1e3
              for name, i, j in PHASES}
    total = statistics.median(r[-1] - r[0] for r in records) / 1e3
    return {"tasks": len(records), "phases_us": phases, "total_us": total}
