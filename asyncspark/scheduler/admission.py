"""Admission control: the driver-side bound on running jobs and their unfinished tasks.

``asyncspark.scheduler.maxActiveJobs`` bounds the jobs running at once,
``asyncspark.scheduler.maxPendingTasks`` the tasks of running jobs not yet finished
(a job counts, from its submission to its end, its result tasks plus the map tasks of
the shuffles it must compute; it is the cost known when the job is submitted). Both
are unlimited (0) by default. The context asks ``acquire`` before it posts
``JobSubmitted`` and calls ``release`` when the job ends, however it ends; the counts
are those of this context's loop, so they are exact.

A job that does not fit raises ``JobRejectedError`` at once (timeout 0), or waits up
to the timeout for room: waiters are admitted in arrival order (no overtaking, so a
large job is not starved by small ones), and a job arriving while others wait queues
behind them. A job larger than ``maxPendingTasks`` alone is rejected at once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import Any

from ..conf import parse_duration
from ..errors import JobRejectedError

__all__ = ["Admission", "admission_wait", "map_tasks_to_run"]

MAX_JOBS_KEY = "asyncspark.scheduler.maxActiveJobs"
MAX_TASKS_KEY = "asyncspark.scheduler.maxPendingTasks"
TIMEOUT_KEY = "asyncspark.scheduler.admissionTimeout"


def map_tasks_to_run(shuffles: Mapping[int, Any], outputs: Any) -> int:
    """Map tasks of a job's shuffles (``ShuffleInfo`` by id) whose outputs are not all
    registered in ``outputs`` (the ``MapOutputTracker``): what the job will run besides
    its result tasks."""
    n = 0
    for sid, info in shuffles.items():
        try:
            n += len(outputs.missing(sid))
        except KeyError:  # not computed yet
            n += info.num_maps
    return n


def admission_wait(props: Mapping[str, str], default: float) -> float:
    """How long a job may wait for admission: the submitting coroutine's local property
    ``asyncspark.scheduler.admissionTimeout``, else ``default`` (the configuration's)."""
    value = props.get(TIMEOUT_KEY)
    if value is None:
        return default
    return parse_duration(value, f"local property {TIMEOUT_KEY}")


class Admission:
    """See the module docstring. ``max_jobs``/``max_tasks`` 0: unlimited."""

    def __init__(self, max_jobs: int = 0, max_tasks: int = 0) -> None:
        self.max_jobs = max_jobs
        self.max_tasks = max_tasks
        self.jobs: int = 0  # admitted, not yet released
        self.tasks: int = 0  # their tasks
        self._waiters: collections.deque[tuple[asyncio.Future, int]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _refusal(self, ntasks: int) -> str | None:
        """Which limit ``ntasks`` more would pass, or None if it fits now."""
        if self.max_jobs and self.jobs >= self.max_jobs:
            return MAX_JOBS_KEY
        if self.max_tasks and self.tasks + ntasks > self.max_tasks:
            return MAX_TASKS_KEY
        return None

    def _rejection(self, ntasks: int, waited: float) -> JobRejectedError:
        limit = self._refusal(ntasks)
        if limit == MAX_JOBS_KEY:
            what = f"{self.jobs} jobs are running ({MAX_JOBS_KEY} = {self.max_jobs})"
        elif limit == MAX_TASKS_KEY:
            what = (f"its {ntasks} tasks would make {self.tasks + ntasks} unfinished tasks "
                    f"of running jobs ({MAX_TASKS_KEY} = {self.max_tasks})")
        else:  # room now, but earlier jobs wait for it first
            limit = MAX_JOBS_KEY if self.max_jobs else MAX_TASKS_KEY
            what = f"{len(self._waiters)} earlier jobs are waiting for admission"
        after = f" after waiting {waited:g}s" if waited else ""
        return JobRejectedError(f"job rejected{after}: {what}", limit, self.jobs, self.tasks)

    async def acquire(self, ntasks: int, wait: float = 0.0) -> None:
        """Admit a job of ``ntasks`` tasks, waiting up to ``wait`` seconds for room;
        ``JobRejectedError`` if it does not get in."""
        if self.max_tasks and ntasks > self.max_tasks:
            raise JobRejectedError(
                f"job rejected: it has {ntasks} tasks, more than {MAX_TASKS_KEY} = "
                f"{self.max_tasks} allows for all running jobs together", MAX_TASKS_KEY,
                self.jobs, self.tasks)
        if not self._waiters and self._refusal(ntasks) is None:
            self.jobs += 1
            self.tasks += ntasks
            return
        if wait <= 0:
            raise self._rejection(ntasks, 0.0)
        fut = asyncio.get_running_loop().create_future()
        entry = (fut, ntasks)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(wait):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(ntasks)  # admitted just as the caller gave up: give it back
            elif entry in self._waiters:
                self._waiters.remove(entry)
                fut.cancel()
                self._wake()  # it may have been blocking the ones behind it
            if isinstance(exc, TimeoutError):
                raise self._rejection(ntasks, wait) from None
            raise

    def close(self, error: BaseException) -> None:
        """The context stops: every waiting job fails with ``error``."""
        while self._waiters:
            fut, _ = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(error)

    def release(self, ntasks: int) -> None:
        """An admitted job ended."""
        self.jobs -= 1
        self.tasks -= ntasks
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._refusal(waiters[0][1]) is None:
            fut, ntasks = waiters.popleft()
            if fut.done():
                continue
            self.jobs += 1
            self.tasks += ntasks
            fut.set_result(None)
