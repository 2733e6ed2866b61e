"""The status store: a listener that keeps what the web UI, the REST API and the
``StatusTracker`` show (Spark's ``AppStatusListener``/``AppStatusStore``).

It is fed by the listener bus, off the scheduler's hot path, and keeps plain dicts shaped
like Spark's REST API (``/api/v1``): jobs, stage attempts with their tasks, executors.
Retention is bounded as Spark's (``spark.ui.retainedJobs``, ``spark.ui.retainedStages``,
``spark.ui.retainedTasks``): past a bound the oldest *finished* entries go first. The
same store is rebuilt from an event log by the history server (``ui/history.py``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .shapes import quantiles, spark_time, storage_info, task_metrics_json

if TYPE_CHECKING:
    from ..listener import (
        SparkListenerApplicationEnd,
        SparkListenerApplicationStart,
        SparkListenerBlockUpdated,
        SparkListenerEnvironmentUpdate,
        SparkListenerExecutorAdded,
        SparkListenerExecutorRemoved,
        SparkListenerJobEnd,
        SparkListenerJobStart,
        SparkListenerStageCompleted,
        SparkListenerStageSubmitted,
        SparkListenerTaskEnd,
        SparkListenerTaskStart,
        SparkListenerUnpersistRDD,
    )

__all__ = ["TASK_METRIC_NAMES", "StatusStore", "quantiles", "spark_time", "storage_info"]

# The flat task metrics an executor reports (SparkListenerTaskEnd.metrics), with Spark's
# names (those of its REST API's StageData); times in ms except the CPU and write times (ns).
TASK_METRIC_NAMES = (
    "executorDeserializeTime", "executorDeserializeCpuTime", "executorRunTime",
    "executorCpuTime", "resultSize", "jvmGcTime", "resultSerializationTime",
    "memoryBytesSpilled", "diskBytesSpilled", "peakExecutionMemory", "inputBytes",
    "inputRecords", "outputBytes", "outputRecords", "shuffleRemoteBlocksFetched",
    "shuffleLocalBlocksFetched", "shuffleFetchWaitTime", "shuffleRemoteBytesRead",
    "shuffleLocalBytesRead", "shuffleReadRecords", "shuffleWriteBytes", "shuffleWriteTime",
    "shuffleWriteRecords",
)


RETAINED_DEAD_EXECUTORS = 100
_TIME_KEYS = frozenset(("submissionTime", "completionTime", "firstTaskLaunchedTime",
                        "launchTime", "addTime", "removeTime"))


def _stage_rdds(rdd_id: int, rdds: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The RDDs a stage computes: its RDD and its narrow ancestors (up to the shuffles)."""
    out, seen, stack = [], set(), [rdd_id]
    while stack:
        r = rdds.get(stack.pop())
        if r is None or r["id"] in seen:
            continue
        seen.add(r["id"])
        out.append(r)
        stack.extend(r["parentIds"])
    return sorted(out, key=lambda r: r["id"])


_STAGE_TEMPLATE: dict[str, Any] = {
    "status": "PENDING", "stageId": 0, "attemptId": 0, "numTasks": 0,
    "numActiveTasks": 0, "numCompleteTasks": 0, "numFailedTasks": 0,
    "numKilledTasks": 0, "numCompletedIndices": 0, "submissionTime": None,
    "firstTaskLaunchedTime": None, "completionTime": None, "failureReason": None,
    "name": "", "details": "", "schedulingPool": "default", "rddIds": None,
    "parentIds": None, "jobIds": None, "accumulatorUpdates": None,
    "killedTasksSummary": None, **dict.fromkeys(TASK_METRIC_NAMES, 0),
    "shuffleRemoteBytesReadToDisk": 0, "shuffleReadBytes": 0,
}


def _new_stage(stage_id: int, attempt: int, num_tasks: int, name: str, details: str,
               parents: list[int], rdd_id: int, job_ids: list[int]) -> dict[str, Any]:
    d = _STAGE_TEMPLATE.copy()  # one C copy; then what differs (and fresh containers)
    d["stageId"], d["attemptId"], d["numTasks"] = stage_id, attempt, num_tasks
    d["name"], d["details"], d["rddIds"], d["parentIds"] = name, details, [rdd_id], parents
    d["jobIds"], d["accumulatorUpdates"], d["killedTasksSummary"] = job_ids, [], {}
    return d


_JOB_TEMPLATE: dict[str, Any] = {
    "jobId": 0, "name": "", "description": None, "submissionTime": 0.0,
    "completionTime": None, "stageIds": None, "jobGroup": None, "jobTags": None,
    "status": "RUNNING", "numTasks": 0, "numActiveTasks": 0, "numCompletedTasks": 0,
    "numSkippedTasks": 0, "numFailedTasks": 0, "numKilledTasks": 0,
    "numCompletedIndices": 0, "numActiveStages": 0, "numCompletedStages": 0,
    "numSkippedStages": 0, "numFailedStages": 0, "killedTasksSummary": None,
    "_start": 0.0, "_end": None, "_stages_run": None,
}

_TASK_TEMPLATE: dict[str, Any] = {
    "taskId": 0, "index": 0, "attempt": 0, "partitionId": 0, "launchTime": 0.0,
    "duration": None, "executorId": "", "host": "", "status": "RUNNING",
    "taskLocality": "PROCESS_LOCAL", "speculative": False, "accumulatorUpdates": (),
    "errorMessage": None, "taskMetrics": None, "executorLogs": None, "schedulerDelay": 0,
    "gettingResultTime": 0, "_launch": 0.0,
}
_EMPTY: dict = {}


class StatusStore:
    """Spark's status store as a listener (see the module docstring)."""

    def __init__(self, app_id: str = "", app_name: str = "", *, retained_jobs: int = 1000,
                 retained_stages: int = 1000, retained_tasks: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.app_id: str = app_id
        self.app_name: str = app_name
        self.retained_jobs = retained_jobs
        self.retained_stages = retained_stages
        self.retained_tasks = retained_tasks
        self.start_time: float = clock()
        self.end_time: float | None = None
        self.spark_user: str = ""
        self.jobs: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        self.stages: collections.OrderedDict[tuple[int, int], dict[str, Any]] = (
            collections.OrderedDict())
        self.stage_info: dict[int, dict[str, Any]] = {}  # stage id -> name, parents, rdd, jobs
        self._lineage: dict[int, list] = {}  # stage id -> its job's rddInfos
        self.tasks: dict[tuple[int, int], collections.OrderedDict[int, dict[str, Any]]] = {}
        self.executors: dict[str, dict[str, Any]] = {}
        self.environment: dict[str, Any] = {"sparkProperties": [], "systemProperties": [],
                                            "runtime": {}}
        self.job_groups: dict[int, str | None] = {}
        self.blocks: dict[str, dict[str, tuple[str, int]]] = {}  # from BlockUpdated
        # executor id -> {"stderr": its log file} when the ExecutorAdded event names none
        self.log_paths: Any = None
        self.dropped: int = 0  # listener-bus drops seen (SparkListenerEventsDropped)
        self.version: int = 0  # bumped on every event: live pages poll/stream on it
        self._job_of_stage: dict[int, set[int]] = {}
        self._attempts: dict[int, list[int]] = {}  # stage id -> retained attempts
        self._add_driver()

    def _add_driver(self) -> None:
        self.executors["driver"] = self._new_executor("driver", "localhost", self.start_time)

    @staticmethod
    def _new_executor(executor_id: str, host: str, t: float) -> dict[str, Any]:
        return {
            "id": executor_id, "hostPort": host, "isActive": True, "rddBlocks": 0,
            "memoryUsed": 0, "diskUsed": 0, "totalCores": 0 if executor_id == "driver" else 1,
            "maxTasks": 0 if executor_id == "driver" else 1, "activeTasks": 0,
            "failedTasks": 0, "completedTasks": 0, "totalTasks": 0, "totalDuration": 0,
            "totalGCTime": 0, "totalInputBytes": 0, "totalShuffleRead": 0,
            "totalShuffleWrite": 0, "isExcluded": False, "maxMemory": 0,
            "addTime": t, "removeTime": None, "removeReason": None,
            "executorLogs": {}, "peakMemoryMetrics": {"ProcessTreePythonRSSMemory": 0},
            "attributes": {}, "resources": {},
        }

    # -- listener methods (the bus calls them) ------------------------------------------

    def onApplicationStart(self, ev: SparkListenerApplicationStart) -> None:
        self.app_id, self.app_name = ev.appId or self.app_id, ev.appName
        self.start_time, self.spark_user = ev.time, ev.sparkUser
        self.executors["driver"]["addTime"] = ev.time
        self.version += 1

    def onApplicationEnd(self, ev: SparkListenerApplicationEnd) -> None:
        self.end_time = ev.time
        self.version += 1

    def onEnvironmentUpdate(self, ev: SparkListenerEnvironmentUpdate) -> None:
        self.environment = {k: v for k, v in ev.environmentDetails.items()}
        self.version += 1

    def onJobStart(self, ev: SparkListenerJobStart) -> None:
        props = ev.properties or _EMPTY
        infos = getattr(ev, "stageInfos", None) or ()
        lineage = getattr(ev, "rddInfos", None) or None
        stage_info, job_of_stage = self.stage_info, self._job_of_stage
        for info in infos:
            sid = info["stageId"]
            stage_info[sid] = info  # the event's (shared, never changed)
            if lineage:
                self._lineage[sid] = lineage  # its RDDs are found when asked (stage_rdds)
            jobs = job_of_stage.get(sid)
            if jobs is None:
                job_of_stage[sid] = {ev.jobId}
            else:
                jobs.add(ev.jobId)
        final = max(ev.stageIds) if ev.stageIds else None
        name = props.get("callSite.short") or (
            stage_info.get(final, _EMPTY).get("name", f"job {ev.jobId}")
            if final is not None else f"job {ev.jobId}")
        group = props.get("spark.jobGroup.id")
        self.job_groups[ev.jobId] = group
        job = _JOB_TEMPLATE.copy()
        job["jobId"], job["name"] = ev.jobId, name
        job["description"] = props.get("spark.job.description")
        job["submissionTime"] = job["_start"] = ev.time
        job["stageIds"], job["jobGroup"], job["jobTags"] = list(ev.stageIds), group, []
        job["numTasks"] = sum(stage_info.get(s, _EMPTY).get("numTasks", 0)
                              for s in ev.stageIds)
        job["killedTasksSummary"], job["_stages_run"] = {}, set()
        self.jobs[ev.jobId] = job
        if len(self.jobs) > self.retained_jobs:
            for old in self._evict(self.jobs, self.retained_jobs,
                                   lambda j: j["status"] != "RUNNING"):
                self._forget_job(old)
        self.version += 1

    def stage_rdds(self, stage_id: int) -> list[dict[str, Any]]:
        """The RDDs stage ``stage_id`` computes: its RDD and its narrow ancestors."""
        info, lineage = self.stage_info.get(stage_id), self._lineage.get(stage_id)
        if info is None or not lineage:
            return []
        return _stage_rdds(info.get("rddId", -1), {r["id"]: r for r in lineage})

    def onJobEnd(self, ev: SparkListenerJobEnd) -> None:
        job = self.jobs.get(ev.jobId)
        if job is None:
            return
        job["status"] = "SUCCEEDED" if ev.jobResult == "JobSucceeded" else "FAILED"
        job["completionTime"] = ev.time
        job["_end"] = ev.time
        if ev.jobResult != "JobSucceeded":
            job["errorMessage"] = ev.jobResult.removeprefix("JobFailed: ")
        run = job["_stages_run"]
        skipped = [s for s in job["stageIds"] if s not in run]
        job["numSkippedStages"] = len(skipped)
        job["numSkippedTasks"] = sum(self.stage_info.get(s, {}).get("numTasks", 0)
                                     for s in skipped)
        job["numActiveStages"] = 0
        for sid in skipped:  # Spark shows a never-run stage of a finished job as SKIPPED
            info = self.stage_info.get(sid)
            if info is not None and not self._attempts.get(sid):
                st = self._stage_entry(sid, 0, info.get("numTasks", 0))
                st["status"] = "SKIPPED"
        if ev.jobResult != "JobSucceeded":
            for sid in job["stageIds"]:
                for attempt in self._attempts.get(sid, ()):
                    st = self.stages[(sid, attempt)]
                    if st["status"] == "ACTIVE" and not self._other_running_job(sid, ev.jobId):
                        st["status"] = "FAILED"  # cancelled or aborted with its job
                        st["completionTime"] = ev.time
                        st["failureReason"] = st["failureReason"] or job.get("errorMessage")
        self.version += 1

    def _other_running_job(self, stage_id: int, job_id: int) -> bool:
        return any(j != job_id and self.jobs.get(j, {}).get("status") == "RUNNING"
                   for j in self._job_of_stage.get(stage_id, ()))

    def _stage_entry(self, stage_id: int, attempt: int, num_tasks: int) -> dict[str, Any]:
        key = (stage_id, attempt)
        st = self.stages.get(key)
        if st is None:
            info = self.stage_info.get(stage_id, {})
            st = _new_stage(stage_id, attempt, num_tasks, info.get("name", f"stage {stage_id}"),
                            info.get("details", ""), info.get("parentIds", []),
                            info.get("rddId", -1),
                            sorted(self._job_of_stage.get(stage_id, ())))
            self.stages[key] = st
            self.tasks[key] = collections.OrderedDict()
            self._attempts.setdefault(stage_id, []).append(attempt)
            if len(self.stages) > self.retained_stages:
                self._evict_stages()
        return st

    def _evict_stages(self) -> None:
        while len(self.stages) > self.retained_stages:
            for key, st in self.stages.items():
                if st["status"] not in ("ACTIVE", "PENDING"):
                    del self.stages[key]
                    self.tasks.pop(key, None)
                    attempts = self._attempts.get(key[0], [])
                    if key[1] in attempts:
                        attempts.remove(key[1])
                    if not attempts:
                        self._attempts.pop(key[0], None)
                        if key[0] not in self._job_of_stage:
                            self.stage_info.pop(key[0], None)
                            self._lineage.pop(key[0], None)
                    break
            else:
                return

    def _forget_job(self, job: dict[str, Any]) -> None:
        """A job left the store: so does what only it referred to."""
        job_id = job["jobId"]
        self.job_groups.pop(job_id, None)
        for sid in job["stageIds"]:
            jobs = self._job_of_stage.get(sid)
            if jobs is not None:
                jobs.discard(job_id)
                if not jobs:
                    del self._job_of_stage[sid]
                    if not self._attempts.get(sid):
                        self.stage_info.pop(sid, None)
                        self._lineage.pop(sid, None)

    @staticmethod
    def _evict(d: collections.OrderedDict, limit: int, finished) -> list:
        """Remove the oldest finished entries while over ``limit``; they are returned."""
        out = []
        while len(d) > limit:
            for key, value in d.items():
                if finished(value):
                    del d[key]
                    out.append(value)
                    break
            else:
                break
        return out

    def onStageSubmitted(self, ev: SparkListenerStageSubmitted) -> None:
        st = self.stages.get((ev.stageId, ev.attemptId)) or self._stage_entry(
            ev.stageId, ev.attemptId, ev.numTasks)
        st["status"] = "ACTIVE"
        st["numTasks"] = ev.numTasks
        st["submissionTime"] = ev.time
        st["_start"] = ev.time
        for job_id in self._job_of_stage.get(ev.stageId, ()):
            job = self.jobs.get(job_id)
            if job is not None and job["status"] == "RUNNING":
                job["_stages_run"].add(ev.stageId)
                job["numActiveStages"] += 1
        self.version += 1

    def onStageCompleted(self, ev: SparkListenerStageCompleted) -> None:
        st = self.stages.get((ev.stageId, ev.attemptId)) or self._stage_entry(
            ev.stageId, ev.attemptId, ev.numTasks)
        was_active = st["status"] == "ACTIVE"
        st["status"] = "FAILED" if ev.failureReason else "COMPLETE"
        st["failureReason"] = ev.failureReason
        st["completionTime"] = ev.time
        st["_end"] = ev.time
        accs = getattr(ev, "accumulables", None)
        if accs:
            st["accumulatorUpdates"] = accs
        for job_id in self._job_of_stage.get(ev.stageId, ()):
            job = self.jobs.get(job_id)
            if job is None or job["status"] != "RUNNING":
                continue
            if was_active:
                job["numActiveStages"] = max(0, job["numActiveStages"] - 1)
            if ev.failureReason:
                job["numFailedStages"] += 1
            else:
                job["numCompletedStages"] += 1
        self.version += 1

    def onTaskStart(self, ev: SparkListenerTaskStart) -> None:
        key = (ev.stageId, ev.stageAttemptId)
        st = self.stages.get(key) or self._stage_entry(ev.stageId, ev.stageAttemptId, 0)
        st["numActiveTasks"] += 1
        if st["firstTaskLaunchedTime"] is None:
            st["firstTaskLaunchedTime"] = ev.time
        ex = self.executors.get(ev.executorId)
        tasks = self.tasks[key]
        t = _TASK_TEMPLATE.copy()
        t["taskId"], t["index"], t["attempt"] = ev.taskId, ev.index, ev.attemptNumber
        t["partitionId"], t["launchTime"] = ev.partition, ev.time
        t["executorId"], t["host"] = ev.executorId, ex["hostPort"] if ex else ""
        t["speculative"] = bool(getattr(ev, "speculative", False))
        t["accumulatorUpdates"], t["executorLogs"], t["_launch"] = [], {}, ev.time
        tasks[ev.taskId] = t
        if len(tasks) > self.retained_tasks:
            self._evict(tasks, self.retained_tasks, lambda t: t["status"] != "RUNNING")
        if ex is not None:
            ex["activeTasks"] += 1
        for job in self._jobs_of(ev.stageId):
            job["numActiveTasks"] += 1
        self.version += 1

    def _jobs_of(self, stage_id: int) -> list[dict[str, Any]]:
        out = []
        for job_id in self._job_of_stage.get(stage_id, ()):
            job = self.jobs.get(job_id)
            if job is not None and job["status"] == "RUNNING":
                out.append(job)
        return out

    def onTaskEnd(self, ev: SparkListenerTaskEnd) -> None:
        key = (ev.stageId, ev.stageAttemptId)
        st = self.stages.get(key) or self._stage_entry(ev.stageId, ev.stageAttemptId, 0)
        m = ev.metrics or {}
        task = self.tasks[key].get(ev.taskId)
        if ev.successful:
            status = "SUCCESS"
        elif ev.reason.startswith("killed"):
            status = "KILLED"
        else:
            status = "FAILED"
        if task is not None:
            task["status"] = status
            task["duration"] = int(ev.duration * 1000)
            task["_metrics"] = m  # taskMetrics is built when asked (task_list)
            if not ev.successful:
                task["errorMessage"] = ev.reason
        st["numActiveTasks"] = max(0, st["numActiveTasks"] - 1)
        ex = self.executors.get(ev.executorId)
        if ex is not None:
            ex["activeTasks"] = max(0, ex["activeTasks"] - 1)
            ex["totalTasks"] += 1
            ex["totalDuration"] += int(ev.duration * 1000)
            ex["totalInputBytes"] += m.get("inputBytes", 0)
            ex["totalShuffleRead"] += (m.get("shuffleRemoteBytesRead", 0)
                                       + m.get("shuffleLocalBytesRead", 0))
            ex["totalShuffleWrite"] += m.get("shuffleWriteBytes", 0)
            rss = m.get("executorRss", 0)
            peak = ex["peakMemoryMetrics"]
            peak["ProcessTreePythonRSSMemory"] = max(peak["ProcessTreePythonRSSMemory"], rss)
        jobs = self._jobs_of(ev.stageId)
        counter = {"SUCCESS": ("numCompleteTasks", "numCompletedTasks", "completedTasks"),
                   "FAILED": ("numFailedTasks", "numFailedTasks", "failedTasks"),
                   "KILLED": ("numKilledTasks", "numKilledTasks", None)}[status]
        st[counter[0]] += 1
        if ex is not None and counter[2]:
            ex[counter[2]] += 1
        # A stage's totals include its failed and killed attempts' metrics (Spark's
        # AppStatusListener adds every ended task's); the quantiles are of successes.
        for k, v in m.items():
            if k in st and type(v) is int:
                st[k] += v
        st["shuffleReadBytes"] = st["shuffleRemoteBytesRead"] + st["shuffleLocalBytesRead"]
        if ev.successful:
            st["numCompletedIndices"] += 1
        elif status == "KILLED":
            why = ev.reason.split(":", 1)[-1].strip() or "killed"
            st["killedTasksSummary"][why] = st["killedTasksSummary"].get(why, 0) + 1
        for job in jobs:
            job["numActiveTasks"] = max(0, job["numActiveTasks"] - 1)
            job[counter[1]] += 1
            if ev.successful:
                job["numCompletedIndices"] += 1
        self.version += 1

    def onExecutorAdded(self, ev: SparkListenerExecutorAdded) -> None:
        ex = self._new_executor(ev.executorId, ev.host, ev.time)
        logs = getattr(ev, "logUrls", None) or (
            self.log_paths(ev.executorId) if self.log_paths is not None else None)
        if logs:
            ex["executorLogs"] = dict(logs)
        self.executors[ev.executorId] = ex
        self.version += 1

    def onExecutorRemoved(self, ev: SparkListenerExecutorRemoved) -> None:
        ex = self.executors.get(ev.executorId)
        if ex is not None:
            ex["isActive"] = False
            ex["removeTime"] = ev.time
            ex["removeReason"] = ev.reason
            ex["activeTasks"] = 0
            dead = [k for k, e in self.executors.items() if not e["isActive"]]
            for k in dead[:max(0, len(dead) - RETAINED_DEAD_EXECUTORS)]:
                del self.executors[k]  # Spark's spark.ui.retainedDeadExecutors (100)
        self.version += 1

    def onBlockUpdated(self, ev: SparkListenerBlockUpdated) -> None:
        if ev.storageLevel:
            self.blocks.setdefault(ev.blockId, {})[ev.executorId] = (ev.storageLevel, ev.size)
        else:
            locs = self.blocks.get(ev.blockId, {})
            locs.pop(ev.executorId, None)
            if not locs:
                self.blocks.pop(ev.blockId, None)
        self.version += 1

    def onUnpersistRDD(self, ev: SparkListenerUnpersistRDD) -> None:
        prefix = f"rdd_{ev.rddId}_"
        for b in [b for b in self.blocks if b.startswith(prefix)]:
            del self.blocks[b]
        self.version += 1

    def rdd_storage(self) -> list[dict[str, Any]]:
        return storage_info(self.blocks)

    def onOtherEvent(self, ev: Any) -> None:
        if type(ev).__name__ == "SparkListenerEventsDropped":
            self.dropped += ev.count

    # -- queries ------------------------------------------------------------------------

    def job_list(self, status: str | None = None) -> list[dict[str, Any]]:
        jobs = [self._public(j) for j in reversed(self.jobs.values())]
        if status:
            wanted = {s.upper() for s in status.split(",")}
            jobs = [j for j in jobs if j["status"] in wanted]
        return jobs

    def job(self, job_id: int) -> dict[str, Any] | None:
        j = self.jobs.get(job_id)
        return None if j is None else self._public(j)

    def stage_list(self, status: str | None = None) -> list[dict[str, Any]]:
        out = [self._public(s) for s in reversed(self.stages.values())]
        if status:
            wanted = {s.upper() for s in status.split(",")}
            out = [s for s in out if s["status"] in wanted]
        return out

    def stage_attempts(self, stage_id: int) -> list[dict[str, Any]]:
        return [self._public(self.stages[(stage_id, a)])
                for a in sorted(self._attempts.get(stage_id, ()))]

    def stage(self, stage_id: int, attempt: int, with_tasks: bool = True,
              task_status: str | None = None) -> dict[str, Any] | None:
        st = self.stages.get((stage_id, attempt))
        if st is None:
            return None
        out = self._public(st)
        if with_tasks:
            tasks = self.task_list(stage_id, attempt, length=self.retained_tasks,
                                   status=task_status)
            out["tasks"] = {str(t["taskId"]): t for t in tasks}
            out["executorSummary"] = self._executor_summary(tasks)
        return out

    def task_list(self, stage_id: int, attempt: int, offset: int = 0, length: int = 20_000,
                  sort: str = "ID", status: str | None = None) -> list[dict[str, Any]]:
        tasks = []
        for raw in list(self.tasks.get((stage_id, attempt), {}).values()):
            t = self._public(raw)
            m = raw.get("_metrics")
            if m is not None:
                t["taskMetrics"] = task_metrics_json(m)
            tasks.append(t)
        if status:
            tasks = [t for t in tasks if t["status"] == status.upper()]
        if sort in ("runtime", "-runtime"):
            tasks.sort(key=lambda t: t["duration"] or 0, reverse=sort == "-runtime")
        return tasks[offset: offset + length]

    @staticmethod
    def _executor_summary(tasks: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for t in tasks:
            e = out.setdefault(t["executorId"], {"taskTime": 0, "failedTasks": 0,
                                                 "succeededTasks": 0, "killedTasks": 0})
            e["taskTime"] += t["duration"] or 0
            key = {"SUCCESS": "succeededTasks", "FAILED": "failedTasks",
                   "KILLED": "killedTasks"}.get(t["status"])
            if key:
                e[key] += 1
        return out

    def task_summary(self, stage_id: int, attempt: int, qs: list[float]) -> dict[str, Any] | None:
        """Spark's ``TaskMetricDistributions`` over the stage attempt's successful tasks."""
        if (stage_id, attempt) not in self.stages:
            return None
        done = [t for t in self.tasks[(stage_id, attempt)].values() if t["status"] == "SUCCESS"]
        ms = [t.get("_metrics", {}) for t in done]

        def dist(name: str) -> list[float]:
            return quantiles([m.get(name, 0) for m in ms], qs)

        def dist_of(fn) -> list[float]:
            return quantiles([fn(m) for m in ms], qs)

        return {
            "quantiles": qs,
            "duration": quantiles([t["duration"] or 0 for t in done], qs),
            "executorDeserializeTime": dist("executorDeserializeTime"),
            "executorDeserializeCpuTime": dist("executorDeserializeCpuTime"),
            "executorRunTime": dist("executorRunTime"),
            "executorCpuTime": dist("executorCpuTime"),
            "resultSize": dist("resultSize"), "jvmGcTime": dist("jvmGcTime"),
            "resultSerializationTime": dist("resultSerializationTime"),
            "gettingResultTime": quantiles([0] * len(done), qs),
            "schedulerDelay": quantiles([0] * len(done), qs),
            "peakExecutionMemory": dist("peakExecutionMemory"),
            "memoryBytesSpilled": dist("memoryBytesSpilled"),
            "diskBytesSpilled": dist("diskBytesSpilled"),
            "inputMetrics": {"bytesRead": dist("inputBytes"),
                             "recordsRead": dist("inputRecords")},
            "outputMetrics": {"bytesWritten": dist("outputBytes"),
                              "recordsWritten": dist("outputRecords")},
            "shuffleReadMetrics": {
                "readBytes": dist_of(lambda m: m.get("shuffleRemoteBytesRead", 0)
                                     + m.get("shuffleLocalBytesRead", 0)),
                "readRecords": dist("shuffleReadRecords"),
                "remoteBlocksFetched": dist("shuffleRemoteBlocksFetched"),
                "localBlocksFetched": dist("shuffleLocalBlocksFetched"),
                "fetchWaitTime": dist("shuffleFetchWaitTime"),
                "remoteBytesRead": dist("shuffleRemoteBytesRead"),
                "remoteBytesReadToDisk": quantiles([0] * len(done), qs),
                "totalBlocksFetched": dist_of(lambda m: m.get("shuffleRemoteBlocksFetched", 0)
                                              + m.get("shuffleLocalBlocksFetched", 0))},
            "shuffleWriteMetrics": {"writeBytes": dist("shuffleWriteBytes"),
                                    "writeRecords": dist("shuffleWriteRecords"),
                                    "writeTime": dist("shuffleWriteTime")},
        }

    def executor_list(self, active_only: bool) -> list[dict[str, Any]]:
        return [self._public(e) for e in self.executors.values()
                if e["isActive"] or not active_only]

    def job_totals(self, job_id: int) -> dict[str, Any]:
        """Sums of the task metrics of ``job_id``'s stage attempts (per-job aggregation)."""
        job = self.jobs.get(job_id)
        out = dict.fromkeys(TASK_METRIC_NAMES, 0)
        if job is None:
            return out
        ids = set(job["stageIds"])
        for (sid, _a), st in self.stages.items():
            if sid in ids:
                for k in TASK_METRIC_NAMES:
                    out[k] += st[k]
        return out

    def application(self) -> dict[str, Any]:
        end = self.end_time
        return {
            "id": self.app_id, "name": self.app_name,
            "attempts": [{
                "startTime": spark_time(self.start_time), "endTime": spark_time(end) or
                "1969-12-31T23:59:59.999GMT", "lastUpdated": spark_time(end or time.time()),
                "duration": int(((end or time.time()) - self.start_time) * 1000),
                "sparkUser": self.spark_user, "completed": end is not None,
                "appSparkVersion": "asyncspark", "startTimeEpoch": int(self.start_time * 1000),
                "endTimeEpoch": int(end * 1000) if end else -1,
                "lastUpdatedEpoch": int((end or time.time()) * 1000)}],
        }

    # -- StatusTracker's questions ------------------------------------------------------

    def active_job_ids(self) -> list[int]:
        return sorted(j for j, d in list(self.jobs.items()) if d["status"] == "RUNNING")

    def active_stage_ids(self) -> list[int]:
        return sorted({k[0] for k, s in list(self.stages.items()) if s["status"] == "ACTIVE"})

    def job_ids_for_group(self, group: str | None) -> list[int]:
        # list() first: the blocking facade asks from another thread
        return sorted(j for j, g in list(self.job_groups.items())
                      if g == group and j in self.jobs)

    @staticmethod
    def _public(d: dict[str, Any]) -> dict[str, Any]:
        """A copy for the API: private keys left out, times as Spark writes them (kept
        as epoch seconds inside, formatted only when asked)."""
        return {k: (spark_time(v) if k in _TIME_KEYS else v) for k, v in d.items()
                if k[0] != "_"}
