"""Every task metric of issue 12 item 3 is measured, not 0 by construction: one context
(2 executors, a 256 KiB shuffle memory budget, blocks of the other executor fetched
over the network) runs jobs that force each one (a spilling
shuffle read locally and remotely, a big closure, a big result, a collection of cyclic
garbage, text input and output, an accumulator, a task that fails after working), and
the listener events, the stage totals and the task quantiles show them."""

from __future__ import annotations

import gc
import time

import asyncspark
from asyncspark import TaskContext


def busy(ms: float) -> None:
    end = time.thread_time() + ms / 1000
    while time.thread_time() < end:
        pass


def make_cyclic_garbage(x):
    for _ in range(3):
        junk = []
        for i in range(100_000):
            a: list = [i]
            a.append(a)  # a cycle: only the collector frees it
            junk.append(a)
        del junk
        gc.collect()
    return x


def work_then_fail_once(x):
    busy(30)
    if TaskContext.get().attemptNumber() == 0:
        raise ValueError("the first attempt fails after 30 ms of work")
    return x


class Events:
    def __init__(self):
        self.task_ends = []

    def onTaskEnd(self, ev):
        self.task_ends.append(ev)


async def test_every_metric_is_measured(tmp_path):
    # localRead off: blocks of the other executor (same host) are fetched as a remote
    # host's would be, its own read from its files
    conf = {"spark.ui.enabled": "false", "asyncspark.shuffle.memoryBudget": "256k",
            "asyncspark.shuffle.localRead": "false"}
    async with asyncspark.Context("local[2]", conf=conf) as sc:
        events = Events()
        sc.addSparkListener(events)
        store = sc.status_store()

        def ends(job_stages):
            return [e for e in events.task_ends if e.stageId in job_stages]

        async def run(coro):
            before = set(store.stages)
            result = await coro
            sc.listener_bus.flush()  # the job's events, posted before its result came
            return result, {k[0] for k in store.stages if k not in before}

        # 1. A spilling shuffle read by both executors (local and remote blocks), its
        # map tasks slow enough that both executors run some.
        def slow_pairs(it):
            busy(100)
            for x in it:
                yield x % 400, "v" * 500 + str(x)

        grouped = sc.parallelize(range(16_000), 4).mapPartitions(slow_pairs).groupByKey(4)
        out, stages = await run(grouped.mapValues(len).collect())
        assert sorted(out) == [(k, 40) for k in range(400)]
        m = {k: sum(e.metrics.get(k, 0) for e in ends(stages)) for k in (
            "shuffleWriteBytes", "shuffleWriteRecords", "shuffleWriteTime",
            "shuffleLocalBytesRead", "shuffleLocalBlocksFetched", "shuffleRemoteBytesRead",
            "shuffleRemoteBlocksFetched", "shuffleReadRecords", "memoryBytesSpilled",
            "diskBytesSpilled", "peakExecutionMemory", "executorRunTime", "executorCpuTime",
            "resultSize", "executorRss", "shuffleFetchWaitTime")}
        assert m["shuffleWriteRecords"] == m["shuffleReadRecords"] == 16_000
        for k, v in m.items():
            assert v > 0, (k, m)
        assert m["memoryBytesSpilled"] >= 256 << 10  # spilled past the budget, map and reduce
        assert m["executorRunTime"] >= 4 * 100  # ms: the map tasks' busy time
        map_stage = min(stages)
        summary = store.task_summary(map_stage, 0, [0.0, 0.5, 1.0])
        assert summary["executorRunTime"][0] >= 100
        assert summary["diskBytesSpilled"][2] > 0
        assert store.stages[(map_stage, 0)]["memoryBytesSpilled"] > 0
        # the reduce side spilled too (its groupByKey merger within 256 KiB)
        reduce_ends = [e for e in ends(stages) if e.stageId != map_stage]
        assert sum(e.metrics.get("diskBytesSpilled", 0) for e in reduce_ends) > 0
        job_id = max(store.jobs)
        assert store.job_totals(job_id)["shuffleWriteBytes"] == m["shuffleWriteBytes"]

        # 2. A closure worth deserializing (ms), a result worth serializing (ms), the
        # time in the cyclic collector.
        big = [(i, str(i)) for i in range(300_000)]
        _, stages = await run(sc.parallelize([0, 1], 2).map(
            lambda x: len(big) + x).collect())
        assert max(e.metrics.get("executorDeserializeTime", 0) for e in ends(stages)) >= 1
        assert min(e.metrics.get("executorDeserializeCpuTime", 0) for e in ends(stages)) > 0
        _, stages = await run(sc.parallelize([0], 1).map(
            lambda x: list(range(2_000_000))).collect())
        (end,) = ends(stages)
        assert end.metrics.get("resultSerializationTime", 0) >= 1
        assert end.metrics["resultSize"] > 2_000_000
        _, stages = await run(sc.parallelize([0], 1).map(make_cyclic_garbage).collect())
        (end,) = ends(stages)
        assert end.metrics.get("jvmGcTime", 0) >= 1
        assert store.task_summary(min(stages), 0, [1.0])["jvmGcTime"] == [
            end.metrics["jvmGcTime"]]

        # 3. Text input and output, and an accumulator's value per stage.
        src = tmp_path / "in.txt"
        src.write_text("".join(f"line {i}\n" for i in range(1000)))
        acc = sc.accumulator(0)

        def add(line):
            acc.add(1)
            return line

        _, stages = await run(sc.textFile(str(src), 2).map(add).saveAsTextFile(
            str(tmp_path / "out")))
        got = {k: sum(e.metrics.get(k, 0) for e in ends(stages)) for k in (
            "inputBytes", "inputRecords", "outputBytes", "outputRecords")}
        assert got["inputRecords"] == got["outputRecords"] == 1000
        assert got["inputBytes"] == src.stat().st_size
        assert got["outputBytes"] == sum(p.stat().st_size
                                         for p in (tmp_path / "out").glob("part-*"))
        (stage,) = stages
        accs = store.stages[(stage, 0)]["accumulatorUpdates"]
        assert [a["value"] for a in accs] == ["1000"]

        # 4. A failed attempt reports what it did, as Spark's onTaskEnd does.
        _, stages = await run(sc.parallelize([1], 1).map(work_then_fail_once).collect())
        failed = [e for e in ends(stages) if not e.successful]
        assert len(failed) == 1
        assert failed[0].metrics["executorRunTime"] >= 30
        assert failed[0].metrics["executorCpuTime"] > 0
        (stage,) = stages
        ok = [e for e in ends(stages) if e.successful]
        assert store.stages[(stage, 0)]["executorRunTime"] == (
            failed[0].metrics["executorRunTime"] + ok[0].metrics["executorRunTime"])
