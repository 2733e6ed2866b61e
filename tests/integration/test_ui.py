"""The web UI, REST API, event log and history server against real jobs: a shuffle job
with a failed and retried task, a cancelled job, a cached RDD; every page and route
through aiohttp's test client, the UI mounted in another application, the UI server on
an ephemeral port, and event log -> history server -> the same jobs JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import asyncspark
from asyncspark import JobCancelledError, TaskContext
from asyncspark.ui import ui_app
from asyncspark.ui.history import history_app


async def wait_for(predicate, limit=10.0):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def fail_first_attempt_of_partition_1(kv):
    ctx = TaskContext.get()
    if ctx.partitionId() == 1 and ctx.attemptNumber() == 0:
        raise ValueError("boom: the first attempt of partition 1 fails")
    return kv


async def get_json(client, path, status=200):
    resp = await client.get(path)
    assert resp.status == status, (path, resp.status, await resp.text())
    return await resp.json() if status == 200 else await resp.text()


async def test_every_page_and_route_after_a_retried_task_and_a_cancelled_job():
    async with asyncspark.Context("local[2]", conf={"spark.ui.enabled": "false"}) as sc:
        app = ui_app(sc)
        store = sc.status_store()
        async with TestClient(TestServer(app)) as client:
            a = f"/api/v1/applications/{sc.applicationId}"
            # 1. a shuffle job whose partition 1 fails once and is retried
            pairs = sc.parallelize(range(1000), 4).map(lambda x: (x % 7, 1))
            counts = pairs.map(fail_first_attempt_of_partition_1).reduceByKey(
                lambda x, y: x + y, 3)
            assert sorted(await counts.collect()) == [
                (k, len(range(k, 1000, 7))) for k in range(7)]
            await wait_for(lambda: store.jobs.get(0, {}).get("status") == "SUCCEEDED")

            apps = await get_json(client, "/api/v1/applications")
            assert [x["id"] for x in apps] == [sc.applicationId]
            one = await get_json(client, a)
            assert one["name"] == sc.appName
            assert one["attempts"][0]["completed"] is False
            jobs = await get_json(client, a + "/jobs")
            assert [(j["jobId"], j["status"]) for j in jobs] == [(0, "SUCCEEDED")]
            job = await get_json(client, a + "/jobs/0")
            assert job["numTasks"] == 7
            assert job["numCompletedTasks"] == 7
            assert job["numFailedTasks"] == 1
            assert job["stageIds"] == [0, 1]
            assert await get_json(client, a + "/jobs?status=running") == []
            assert len(await get_json(client, a + "/jobs?status=succeeded")) == 1
            assert "unknown status" in await get_json(client, a + "/jobs?status=bogus", 400)
            assert "unknown job" in await get_json(client, a + "/jobs/99", 404)
            assert "no such app" in await get_json(client, "/api/v1/applications/x/jobs", 404)

            stages = await get_json(client, a + "/stages")
            assert {(s["stageId"], s["status"]) for s in stages} == {
                (0, "COMPLETE"), (1, "COMPLETE")}
            assert await get_json(client, a + "/stages?status=active") == []
            (map_stage,) = await get_json(client, a + "/stages/0")
            assert map_stage["numFailedTasks"] == 1
            assert map_stage["numCompleteTasks"] == 4
            assert map_stage["shuffleWriteBytes"] > 0
            assert map_stage["shuffleWriteRecords"] == 4 * 7  # combined map-side
            assert map_stage["executorCpuTime"] > 0
            tasks = map_stage["tasks"].values()
            failed = [t for t in tasks if t["status"] == "FAILED"]
            assert len(failed) == 1
            assert "boom" in failed[0]["errorMessage"]
            retried = [t for t in tasks if t["index"] == failed[0]["index"]
                       and t["status"] == "SUCCESS"]
            assert retried
            assert retried[0]["attempt"] == 1
            reduce_stage = await get_json(client, a + "/stages/1/0")
            assert reduce_stage["shuffleReadRecords"] == 4 * 7
            assert reduce_stage["shuffleReadBytes"] == map_stage["shuffleWriteBytes"]
            summary = await get_json(client, a + "/stages/0/0/taskSummary")
            assert summary["quantiles"] == [0.0, 0.25, 0.5, 0.75, 1.0]
            assert len(summary["executorRunTime"]) == 5
            w = summary["shuffleWriteMetrics"]["writeRecords"]
            assert w == [7.0] * 5
            custom = await get_json(client, a + "/stages/0/0/taskSummary?quantiles=0.5")
            assert custom["quantiles"] == [0.5]
            assert "between 0 and 1" in await get_json(
                client, a + "/stages/0/0/taskSummary?quantiles=2", 400)
            task_list = await get_json(client, a + "/stages/0/0/taskList?length=2")
            failed_tasks = await get_json(client, a + "/stages/0/0/taskList?status=failed")
            assert [t["status"] for t in failed_tasks] == ["FAILED"]
            assert failed_tasks[0]["taskMetrics"]["executorCpuTime"] > 0  # a failure reports too
            assert "unknown status" in await get_json(
                client, a + "/stages/0/0/taskList?status=bogus", 400)
            assert len(task_list) == 2
            assert task_list[0]["taskMetrics"]["shuffleWriteMetrics"]["bytesWritten"] >= 0
            assert "unknown attempt" in await get_json(client, a + "/stages/0/5", 404)
            only_failed = await get_json(client, a + "/stages/0/0?taskStatus=failed")
            assert [t["status"] for t in only_failed["tasks"].values()] == ["FAILED"]
            detailed = await get_json(client, a + "/stages?details=true&taskStatus=SUCCESS")
            assert all(t["status"] == "SUCCESS" for s in detailed for t in s["tasks"].values())
            assert "unknown taskStatus" in await get_json(
                client, a + "/stages/0/0?taskStatus=nope", 400)

            # 2. a cached RDD: the storage tab
            cached = sc.parallelize(range(100), 2).cache()
            assert await cached.count() == 100
            await wait_for(lambda: store.jobs.get(1, {}).get("status") == "SUCCEEDED")
            rdds = await get_json(client, a + "/storage/rdd")
            assert [(r["id"], r["numCachedPartitions"]) for r in rdds] == [(cached.id(), 2)]
            rdd = await get_json(client, a + f"/storage/rdd/{cached.id()}")
            assert rdd["memoryUsed"] > 0
            assert len(rdd["partitions"]) == 2
            # the same from the BlockUpdated events (what the history server shows)
            await wait_for(lambda: len(store.rdd_storage()) == 1)
            assert store.rdd_storage()[0]["numCachedPartitions"] == 2
            seen: list = []

            class Unpersisted:
                def onUnpersistRDD(self, ev):
                    seen.append(ev.rddId)

            sc.addSparkListener(Unpersisted())
            cached.unpersist()
            await wait_for(lambda: seen == [cached.id()])
            await wait_for(lambda: store.rdd_storage() == [])
            cached.cache()
            assert await cached.count() == 100  # cached again for the pages below

            # 3. a cancelled job
            started = asyncio.Event()

            class Started:
                def onTaskStart(self, ev):
                    started.set()

            sc.addSparkListener(Started())
            slow = asyncio.ensure_future(
                sc.parallelize(range(2), 2).map(lambda x: time.sleep(60)).collect())
            await asyncio.wait_for(started.wait(), 20)
            await wait_for(lambda: 3 in store.jobs)  # jobs 0-2 ran above
            sc.cancelJob(3, "the test cancels it")
            with pytest.raises(JobCancelledError):
                await slow
            await wait_for(lambda: store.jobs[3]["status"] == "FAILED")
            job2 = await get_json(client, a + "/jobs/3")
            assert job2["status"] == "FAILED"
            assert "cancel" in job2["errorMessage"]
            assert [j["jobId"] for j in await get_json(client, a + "/jobs?status=failed")] == [3]
            tracker = sc.statusTracker()
            assert tracker.getJobInfo(3).status == "FAILED"
            assert tracker.getJobInfo(0) == asyncspark.ui.tracker.SparkJobInfo(
                0, [0, 1], "SUCCEEDED")
            assert tracker.getStageInfo(0).numFailedTasks == 1
            assert tracker.getActiveJobsIds() == []

            execs = await get_json(client, a + "/executors")
            assert {e["id"] for e in execs} == {"driver", "0", "1"}
            assert sum(e["completedTasks"] for e in execs) >= 7
            assert sum(e["failedTasks"] for e in execs) == 1
            every = await get_json(client, a + "/allexecutors")
            assert len(every) >= 3
            env = await get_json(client, a + "/environment")
            assert ["spark.ui.enabled", "false"] in env["sparkProperties"]
            assert env["runtime"]["pythonVersion"]
            assert (await get_json(client, "/api/v1/version"))["spark"]

            # 4. every page renders, with what it must show
            for path, needle in [
                    ("/jobs/", "Completed Jobs (3)"), ("/jobs/job/?id=0", "<svg"),
                    ("/stages/", "Completed Stages"),
                    ("/stages/stage/?id=0&attempt=0", "Summary Metrics for 4 Completed"),
                    ("/stages/stage/?id=0&attempt=0", "boom"),
                    ("/stages/stage/?id=1&attempt=0", "(reads a shuffle)"),
                    ("/stages/stage/?id=0&attempt=0", "ParallelCollectionRDD [0]"),
                    ("/executors/", "Executor ID"), ("/storage/", f"rdd_{cached.id()}"),
                    ("/environment/", "spark.ui.enabled")]:
                resp = await client.get(path)
                text = await resp.text()
                assert resp.status == 200, path
                assert needle in text, (path, needle)
                assert "http://" not in text
                assert "https://" not in text
            resp = await client.get("/", allow_redirects=False)
            assert resp.status == 302
            assert (await client.get("/jobs/job/?id=77")).status == 404
            log_page = await client.get("/logs/?executor=0&kind=stderr")
            assert log_page.status == 200  # the executor's log file

            # 5. live updates and metrics
            resp = await client.get("/events")
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            line = await asyncio.wait_for(resp.content.readline(), 5)
            assert line.startswith(b"data: ")
            resp.close()
            metrics = await (await client.get("/metrics")).text()
            wanted = f'asyncspark_jobs{{application="{sc.applicationId}",status="succeeded"}} 3'
            assert wanted in metrics
            assert "asyncspark_executors_alive" in metrics
            assert "asyncspark_scheduler_queue_depth" in metrics


async def test_mounted_as_a_subapp():
    async with asyncspark.Context("local[1]") as sc:
        async def service(request):
            return web.Response(text="service")

        outer = web.Application()
        outer.router.add_get("/", service)
        outer.add_subapp("/spark", ui_app(sc))
        async with TestClient(TestServer(outer)) as client:
            assert await sc.parallelize([1, 2, 3]).count() == 3
            store = sc.status_store()
            await wait_for(lambda: store.jobs.get(0, {}).get("status") == "SUCCEEDED")
            jobs = await get_json(client, f"/spark/api/v1/applications/{sc.applicationId}/jobs")
            assert jobs[0]["status"] == "SUCCEEDED"
            assert jobs[0]["name"].startswith("count at test_ui.py:")  # Spark's call site
            text = await (await client.get("/spark/jobs/")).text()
            assert "href='../jobs/job/?id=0'" in text
            resp = await client.get("/spark/jobs/job/?id=0")
            assert resp.status == 200
            # accumulator values per stage
            acc = sc.accumulator(0)
            await sc.parallelize(range(10), 2).foreach(lambda x: acc.add(x))
            assert acc.value == 45
            await wait_for(lambda: store.jobs.get(1, {}).get("status") == "SUCCEEDED")
            stage_id = store.jobs[1]["stageIds"][0]
            stage = await get_json(
                client, f"/spark/api/v1/applications/{sc.applicationId}/stages/{stage_id}/0")
            assert stage["accumulatorUpdates"] == [{"id": acc.aid, "name": None,
                                                    "value": "45"}]
            page = await (await client.get(f"/spark/stages/stage/?id={stage_id}")).text()
            assert "<h3>Accumulators</h3>" in page


async def test_ui_server_event_log_and_history_give_the_same_jobs(tmp_path):
    conf = {"spark.ui.enabled": "true", "spark.ui.port": "0",
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": str(tmp_path)}
    async with asyncspark.Context("local[2]", conf=conf) as sc:
        url = sc.uiWebUrl
        assert url
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0")
        await sc.parallelize(range(100), 4).map(lambda x: (x % 5, x)).groupByKey().count()
        await sc.parallelize(range(10), 2).sum()
        app_id = sc.applicationId
        assert (tmp_path / f"{app_id}.inprogress").exists()
        store = sc.status_store()
        await wait_for(lambda: store.jobs.get(1, {}).get("status") == "SUCCEEDED")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/v1/applications/{app_id}/jobs") as resp:
                live_jobs = await resp.json()
            async with http.get(f"{url}/api/v1/applications/{app_id}/stages/0/0") as resp:
                live_stage = await resp.json()
        # the history server shows a running application too (its log has a finished
        # job within 0.1 s)
        async with TestClient(TestServer(history_app(str(tmp_path)))) as client:
            (running,) = await get_json(client, "/api/v1/applications")
            assert running["id"] == app_id
            assert running["attempts"][0]["completed"] is False
            deadline = time.monotonic() + 2.0
            while True:
                jobs = await get_json(client, f"/api/v1/applications/{app_id}/jobs")
                statuses = [j["status"] for j in jobs]
                if statuses == ["SUCCEEDED", "SUCCEEDED"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert statuses == ["SUCCEEDED", "SUCCEEDED"]
    assert sc.uiWebUrl is None  # stopped
    assert os.listdir(tmp_path) == [app_id]  # renamed when the application ended
    names = [json.loads(line)["Event"]
             for line in (tmp_path / app_id).read_text().splitlines()]
    assert names[:3] == ["SparkListenerLogStart", "SparkListenerApplicationStart",
                         "SparkListenerEnvironmentUpdate"]
    assert names[-1] == "SparkListenerApplicationEnd"
    assert "SparkListenerTaskEnd" in names
    assert "SparkListenerExecutorAdded" in names
    async with TestClient(TestServer(history_app(str(tmp_path)))) as client:
        apps = await get_json(client, "/api/v1/applications")
        assert [x["id"] for x in apps] == [app_id]
        assert apps[0]["attempts"][0]["completed"] is True
        assert await get_json(client, f"/api/v1/applications/{app_id}/jobs") == live_jobs
        assert await get_json(client, f"/api/v1/applications/{app_id}/stages/0/0") == \
            live_stage
        text = await (await client.get(f"/history/{app_id}/jobs/")).text()
        assert "Completed Jobs (2)" in text
        index = await (await client.get("/")).text()
        assert f"history/{app_id}/jobs/" in index


async def test_nothing_listens_unless_asked_and_logs_go_to_executor_files(caplog):
    async with asyncspark.Context("local[1]") as sc:
        assert sc.uiWebUrl is None  # not interactive: no UI by default
        assert not sc.listener_bus.active  # the scheduler builds no events
        with caplog.at_level(logging.INFO, "asyncspark"):
            sc.setLogLevel("INFO")
            assert await sc.parallelize(range(4), 2).count() == 4
        text = caplog.text
        assert "Got job 0 (count at test_ui.py:" in text
        assert "with 2 output partitions" in text
        assert "Job 0 finished: count at test_ui.py:" in text
        assert "ResultStage(0, job 0) (2 tasks) finished in" in text
        path = sc._backend.executor_log_path("0")
        assert path.startswith(sc._backend.local_root)
        logging.getLogger("asyncspark").setLevel(logging.NOTSET)


def test_blocking_facade_ui_answers_from_another_loop():
    from asyncspark.sync import SparkContext

    with SparkContext("local[1]", "facade") as ssc:
        app = ui_app(ssc)
        assert ssc.parallelize(range(10), 2).sum() == 45

        async def fetch():
            async with TestClient(TestServer(app)) as client:
                store = ssc._ctx.status_store()
                await wait_for(lambda: store.jobs.get(0, {}).get("status") == "SUCCEEDED")
                jobs = await get_json(
                    client, f"/api/v1/applications/{ssc._ctx.applicationId}/jobs")
                page = await (await client.get("/stages/stage/?id=0&attempt=0")).text()
                return jobs, page

        jobs, page = asyncio.run(fetch())
        assert jobs[0]["status"] == "SUCCEEDED"
        assert "Summary Metrics for 2 Completed Tasks" in page


async def test_history_command_serves_a_directory(tmp_path):
    conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(tmp_path)}
    async with asyncspark.Context("local[1]", conf=conf) as sc:
        await sc.parallelize([1, 2]).count()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncspark.cli", "history", str(tmp_path), "--port", "0",
        stdout=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.strip().rsplit(" at ", 1)[1]
        async with aiohttp.ClientSession() as http, http.get(
                f"{url}api/v1/applications/{sc.applicationId}/jobs") as resp:
            jobs = await resp.json()
        assert [j["status"] for j in jobs] == ["SUCCEEDED"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncspark.cli", "history", str(tmp_path / "missing"),
        stderr=asyncio.subprocess.PIPE)
    _, err = await bad.communicate()
    assert bad.returncode == 2
    assert b"is not a directory" in err


async def test_progress_bar_draws_a_long_stage_and_clears_it():
    from asyncspark.progress import ConsoleProgressBar

    async with asyncspark.Context("local[2]") as sc:
        out = io.StringIO()
        sc.addSparkListener(ConsoleProgressBar(out, width=60))
        await sc.parallelize(range(4), 4).map(lambda x: time.sleep(1.2)).collect()
        await asyncio.sleep(0.05)
    drawn = out.getvalue()
    # drawn while no task had ended yet (the timer), then cleared at the stage's end
    assert "\r[Stage 0:>" in drawn
    assert "(0 + 2) / 4]" in drawn
    assert drawn.endswith("\r" + " " * 60 + "\r")


def test_progress_bar_and_log_level_from_the_blocking_facade():
    from asyncspark.progress import ConsoleProgressBar
    from asyncspark.sync import SparkContext

    out = io.StringIO()
    with SparkContext("local[2]", "facade-progress") as ssc:
        ssc.setLogLevel("WARN")  # PySpark's call, through the facade
        ssc.addSparkListener(ConsoleProgressBar(out, width=50))
        assert ssc.parallelize(range(2), 2).map(lambda x: time.sleep(1.0) or x).sum() == 1
        time.sleep(0.05)
        assert ssc.uiWebUrl is None
    logging.getLogger("asyncspark").setLevel(logging.NOTSET)
    assert "(0 + 2) / 2]" in out.getvalue()


def test_observability_benchmark_quick_json(tmp_path):
    pytest.importorskip("numpy", reason="the benchmark generates its input with numpy")
    from test_examples_bench import ROOT, run_script

    out = run_script(ROOT / "benchmarks" / "observability.py", "--quick", "--json",
                     "--data", tmp_path)
    report = json.loads(out)  # one JSON object on stdout (the progress bar is on stderr)
    assert report["quick"] is True
    for key in ("trivial_p50_ms", "trivial_mean_ms", "one_context_p50_ms", "wordcount_s"):
        assert report[key]["off"] > 0
        assert report[key]["on"] > 0
        assert isinstance(report[key]["overhead_pct"], float)


async def test_an_unwritable_event_log_dir_fails_start_with_nothing_left(tmp_path):
    from asyncspark.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sc = asyncspark.Context("local[1]", conf={"spark.eventLog.enabled": "true",
                                              "spark.eventLog.dir": str(blocker / "logs")})
    with pytest.raises(ConfigError, match=r"spark\.eventLog\.dir: cannot write the event log"):
        await sc.start()
    assert sc._backend is None
    await sc.stop()
