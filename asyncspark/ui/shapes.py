"""Spark's REST shapes built from the status store's raw data: dates as Spark writes
them, task-summary quantiles, a task's nested ``TaskMetrics`` JSON, and ``RDDStorageInfo``
from block locations."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["quantiles", "spark_time", "storage_info", "task_metrics_json"]


def spark_time(t: float | None) -> str | None:
    """Seconds since the epoch as Spark's REST API writes dates
    (``2015-02-03T16:42:40.000GMT``)."""
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}GMT"


def quantiles(values: list[float], qs: list[float]) -> list[float]:
    """Spark's task-summary quantiles: the value at index ``int(q * (n - 1))`` of the
    sorted values (nearest rank, no interpolation); ``[]`` for no values."""
    if not values:
        return []
    s = sorted(values)
    n = len(s)
    return [float(s[min(n - 1, max(0, int(q * (n - 1) + 0.5)))]) for q in qs]


def storage_info(blocks: dict[str, dict[str, tuple[str, int]]]) -> list[dict[str, Any]]:
    """Spark's ``RDDStorageInfo`` list from ``block id -> {executor id: (where, size)}``
    (``where``: ``memory``, ``disk`` or ``offheap``) for the ``rdd_{id}_{split}`` blocks."""
    rdds: dict[int, dict[str, Any]] = {}
    for block, locs in sorted(blocks.items()):
        parts = block.split("_")
        if len(parts) != 3 or parts[0] != "rdd" or not locs:
            continue
        rdd_id = int(parts[1])
        r = rdds.setdefault(rdd_id, {
            "id": rdd_id, "name": f"rdd_{rdd_id}", "numPartitions": 0,
            "numCachedPartitions": 0, "storageLevel": "", "memoryUsed": 0, "diskUsed": 0,
            "dataDistribution": [], "partitions": [], "_levels": set(), "_dist": {}})
        r["numCachedPartitions"] += 1
        r["numPartitions"] = max(r["numPartitions"], int(parts[2]) + 1)
        mem = disk = 0
        for executor_id, (where, size) in locs.items():
            r["_levels"].add(where)
            d = r["_dist"].setdefault(executor_id, {"address": executor_id, "memoryUsed": 0,
                                                     "memoryRemaining": 0, "diskUsed": 0})
            if where == "disk":
                disk += size
                d["diskUsed"] += size
            else:
                mem += size
                d["memoryUsed"] += size
        r["memoryUsed"] += mem
        r["diskUsed"] += disk
        r["partitions"].append({"blockName": block, "storageLevel": "/".join(
            sorted({w for w, _ in locs.values()})), "memoryUsed": mem, "diskUsed": disk,
            "executors": sorted(locs)})
    out = []
    for r in rdds.values():
        levels = r.pop("_levels")
        r["storageLevel"] = " and ".join(sorted(levels))
        r["dataDistribution"] = list(r.pop("_dist").values())
        out.append(r)
    return out


def task_metrics_json(m: dict[str, Any]) -> dict[str, Any]:
    """A task's flat metrics as Spark's nested ``TaskMetrics`` JSON."""
    g = m.get
    return {
        "executorDeserializeTime": g("executorDeserializeTime", 0),
        "executorDeserializeCpuTime": g("executorDeserializeCpuTime", 0),
        "executorRunTime": g("executorRunTime", 0),
        "executorCpuTime": g("executorCpuTime", 0),
        "resultSize": g("resultSize", 0),
        "jvmGcTime": g("jvmGcTime", 0),
        "resultSerializationTime": g("resultSerializationTime", 0),
        "memoryBytesSpilled": g("memoryBytesSpilled", 0),
        "diskBytesSpilled": g("diskBytesSpilled", 0),
        "peakExecutionMemory": g("peakExecutionMemory", 0),
        "inputMetrics": {"bytesRead": g("inputBytes", 0), "recordsRead": g("inputRecords", 0)},
        "outputMetrics": {"bytesWritten": g("outputBytes", 0),
                          "recordsWritten": g("outputRecords", 0)},
        "shuffleReadMetrics": {
            "remoteBlocksFetched": g("shuffleRemoteBlocksFetched", 0),
            "localBlocksFetched": g("shuffleLocalBlocksFetched", 0),
            "fetchWaitTime": g("shuffleFetchWaitTime", 0),
            "remoteBytesRead": g("shuffleRemoteBytesRead", 0),
            "remoteBytesReadToDisk": 0,
            "localBytesRead": g("shuffleLocalBytesRead", 0),
            "recordsRead": g("shuffleReadRecords", 0)},
        "shuffleWriteMetrics": {"bytesWritten": g("shuffleWriteBytes", 0),
                                "writeTime": g("shuffleWriteTime", 0),
                                "recordsWritten": g("shuffleWriteRecords", 0)},
        "executorRss": g("executorRss", 0),
    }
