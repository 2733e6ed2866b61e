"""The benchmark harness's arithmetic and report, without running anything."""

from __future__ import annotations

import pytest

from asyncspark.bench.params import parse_conf_items
from asyncspark.bench.report import format_table, median_breakdown, speedups, targets
from asyncspark.bench.stats import ascii_histogram, histogram, median_across_runs, percentiles
from asyncspark.errors import ConfigError


def test_percentiles_nearest_rank():
    p = percentiles(range(1, 101), 1e-3, "s")
    assert p == {"p50_s": 0.05, "p90_s": 0.09, "p99_s": 0.099, "max_s": 0.1}
    assert percentiles([7]) == {"p50_ms": 7, "p90_ms": 7, "p99_ms": 7, "max_ms": 7}
    assert percentiles([]) == {}


def test_median_across_runs_nested_and_partial():
    runs = [{"a": {"x": 1, "y": 10, "s": "text"}}, {"a": {"x": 3}}, {"a": {"x": 2, "y": 30}}]
    assert median_across_runs(runs) == {"a": {"x": 2, "y": 20, "s": None}}


def test_histogram_bins_hold_every_sample():
    samples = [0.1] * 50 + [0.2] * 49 + [5.0]
    bins = histogram(samples, bins=4)
    assert sum(n for _, _, n in bins) == 100
    assert bins[0][:2] == [0.1, 0.125]
    assert bins[0][2] == 50
    assert bins[-1] == [0.2, 5.0, 1]  # the tail past the p99
    lines = ascii_histogram(bins, width=10)
    assert lines[0].endswith("|##########| 50")
    assert histogram([]) == []
    assert ascii_histogram([]) == ["  (no samples)"]
    assert sum(n for _, _, n in histogram([1.0] * 5)) == 5


def test_parse_conf_items():
    assert parse_conf_items(["asyncspark.trace.tasks = true"]) == {
        "asyncspark.trace.tasks": "true"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_conf_items(["novalue"])
    with pytest.raises(ConfigError, match="unknown configuration key"):
        parse_conf_items(["asyncspark.nope=1"])


def _median(p50_a: float, p50_b: float, tps_a: float, tps_b: float) -> dict:
    return {"asyncspark": {"latency": {"p50_ms": p50_a},
                           "throughput": {"tasks_per_s": tps_a}},
            "multiprocessing": {"latency": {"p50_ms": p50_b},
                                "throughput": {"tasks_per_s": tps_b}}}


def test_speedups_and_targets():
    median = _median(0.4, 0.5, 30_000, 3_000)
    assert speedups(median) == {"multiprocessing": {"latency.p50_ms": 1.25,
                                                    "throughput.tasks_per_s": 10.0}}
    t = targets(median["asyncspark"])
    assert t["tasks_per_s"] == {"target": ">= 100000", "value": 30_000, "pass": False}
    assert "context_ready_ms" not in t  # not measured
    assert "trivial_p50_vs_rtt_p50" not in t  # no floor measured
    # Against the round trip of the same run: 0.4 ms / 300 µs, 0.9 ms / 300 µs.
    t = targets({"latency": {"p50_ms": 0.4, "p99_ms": 0.9}, "rtt": {"p50_us": 300.0}})
    assert t["trivial_p50_vs_rtt_p50"] == {"target": "<= 1.5x", "value": pytest.approx(4 / 3),
                                           "pass": True}
    assert t["trivial_p99_vs_rtt_p50"]["value"] == 3.0
    assert t["trivial_p99_vs_rtt_p50"]["pass"] is True
    assert "trivial_p50_vs_streams_rtt_p50" not in t  # no streams probe measured
    t = targets({"latency": {"p50_ms": 0.5, "p99_ms": 1.0}, "rtt": {"p50_us": 300.0}})
    assert t["trivial_p50_vs_rtt_p50"]["pass"] is False
    assert t["trivial_p99_vs_rtt_p50"]["pass"] is False
    # Issue #16's target: against the asyncio-streams request/reply of the same run.
    t = targets({"latency": {"p50_ms": 0.05, "p99_ms": 0.2},
                 "rtt": {"p50_us": 20.0, "streams_p50_us": 40.0}})
    assert t["trivial_p50_vs_streams_rtt_p50"] == {
        "target": "<= 1.5x", "value": pytest.approx(1.25), "pass": True}
    assert t["trivial_p99_vs_streams_rtt_p50"]["value"] == pytest.approx(5.0)
    assert t["trivial_p99_vs_streams_rtt_p50"]["pass"] is False
    assert t["trivial_p50_vs_rtt_p50"]["value"] == pytest.approx(2.5)


def test_median_breakdown_and_table():
    phases = {"submit -> serialized": 10.0, "serialized -> stage_created": 4.0}
    b = median_breakdown([{"tasks": 3, "phases_us": phases, "total_us": 14.0}, None,
                          {"tasks": 1, "phases_us": {k: v * 3 for k, v in phases.items()},
                           "total_us": 42.0}])
    assert b is not None
    assert b["tasks"] == 4
    assert b["phases_us"]["submit -> serialized"] == 20.0
    assert median_breakdown([None]) is None
    median = _median(0.6, 0.5, 30_000, 3_000)
    report = {
        "command": "asyncspark bench", "systems": ["asyncspark", "multiprocessing"],
        "params": {"runs": 3, "conf": {}, "executors": 2, "jobs": 8},
        "environment": {"asyncspark": "0", "master": "local[2]", "loop": "uvloop",
                        "python": "3", "cpus": 2, "loadavg": "0.1",
                        "pool_start_method": "fork"},
        "skipped": {"dask": "not installed"}, "median": median,
        "speedups": speedups(median), "targets": targets(median["asyncspark"]),
        "breakdown": None, "histogram": histogram([0.5, 0.6]),
    }
    text = format_table(report)
    assert "--vs dask: not installed" in text
    assert "1.20x slower" in text
    assert "10.00x faster" in text
    assert "tasks_per_s" in text
    assert "FAIL" in text
