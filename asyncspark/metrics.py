"""Prometheus metrics in the plain text exposition format (served at ``/metrics`` by the
web UI): jobs, stages and tasks by state, task time, shuffle bytes, spill, executors
alive, the listener bus's dropped events, the scheduler's queue depth and the event
loop's lag. Counters come from the status store; the gauges a caller measures are passed
in. No dependency: the format is a few lines of text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ui.store import StatusStore

__all__ = ["render"]


def _line(name: str, value: float, labels: Mapping[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


def _escape(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(store: StatusStore, gauges: Mapping[str, tuple[str, float]] | None = None,
           app: str = "") -> str:
    """The text exposition of ``store``'s counters plus ``gauges`` (name -> (help,
    value)), every sample labelled with ``application``."""
    base = {"application": app or store.app_id}
    out: list[str] = []

    def family(name: str, kind: str, doc: str, samples: Iterable[tuple[dict, float]]) -> None:
        out.append(f"# HELP {name} {doc}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(_line(name, value, {**base, **labels}))

    jobs: dict[str, int] = dict.fromkeys(("RUNNING", "SUCCEEDED", "FAILED"), 0)
    for j in store.jobs.values():
        jobs[j["status"]] = jobs.get(j["status"], 0) + 1
    family("asyncspark_jobs", "gauge", "Retained jobs by status.",
           [({"status": s.lower()}, n) for s, n in jobs.items()])
    stages: dict[str, int] = dict.fromkeys(("ACTIVE", "COMPLETE", "FAILED", "SKIPPED"), 0)
    for s in store.stages.values():
        stages[s["status"]] = stages.get(s["status"], 0) + 1
    family("asyncspark_stages", "gauge", "Retained stage attempts by status.",
           [({"status": s.lower()}, n) for s, n in stages.items()])
    ex_alive = [e for e in store.executors.values() if e["isActive"] and e["id"] != "driver"]
    totals = {"completed": 0, "failed": 0, "active": 0}
    for e in store.executors.values():
        totals["completed"] += e["completedTasks"]
        totals["failed"] += e["failedTasks"]
        totals["active"] += e["activeTasks"]
    family("asyncspark_tasks_total", "counter", "Tasks ended, by outcome.",
           [({"state": "completed"}, totals["completed"]),
            ({"state": "failed"}, totals["failed"])])
    family("asyncspark_tasks_active", "gauge", "Tasks running now.",
           [({}, totals["active"])])
    family("asyncspark_executors_alive", "gauge", "Executors registered and alive.",
           [({}, len(ex_alive))])
    family("asyncspark_task_time_seconds_total", "counter",
           "Task duration summed, per executor.",
           [({"executor": e["id"]}, e["totalDuration"] / 1000)
            for e in store.executors.values() if e["id"] != "driver"])
    sums = {"shuffle_read_bytes": 0, "shuffle_write_bytes": 0, "spill_bytes": 0,
            "run_time": 0, "cpu_time": 0}
    for s in store.stages.values():
        sums["shuffle_read_bytes"] += s["shuffleRemoteBytesRead"] + s["shuffleLocalBytesRead"]
        sums["shuffle_write_bytes"] += s["shuffleWriteBytes"]
        sums["spill_bytes"] += s["diskBytesSpilled"]
        sums["run_time"] += s["executorRunTime"]
        sums["cpu_time"] += s["executorCpuTime"]
    family("asyncspark_shuffle_read_bytes_total", "counter",
           "Shuffle bytes read by retained stages' tasks.", [({}, sums["shuffle_read_bytes"])])
    family("asyncspark_shuffle_write_bytes_total", "counter",
           "Shuffle bytes written by retained stages' tasks.",
           [({}, sums["shuffle_write_bytes"])])
    family("asyncspark_spill_bytes_total", "counter", "Bytes spilled to disk.",
           [({}, sums["spill_bytes"])])
    family("asyncspark_executor_run_time_seconds_total", "counter",
           "Executor run time of retained stages' tasks.", [({}, sums["run_time"] / 1000)])
    family("asyncspark_executor_cpu_time_seconds_total", "counter",
           "Executor CPU time of retained stages' tasks.", [({}, sums["cpu_time"] / 1e9)])
    family("asyncspark_executor_rss_bytes", "gauge", "Peak RSS reported per executor.",
           [({"executor": e["id"]}, e["peakMemoryMetrics"]["ProcessTreePythonRSSMemory"])
            for e in ex_alive])
    for name, (doc, value) in (gauges or {}).items():
        family(name, "gauge", doc, [({}, value)])
    return "\n".join(out) + "\n"
