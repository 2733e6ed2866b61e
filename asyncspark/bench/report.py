"""The report of ``asyncspark bench``: figures, targets, speed-ups, and its table."""

from __future__ import annotations

import statistics
from typing import Any

from .stats import ascii_histogram

__all__ = ["FIGURES", "REFERENCE", "TARGETS", "format_table", "median_breakdown",
           "speedups", "targets"]

# (scenario, figure, label, digits), in table order. Figures ending in "per_s" are
# better higher, all others better lower.
FIGURES: list[tuple[str, str, str, int]] = [
    ("latency", "p50_ms", "trivial job p50 (ms)", 3),
    ("latency", "p90_ms", "trivial job p90 (ms)", 3),
    ("latency", "p99_ms", "trivial job p99 (ms)", 3),
    ("latency", "max_ms", "trivial job max (ms)", 3),
    ("throughput", "tasks_per_s", "empty tasks, one job (tasks/s)", 0),
    ("throughput", "us_per_task", "empty tasks, one job (µs/task)", 1),
    ("throughput", "concurrent_tasks_per_s", "empty tasks, {jobs} jobs at once (tasks/s)", 0),
    ("throughput", "concurrent_us_per_task", "empty tasks, {jobs} jobs at once (µs/task)", 1),
    ("loop-lag", "jobs_per_s", "trivial jobs from {jobs} submitters (jobs/s)", 0),
    ("loop-lag", "job_p50_ms", "  their latency p50 (ms)", 3),
    ("loop-lag", "job_p99_ms", "  their latency p99 (ms)", 3),
    ("loop-lag", "queue_wait_p50_us", "  scheduler queue wait p50 (µs)", 1),
    ("loop-lag", "queue_wait_p99_us", "  scheduler queue wait p99 (µs)", 1),
    ("loop-lag", "queue_wait_max_us", "  scheduler queue wait max (µs)", 1),
    ("loop-lag", "loop_lag_p50_us", "  event-loop lag p50 (µs)", 1),
    ("loop-lag", "loop_lag_p99_us", "  event-loop lag p99 (µs)", 1),
    ("loop-lag", "loop_lag_max_us", "  event-loop lag max (µs)", 1),
    ("startup", "ready_ms", "context start until executors registered (ms)", 1),
    ("startup", "first_job_ms", "context start until first job done (ms)", 1),
    ("startup", "stop_ms", "stop (ms)", 1),
    ("startup", "import_ms", "import asyncspark, fresh process (ms)", 1),
    ("startup", "import_context_ms", "import asyncspark + Context (ms)", 1),
]

# name -> (scenario, figure, "<=" or ">=", threshold): the targets on local[2].
TARGETS: dict[str, tuple[str, str, str, float]] = {
    "trivial_p50_ms": ("latency", "p50_ms", "<=", 0.5),
    "trivial_p99_ms": ("latency", "p99_ms", "<=", 2.0),
    "tasks_per_s": ("throughput", "tasks_per_s", ">=", 20_000),
    "concurrent_tasks_per_s": ("throughput", "concurrent_tasks_per_s", ">=", 10_000),
    "context_ready_ms": ("startup", "ready_ms", "<=", 500),
    "import_ms": ("startup", "import_ms", "<=", 100),
}

# For scale, not measured here: shared/bench/README.md (PySpark 4.3.0 local[2], Dask
# distributed 2026.8 with 2 single-threaded workers, Ray 2.60 with 2 CPUs; medians).
REFERENCE: dict[str, dict[str, float]] = {
    "pyspark_local2": {"trivial_p50_ms": 91.0, "trivial_p99_ms": 187.0,
                       "tasks_per_s": 40.0, "first_job_ms": 12_700.0},
    "dask_2_workers": {"trivial_p50_ms": 11.0, "tasks_per_s": 358.0, "first_job_ms": 2_300.0},
    "ray_2_cpus": {"trivial_p50_ms": 3.4, "tasks_per_s": 914.0, "first_job_ms": 9_000.0},
}


def _higher_better(figure: str) -> bool:
    return figure.endswith("per_s")


def speedups(median: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per peer, ``"scenario.figure" -> factor`` by which asyncspark is better (> 1) or
    worse (< 1) than the peer on that figure."""
    mine = median["asyncspark"]
    out: dict[str, dict[str, float]] = {}
    for peer, theirs in median.items():
        if peer == "asyncspark":
            continue
        ratios = {}
        for scenario, figure, _, _ in FIGURES:
            a = mine.get(scenario, {}).get(figure)
            b = theirs.get(scenario, {}).get(figure)
            if not a or not b:
                continue
            ratios[f"{scenario}.{figure}"] = a / b if _higher_better(figure) else b / a
        out[peer] = ratios
    return out


def targets(mine: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, (scenario, figure, op, threshold) in TARGETS.items():
        value = mine.get(scenario, {}).get(figure)
        if value is None:
            continue
        ok = value <= threshold if op == "<=" else value >= threshold
        out[name] = {"target": f"{op} {threshold:g}", "value": value, "pass": ok}
    return out


def median_breakdown(breakdowns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The median across runs of each phase's per-run median."""
    breakdowns = [b for b in breakdowns if b and b.get("tasks")]
    if not breakdowns:
        return None
    phases = {name: statistics.median(b["phases_us"][name] for b in breakdowns)
              for name in breakdowns[0]["phases_us"]}
    return {"tasks": sum(b["tasks"] for b in breakdowns), "phases_us": phases,
            "total_us": statistics.median(b["total_us"] for b in breakdowns)}


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def format_table(r: dict[str, Any]) -> str:
    p, env = r["params"], r["environment"]
    systems = r["systems"]
    peers = [s for s in systems if s != "asyncspark"]
    lines = [
        f"$ {r['command']}",
        f"asyncspark {env['asyncspark']} {env['master']} on {env['loop']}, Python "
        f"{env['python']}, {env['cpus']} CPUs, load avg {env['loadavg']}; "
        f"median of {p['runs']} run(s)" + (f"; conf {p['conf']}" if p["conf"] else ""),
    ]
    if "multiprocessing" in systems:
        lines.append(f"multiprocessing = ProcessPoolExecutor({p['executors']}) "
                     f"({env['pool_start_method']})")
    for peer, why in r["skipped"].items():
        lines.append(f"--vs {peer}: {why}")
    lines.append("")
    head = f"{'':52}" + "".join(f"{s:>16}" for s in systems)
    if peers:
        head += "".join(f"{'vs ' + s[:12]:>18}" for s in peers)
    lines.append(head)
    median = r["median"]
    last_scenario = None
    for scenario, figure, label, digits in FIGURES:
        if median["asyncspark"].get(scenario, {}).get(figure) is None:
            continue
        if scenario != last_scenario:
            lines.append(f"[{scenario}]")
            last_scenario = scenario
        row = f"{label.format(jobs=p['jobs']):52}" + "".join(
            f"{_fmt(median.get(s, {}).get(scenario, {}).get(figure), digits):>16}"
            for s in systems)
        for peer in peers:
            f = r["speedups"].get(peer, {}).get(f"{scenario}.{figure}")
            cell = "-" if f is None else (
                f"{f:.2f}x faster" if f >= 1 else f"{1 / f:.2f}x slower")
            row += f"{cell:>18}"
        lines.append(row)
    if r.get("breakdown"):
        b = r["breakdown"]
        lines += ["", f"latency breakdown: median per phase of a trivial job's task "
                      f"({b['tasks']} tasks, tracing on)"]
        total = sum(b["phases_us"].values()) or 1.0
        for name, us in b["phases_us"].items():
            bar = "#" * round(us / total * 40)
            lines.append(f"  {name:34} {us:9.1f} µs  {bar}")
        lines.append(f"  {'submit -> delivered (median total)':34} {b['total_us']:9.1f} µs")
    if r.get("histogram"):
        lines += ["", "trivial job latency, all runs (asyncspark):"]
        lines += ascii_histogram(r["histogram"])
    if r.get("plot"):
        lines.append(f"plot: {r['plot']}")
    if r["targets"]:
        lines += ["", "targets (asyncspark, local[2]):"]
        for name, t in r["targets"].items():
            verdict = "PASS" if t["pass"] else "FAIL"
            lines.append(f"  {name:24} {t['target']:>10}   measured {t['value']:>12,.3f}   "
                         f"{verdict}")
    lines += ["", "reference figures (not measured here; shared/bench/README.md): " + "; ".join(
        f"{k} trivial p50 {v['trivial_p50_ms']:g} ms, {v['tasks_per_s']:g} tasks/s"
        for k, v in REFERENCE.items())]
    return "\n".join(lines)
