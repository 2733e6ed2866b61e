"""The status store fed with listener events (no processes): job, stage and task states
as Spark's REST API shows them, quantiles, per-job totals, retention bounds, skipped
stages, killed tasks, executors, storage; and the StatusTracker on it."""

from __future__ import annotations

from asyncspark.listener import (
    SparkListenerBlockUpdated,
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
from asyncspark.ui.store import StatusStore, quantiles, spark_time
from asyncspark.ui.tracker import SparkJobInfo, SparkStageInfo, StatusTracker


def infos(*stages):
    return [{"stageId": s, "name": f"stage {s}", "rddId": s, "numTasks": n,
             "parentIds": parents} for s, n, parents in stages]


def run_job(store, job_id, stage_ids, stage_infos, tasks, group=None, result="JobSucceeded",
            t=100.0):
    """tasks: [(stage, attempt, task id, index, executor, ok, metrics)]"""
    props = {"spark.jobGroup.id": group} if group else {}
    store.onJobStart(SparkListenerJobStart(job_id, t, stage_ids, props, stage_infos))
    for s in sorted({x[0] for x in tasks}):
        n = next(i["numTasks"] for i in stage_infos if i["stageId"] == s)
        store.onStageSubmitted(SparkListenerStageSubmitted(s, 0, n, t + 1))
        for st, att, tid, idx, ex, ok, m in [x for x in tasks if x[0] == s]:
            store.onTaskStart(SparkListenerTaskStart(st, att, tid, idx, idx, 0, ex, t + 1))
            store.onTaskEnd(SparkListenerTaskEnd(
                st, att, tid, idx, idx, ex, ok, "Success" if ok else "ValueError: boom",
                0.01 * (tid + 1), t + 2, m))
        store.onStageCompleted(SparkListenerStageCompleted(s, 0, n, t + 3))
    store.onJobEnd(SparkListenerJobEnd(job_id, t + 4, result))


def test_a_two_stage_job_with_a_failed_task():
    store = StatusStore("app-1", "demo")
    store.onExecutorAdded(SparkListenerExecutorAdded("0", "h", 1.0))
    tasks = [(0, 0, 0, 0, "0", True, {"shuffleWriteBytes": 10, "executorRunTime": 5}),
             (0, 0, 1, 1, "0", False, {}),
             (0, 0, 2, 1, "0", True, {"shuffleWriteBytes": 30, "executorRunTime": 7}),
             (1, 0, 3, 0, "0", True, {"shuffleLocalBytesRead": 40, "executorRunTime": 1})]
    run_job(store, 0, [0, 1], infos((0, 2, []), (1, 1, [0])), tasks)
    job = store.job(0)
    assert job["status"] == "SUCCEEDED"
    assert job["submissionTime"] == spark_time(100.0) == "1970-01-01T00:01:40.000GMT"
    assert (job["numTasks"], job["numCompletedTasks"], job["numFailedTasks"]) == (3, 3, 1)
    assert job["numCompletedStages"] == 2
    assert job["numActiveTasks"] == 0
    st = store.stage(0, 0)
    assert st["status"] == "COMPLETE"
    assert st["numCompleteTasks"] == 2
    assert st["numFailedTasks"] == 1
    assert st["shuffleWriteBytes"] == 40  # successful tasks only
    assert st["tasks"]["1"]["status"] == "FAILED"
    assert st["tasks"]["1"]["errorMessage"] == "ValueError: boom"
    assert st["executorSummary"]["0"]["failedTasks"] == 1
    assert store.stage(1, 0)["shuffleReadBytes"] == 40
    summary = store.task_summary(0, 0, [0.0, 0.5, 1.0])
    assert summary["executorRunTime"] == [5.0, 7.0, 7.0]
    assert summary["shuffleWriteMetrics"]["writeBytes"] == [10.0, 30.0, 30.0]
    totals = store.job_totals(0)
    assert totals["executorRunTime"] == 13
    ex = store.executors["0"]
    assert (ex["completedTasks"], ex["failedTasks"], ex["totalTasks"]) == (3, 1, 4)
    assert ex["totalShuffleWrite"] == 40
    assert store.job_list("FAILED") == []


def test_skipped_stage_killed_task_and_failed_job():
    store = StatusStore("app")
    # job 0 runs stage 0 (map) and 1; job 1 reuses stage 0's output: stage 2 only
    run_job(store, 0, [0, 1], infos((0, 1, []), (1, 1, [0])),
            [(0, 0, 0, 0, "0", True, {}), (1, 0, 1, 0, "0", True, {})])
    store.onJobStart(SparkListenerJobStart(1, 200.0, [0, 2], {}, infos((0, 1, []),
                                                                       (2, 2, [0]))))
    store.onStageSubmitted(SparkListenerStageSubmitted(2, 0, 2, 201.0))
    store.onTaskStart(SparkListenerTaskStart(2, 0, 5, 0, 0, 0, "0", 201.0))
    store.onTaskStart(SparkListenerTaskStart(2, 0, 6, 1, 1, 0, "0", 201.0))
    assert store.active_stage_ids() == [2]
    assert store.job(1)["numActiveTasks"] == 2
    store.onTaskEnd(SparkListenerTaskEnd(2, 0, 5, 0, 0, "0", False,
                                         "killed: task killed: job cancelled", 1.0, 202.0))
    store.onJobEnd(SparkListenerJobEnd(1, 203.0, "JobFailed: JobCancelledError: cancelled"))
    job = store.job(1)
    assert job["status"] == "FAILED"
    assert job["errorMessage"] == "JobCancelledError: cancelled"
    assert job["numSkippedStages"] == 1  # stage 0: its output existed (Spark: skipped)
    st = store.stage(2, 0)
    assert st["status"] == "FAILED"
    assert st["numKilledTasks"] == 1
    assert st["killedTasksSummary"] == {"task killed: job cancelled": 1}
    assert store.active_job_ids() == []


def test_never_run_stage_is_skipped():
    store = StatusStore("app")
    store.onJobStart(SparkListenerJobStart(0, 1.0, [0, 1], {}, infos((0, 4, []), (1, 2, [0]))))
    store.onStageSubmitted(SparkListenerStageSubmitted(1, 0, 2, 2.0))
    store.onStageCompleted(SparkListenerStageCompleted(1, 0, 2, 3.0))
    store.onJobEnd(SparkListenerJobEnd(0, 4.0, "JobSucceeded"))
    job = store.job(0)
    assert job["numSkippedStages"] == 1
    assert job["numSkippedTasks"] == 4
    assert store.stage(0, 0, with_tasks=False)["status"] == "SKIPPED"
    assert [s["stageId"] for s in store.stage_list("SKIPPED")] == [0]


def test_retention_drops_the_oldest_finished_first():
    store = StatusStore("app", retained_jobs=2, retained_stages=3, retained_tasks=2)
    for j in range(4):
        run_job(store, j, [j], infos((j, 3, [])),
                [(j, 0, 10 * j + i, i, "0", True, {}) for i in range(3)])
    assert list(store.jobs) == [2, 3]
    assert [k[0] for k in store.stages] == [1, 2, 3]
    assert len(store.tasks[(3, 0)]) == 2  # per stage attempt
    assert store.stage(3, 0)["numCompleteTasks"] == 3  # the aggregates stay
    # a running job is never evicted
    store.onJobStart(SparkListenerJobStart(9, 1.0, [], {}, []))
    store.onJobStart(SparkListenerJobStart(10, 1.0, [], {}, []))
    store.onJobStart(SparkListenerJobStart(11, 1.0, [], {}, []))
    assert 9 in store.jobs
    assert 10 in store.jobs


def test_quantiles_nearest_rank():
    assert quantiles([], [0.5]) == []
    assert quantiles([3, 1, 2, 5, 4], [0.0, 0.25, 0.5, 0.75, 1.0]) == [1, 2, 3, 4, 5]
    assert quantiles([7], [0.0, 1.0]) == [7, 7]


def test_executors_and_storage():
    store = StatusStore("app")
    store.log_paths = lambda eid: {"stderr": f"/logs/executor-{eid}.log"}
    store.onExecutorAdded(SparkListenerExecutorAdded("3", "h", 1.0))
    store.onExecutorRemoved(SparkListenerExecutorRemoved("3", "killed by the test", 2.0))
    (ex,) = [e for e in store.executor_list(active_only=False) if e["id"] == "3"]
    assert ex["isActive"] is False
    assert ex["removeReason"] == "killed by the test"
    assert ex["executorLogs"] == {"stderr": "/logs/executor-3.log"}
    assert [e["id"] for e in store.executor_list(active_only=True)] == ["driver"]
    for split in (0, 1):
        store.onBlockUpdated(SparkListenerBlockUpdated(f"rdd_4_{split}", "3", "memory", 100,
                                                       1.0))
    store.onBlockUpdated(SparkListenerBlockUpdated("rdd_5_0", "3", "disk", 7, 1.0))
    (r4, r5) = store.rdd_storage()
    assert (r4["id"], r4["numCachedPartitions"], r4["memoryUsed"]) == (4, 2, 200)
    assert (r5["diskUsed"], r5["storageLevel"]) == (7, "disk")
    store.onBlockUpdated(SparkListenerBlockUpdated("rdd_5_0", "3", "", 0, 2.0))
    store.onUnpersistRDD(SparkListenerUnpersistRDD(4, 3.0))
    assert store.rdd_storage() == []


def test_status_tracker():
    store = StatusStore("app")
    run_job(store, 0, [0], infos((0, 2, [])), [(0, 0, 0, 0, "0", True, {}),
                                               (0, 0, 1, 1, "0", False, {})], group="g")
    store.onJobStart(SparkListenerJobStart(1, 1.0, [1], {"spark.jobGroup.id": "g"},
                                           infos((1, 1, []))))
    tracker = StatusTracker(store, {1: "g", 2: None})  # job 2: submitted, not yet seen
    assert tracker.getJobIdsForGroup("g") == [0, 1]
    assert tracker.getJobIdsForGroup(None) == [2]
    assert tracker.getActiveJobsIds() == [1, 2]
    assert tracker.getJobInfo(0) == SparkJobInfo(0, [0], "SUCCEEDED")
    assert tracker.getJobInfo(2) == SparkJobInfo(2, [], "RUNNING")
    assert tracker.getJobInfo(7) is None
    assert tracker.getStageInfo(0) == SparkStageInfo(0, 0, "stage 0", 2, 0, 1, 1)
    assert tracker.getStageInfo(5) is None
    assert tracker.getActiveStageIds() == []


def test_evicted_jobs_take_their_bookkeeping_with_them():
    store = StatusStore("app", retained_jobs=3, retained_stages=3)
    for j in range(50):
        run_job(store, j, [j], infos((j, 1, [])), [(j, 0, j, 0, "0", True, {})],
                group=f"g{j}")
    assert len(store.jobs) == 3
    assert len(store.stages) == 3
    assert len(store.job_groups) == 3
    assert len(store.stage_info) <= 4
    assert len(store._job_of_stage) <= 4
    for i in range(150):
        store.onExecutorAdded(SparkListenerExecutorAdded(str(i), "h", 1.0))
        store.onExecutorRemoved(SparkListenerExecutorRemoved(str(i), "lost", 2.0))
    assert len([e for e in store.executors.values() if not e["isActive"]]) == 100
