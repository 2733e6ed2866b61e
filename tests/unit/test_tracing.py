"""Per-task tracing: the Tracer's bookkeeping (no processes), and a traced context's
stamps in causal order across the driver and executor processes."""

from __future__ import annotations

import itertools

import pytest

import asyncspark
from asyncspark.conf import Config
from asyncspark.errors import ConfigError
from asyncspark.scheduler.trace import PHASES, STAMPS, Tracer, summarize


def test_phases_join_consecutive_stamps():
    assert [name for name, _, _ in PHASES] == [
        f"{a} -> {b}" for a, b in itertools.pairwise(STAMPS)]


def test_conf_key():
    assert Config.from_items([]).trace_tasks is False
    assert Config.from_items([("asyncspark.trace.tasks", "true")]).trace_tasks is True
    with pytest.raises(ConfigError, match=r"asyncspark\.trace\.tasks"):
        Config.from_items([("asyncspark.trace.tasks", "sometimes")])


def _traced_job(tracer: Tracer, job_id: int, task_ids: list[int], t0: int) -> None:
    tracer.job_submitted(job_id, t0, t0 + 10)
    tracer._jobs[job_id][2] = t0 + 30  # stage_created, at a known time
    tracer.launched(task_ids)
    for task_id in task_ids:
        tracer._launched[task_id] = t0 + 100
        tracer.task_ended(job_id, task_id, [t0 + 200, t0 + 210, t0 + 250], t0 + 400)


def test_records_of_delivered_jobs_only():
    tracer = Tracer()
    _traced_job(tracer, 0, [0, 1], 1000)
    _traced_job(tracer, 1, [2], 5000)
    assert not tracer.records  # nothing until a job's result is delivered
    tracer.job_ended(0, 1500)
    tracer.job_ended(1, None)  # failed or cancelled: no record
    assert list(tracer.records) == [
        (1000, 1010, 1030, 1100, 1200, 1210, 1250, 1400, 1500)] * 2
    assert not tracer._jobs
    assert not tracer._launched


def test_tasks_without_executor_stamps_are_left_out():
    tracer = Tracer()
    tracer.job_submitted(0, 0, 1)
    tracer.stage_created(0)
    tracer.launched([0])
    tracer.task_ended(0, 0, None, 10)  # e.g. killed before it started
    tracer.task_ended(0, 7, [1, 2, 3], 10)  # never launched here
    tracer.job_ended(0, 20)
    assert not tracer.records


def test_summarize_medians_in_microseconds():
    records = [(0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000 + extra)
               for extra in (0, 3000, 6000)]
    s = summarize(records)
    assert s["tasks"] == 3
    assert s["phases_us"]["submit -> serialized"] == 1.0
    assert s["phases_us"]["status_received -> delivered"] == 4.0
    assert s["total_us"] == 11.0
    assert summarize([]) == {"tasks": 0, "phases_us": {}, "total_us": None}


def test_tracing_off_keeps_no_tracer():
    sc = asyncspark.Context("local[1]")
    assert sc._tracer is None


async def test_traced_context_stamps_every_task_in_order():
    conf = {"asyncspark.trace.tasks": "true"}
    async with asyncspark.Context("local[2]", conf=conf) as sc:
        assert await sc.parallelize(range(20), 5).count() == 20
        assert await sc.parallelize([1], 1).map(lambda x: x + 1).collect() == [2]
        records = list(sc._tracer.records)
        waits = list(sc._tracer.queue_waits)
    assert len(records) == 6
    for r in records:
        # Driver and executors read one CLOCK_MONOTONIC: the stamps are causally ordered.
        assert list(r) == sorted(r), r
    assert waits
    assert all(w >= 0 for w in waits)
