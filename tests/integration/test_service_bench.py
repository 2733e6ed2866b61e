"""benchmarks/service.py end to end at its ``--quick`` size (a smoke test, no figures
asserted): every service answers every request, and each shutdown leaves no process,
temporary file or /dev/shm directory behind. Also the example service's ``--help``."""

from __future__ import annotations

import json

from test_examples_bench import ROOT, run_script


def test_service_benchmark_quick_json() -> None:
    report = json.loads(run_script(ROOT / "benchmarks" / "service.py", "--quick", "--json"))
    assert report["command"] == "python benchmarks/service.py --quick --json"
    assert report["params"]["quick"] is True
    assert {"asyncspark", "processpool"} <= set(report["kinds"])
    rows = {(r["service"], r["job"], r["concurrency"]) for r in report["load"]}
    assert rows == {(k, j, c) for k in report["kinds"] for j in ("one-stage", "shuffle")
                    for c in (1, 20, 200)}
    for r in report["load"]:
        assert r["errors"] == 0, r
        assert r["rps"] > 0
        assert r["service_cpu_us"] >= 0
        assert r["workers_cpu_us"] >= 0
    for kind in report["kinds"]:  # CPU clocks tick at 10 ms: summed over a service's rows
        rows_of = [r for r in report["load"] if r["service"] == kind]
        assert sum(r["service_cpu_us"] for r in rows_of) > 0, kind
        assert sum(r["workers_cpu_us"] for r in rows_of) > 0, kind
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert [m["mode"] for m in report["mixed"]] == ["FIFO", "FAIR"]
    for m in report["mixed"]:
        assert m["alone"]["light_requests"] > 0
        assert m["with_heavy"]["heavy_jobs"] >= 1
        for figures in (m["alone"], m["with_heavy"]):
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
            assert figures["closed_loop"]["light_requests"] > 0
    assert len(report["shutdown"]) == len(report["kinds"]) + 2
    for s in report["shutdown"]:
        assert s["exit_code"] == 0, s
        assert s["processes_left"] == 0, s
        if s["service"] != "dask":  # Dask leaves its scratch directories behind
            assert (s["files_left"], s["shm_left"]) == (0, False), s


def test_example_service_help() -> None:
    out = run_script(ROOT / "examples" / "aiohttp_service.py", "--help")
    assert "--max-active-jobs" in out
    assert "An aiohttp service that runs asyncspark jobs per request." in out
