"""PySpark's ``StatusTracker`` (``sc.statusTracker()``): job and stage progress from the
status store, as the ``SparkJobInfo`` and ``SparkStageInfo`` namedtuples PySpark returns.

Running jobs come from the context itself as well (it knows them the moment they are
submitted), so a tracker asked for after a job started still sees that job. Asked on the
context's loop, it first has the listener bus deliver what is pending (``flush``), so it
answers with every event posted so far.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["SparkJobInfo", "SparkStageInfo", "StatusTracker"]


class SparkJobInfo(NamedTuple):
    jobId: int
    stageIds: list[int]
    status: str  # RUNNING, SUCCEEDED, FAILED, UNKNOWN


class SparkStageInfo(NamedTuple):
    stageId: int
    currentAttemptId: int
    name: str
    numTasks: int
    numActiveTasks: int
    numCompletedTasks: int
    numFailedTasks: int


class StatusTracker:
    """Low-level status of jobs and stages (PySpark's API; ``None`` for an id the store
    does not have, or no longer has: see ``spark.ui.retainedJobs``/``retainedStages``)."""

    def __init__(self, store: Any, active_jobs: dict[int, str | None] | None = None,
                 flush: Any = None) -> None:
        self._store = store
        self._active = active_jobs if active_jobs is not None else {}
        self._flush = flush or (lambda: None)

    def getJobIdsForGroup(self, jobGroup: str | None = None) -> list[int]:
        """s of no group).

        >>> async def nightly():
        ...     tracker = sc.statusTracker()  # jobs from now on are known to it
        ...     sc.setJobGroup("nightly", "the nightly totals")
        ...     await sc.parallelize(range(4), 2).sum()
        ...     return tracker.getJobIdsForGroup("nightly")
        >>> len(await nightly())
        1
        """
        self._flush()
        ids = set(self._store.job_ids_for_group(jobGroup))
        ids.update(j for j, g in list(self._active.items()) if g == jobGroup)
        return sorted(ids)

    def getActiveJobsIds(self) -> list[int]:
        """The ids of the jobs running now.

        >>> sc.statusTracker().getActiveJobsIds()  # nothing runs between examples
        []
        """
        self._flush()
        ids = {j for j in self._store.active_job_ids()}
        ids.update(self._active)
        ended = {j for j, d in list(self._store.jobs.items()) if d["status"] != "RUNNING"}
        return sorted(ids - ended)

    def getActiveStageIds(self) -> list[int]:
        """The ids of the stages running now.

        >>> sc.statusTracker().getActiveStageIds()
        []
        """
        self._flush()
        return self._store.active_stage_ids()

    def getJobInfo(self, jobId: int) -> SparkJobInfo | None:
        """A job's id, status and stage ids (``SparkJobInfo``), or None.

        >>> async def one_job():
        ...     tracker = sc.statusTracker()
        ...     sc.setJobGroup("info", "one job")
        ...     await sc.parallelize([1, 2]).count()
        ...     (job,) = tracker.getJobIdsForGroup("info")
        ...     return tracker.getJobInfo(job)
        >>> (await one_job()).status
        'SUCCEEDED'
        """
        self._flush()
        job = self._store.jobs.get(jobId)
        if job is None:
            if jobId in self._active:
                return SparkJobInfo(jobId, [], "RUNNING")
            return None
        return SparkJobInfo(jobId, list(job["stageIds"]), job["status"])

    def getStageInfo(self, stageId: int) -> SparkStageInfo | None:
        """A stage's latest attempt (``SparkStageInfo``: tasks, their counts, name), or None.

        >>> async def stage():
        ...     tracker = sc.statusTracker()
        ...     sc.setJobGroup("stage", "one stage")
        ...     await sc.parallelize([1, 2, 3], 3).count()
        ...     (job,) = tracker.getJobIdsForGroup("stage")
        ...     (sid,) = tracker.getJobInfo(job).stageIds
        ...     return tracker.getStageInfo(sid)
        >>> info = await stage()
        >>> info.numTasks, info.numCompletedTasks
        (3, 3)
        """
        self._flush()
        attempts = [(a, st) for (s, a), st in list(self._store.stages.items()) if s == stageId]
        if not attempts:
            return None
        attempt, st = max(attempts, key=lambda x: x[0])
        return SparkStageInfo(stageId, attempt, st["name"], st["numTasks"],
                              st["numActiveTasks"], st["numCompleteTasks"],
                              st["numFailedTasks"])
