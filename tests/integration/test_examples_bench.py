"""The examples and the benchmark harness (``asyncspark bench``, benchmarks/latency.py)
run end to end as scripts.

Each script runs as a subprocess (``sys.executable``) in its own session, so that on a
timeout or a failure the whole process group — the script and its executor processes —
can be found and killed; a test fails if anything of that group outlives the script.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

from asyncspark.scheduler.trace import PHASES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SAMPLE = EXAMPLES / "data" / "sample.txt"
TIMEOUT = 120


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_script(*args: str | Path, cwd: Path = ROOT, python: str | Path = sys.executable,
               timeout: float = TIMEOUT) -> str:
    """Run ``python *args`` from ``cwd``; its stdout. Fails on a non-zero exit, a timeout
    or a process of its group left running after it exited."""
    proc = subprocess.Popen(
        [str(python), *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    pgid = proc.pid  # a new session: the script leads its own process group
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(pgid)
        out, err = proc.communicate()
        pytest.fail(f"{args} timed out after {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
    finally:
        if proc.poll() is None:  # an exception other than the timeout (e.g. Ctrl-C)
            _kill_group(pgid)
            proc.wait()
    # The executors should have exited with the driver; give stragglers a moment.
    _, alive = psutil.wait_procs(_group_members(pgid), timeout=5)
    if alive:
        cmdlines = [p.cmdline() for p in alive]
        _kill_group(pgid)
        pytest.fail(f"{args} left processes running: {cmdlines}")
    assert proc.returncode == 0, (
        f"{args} exited with {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}")
    return out


def test_pi() -> None:
    out = run_script(EXAMPLES / "pi.py")
    m = re.search(r"Pi is roughly (\d+\.\d+)", out)
    assert m, out
    assert abs(float(m.group(1)) - math.pi) < 0.2


def test_pi_partitions_argument() -> None:
    out = run_script(EXAMPLES / "pi.py", "3")
    assert "3 partition" in out
    m = re.search(r"Pi is roughly (\d+\.\d+)", out)
    assert m, out
    assert abs(float(m.group(1)) - math.pi) < 0.2


def _expected_counts(path: Path) -> Counter[str]:
    """A plain-Python count with the same word rule as examples/wordcount.py."""
    word = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
    return Counter(word.findall(path.read_text(encoding="utf-8").lower()))


def _parse_wordcount(out: str) -> list[tuple[str, int]]:
    rows = []
    for line in out.splitlines():
        w, n = line.split("\t")
        rows.append((w, int(n)))
    return rows


@pytest.mark.parametrize("cwd", [ROOT, ROOT / "tests"], ids=["repo-root", "elsewhere"])
def test_wordcount_bundled_text(cwd: Path) -> None:
    rows = _parse_wordcount(run_script(EXAMPLES / "wordcount.py", cwd=cwd))
    assert len(rows) == 10
    expected = _expected_counts(SAMPLE)
    top_word, top_count = rows[0]
    assert top_count == max(expected.values())
    assert expected[top_word] == top_count
    assert all(expected[w] == n for w, n in rows)
    assert [n for _, n in rows] == sorted((n for _, n in rows), reverse=True)


def test_wordcount_path_argument(tmp_path: Path) -> None:
    text = tmp_path / "words.txt"
    text.write_text("b a b\nc b a\n\nA b\n", encoding="utf-8")
    rows = _parse_wordcount(run_script(EXAMPLES / "wordcount.py", text, "--partitions", "3"))
    assert rows == [("b", 4), ("a", 3), ("c", 1)]


def _check_bench_report(report: dict, scenarios: set[str], peers: set[str]) -> None:
    """The structure of an ``asyncspark bench --json`` report and the sanity of its
    figures (not their size: a smoke run's figures mean nothing)."""
    assert report["params"]["runs"] == 1
    assert len(report["runs"]) == 1
    installed = {p for p in peers if p == "multiprocessing" or importlib.util.find_spec(
        "distributed" if p == "dask" else p) is not None}
    assert set(report["systems"]) == {"asyncspark", *installed}
    assert set(report["skipped"]) == peers - installed
    assert all(why.startswith("not installed") for why in report["skipped"].values())
    mine = report["median"]["asyncspark"]
    assert set(mine) == scenarios | ({"rtt"} if "latency" in scenarios else set())
    if "latency" in scenarios:
        for system in report["systems"]:
            m = report["median"][system]["latency"]
            assert 0 < m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"] <= m["max_ms"]
        assert sum(n for _, _, n in report["histogram"]) == report["params"]["trivial"]
        rtt = mine["rtt"]  # the floor, measured in the same run
        assert 0 < rtt["p50_us"] <= rtt["p99_us"] <= rtt["max_us"]
        assert rtt["thread_hop_p50_us"] > 0
        # The plain asyncio-streams request/reply (issue #16's floor), same run.
        assert 0 < rtt["streams_p50_us"] <= rtt["streams_p99_us"] <= rtt["streams_max_us"]
        assert report["targets"]["trivial_p50_vs_streams_rtt_p50"]["value"] == pytest.approx(
            mine["latency"]["p50_ms"] * 1e3 / rtt["streams_p50_us"])
        assert report["floor"] == rtt
        assert report["targets"]["trivial_p50_vs_rtt_p50"]["value"] == pytest.approx(
            mine["latency"]["p50_ms"] * 1e3 / rtt["p50_us"])
    if "throughput" in scenarios:
        t = mine["throughput"]
        assert t["tasks_per_s"] > 0
        assert t["concurrent_tasks_per_s"] > 0
        assert math.isclose(t["tasks_per_s"] * t["us_per_task"], 1e6)
    if "startup" in scenarios:
        s = mine["startup"]
        assert 0 < s["ready_ms"] < s["first_job_ms"]
        assert 0 < s["import_ms"] <= s["import_context_ms"]
    if "loop-lag" in scenarios:
        lag = mine["loop-lag"]
        assert lag["jobs_per_s"] > 0
        assert 0 <= lag["queue_wait_p50_us"] <= lag["queue_wait_max_us"]
        assert 0 <= lag["loop_lag_p50_us"] <= lag["loop_lag_max_us"]
    assert all(isinstance(t["pass"], bool) for t in report["targets"].values())
    for peer in installed:
        assert all(f > 0 for f in report["speedups"][peer].values())


def test_latency_benchmark_quick_json() -> None:
    out = run_script(ROOT / "benchmarks" / "latency.py", "--quick", "--json", "--vs",
                     "multiprocessing")
    report = json.loads(out)  # exactly one JSON object on stdout
    assert report["command"] == ("python benchmarks/latency.py --quick --json --vs "
                                 "multiprocessing")
    _check_bench_report(report, {"latency", "throughput", "startup"}, {"multiprocessing"})
    assert report["median"]["multiprocessing"]["throughput"]["tasks_per_s"] > 0


def test_bench_every_scenario_with_breakdown_and_peers() -> None:
    out = run_script("-m", "asyncspark.bench", "--quick", "--json", "--breakdown",
                     "--vs", "multiprocessing", "--vs", "pyspark", "--vs", "dask",
                     "--jobs", "3", "--conf", "asyncspark.scheduler.shortTaskPipelining=1")
    report = json.loads(out)
    assert report["params"]["jobs"] == 3
    assert report["params"]["conf"] == {"asyncspark.scheduler.shortTaskPipelining": "1"}
    _check_bench_report(report, {"latency", "throughput", "loop-lag", "startup"},
                        {"multiprocessing", "pyspark", "dask"})
    b = report["breakdown"]
    assert b["tasks"] == report["params"]["trivial"]
    assert list(b["phases_us"]) == [name for name, _, _ in PHASES]
    # One host, one monotonic clock: every phase of a task takes a non-negative time.
    assert all(v >= 0 for v in b["phases_us"].values())
    assert b["total_us"] > 0


def test_asyncspark_command_bench_table() -> None:
    out = run_script("-m", "asyncspark.cli", "bench", "latency", "--quick", "--trivial",
                     "7", "--runs", "2", "--vs", "none")
    assert out.startswith("$ asyncspark bench latency --quick --trivial 7 --runs 2 --vs "
                          "none\n")
    assert "median of 2 run(s)" in out
    assert re.search(r"^trivial job p50 \(ms\) +\d+\.\d{3}$", out, re.M), out
    assert re.search(r"^loopback msgpack round trip p50 \(µs\) +\d+\.\d$", out, re.M), out
    assert re.search(r"^asyncio-streams msgpack request/reply p50 \(µs\) +\d+\.\d$",
                     out, re.M), out
    for name in ("trivial_p50_vs_rtt_p50", "trivial_p50_vs_streams_rtt_p50"):
        assert re.search(rf"^  {name} +<= 1\.5x +measured +\d+\.\d+ +(PASS|FAIL)$",
                         out, re.M), out
    bars = re.findall(r"^ +\d+\.\d+ - +\d+\.\d+ ms \|#*\s*\| (\d+)$", out, re.M)
    assert sum(map(int, bars)) == 14  # the histogram holds both runs' jobs
    assert "[throughput]" not in out


def test_bench_rejects_bad_arguments() -> None:
    proc = subprocess.run([sys.executable, "-m", "asyncspark.bench", "nosuch"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert "unknown scenario 'nosuch'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "asyncspark.bench", "--conf",
                           "asyncspark.nosuch=1"], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 2
    assert "unknown configuration key 'asyncspark.nosuch'" in proc.stderr


def test_kmeans_example_and_cache_benchmark_quick() -> None:
    out = run_script(EXAMPLES / "kmeans.py", "3", "--points", "3000", "--iterations", "3")
    assert re.search(r"iteration 1: .* s", out), out
    centers = re.findall(r"\((-?\d+\.\d+), (-?\d+\.\d+)\)", out.split("Final centers:")[1])
    assert len(centers) == 3
    report = json.loads(run_script(ROOT / "benchmarks" / "cache.py", "--quick", "--json"))
    _check_cache_report(report)


def _check_cache_report(report: dict) -> None:
    [run] = report["runs"]
    mine = run["asyncspark"]
    assert mine["cached_blocks"] == report["partitions"]  # every partition was cached
    for system in report["systems"]:
        assert len(run[system]["iterations"]) == report["iterations"]
        assert run[system]["first_s"] > 0
        assert run[system]["cached_s"] > 0
        assert len(run[system]["centers"]) == report["k"]
    assert report["median_ratio"] == mine["ratio"]
    assert isinstance(report["target"]["pass"], bool)


def test_cache_benchmark_quick_with_peers() -> None:
    """PySpark and Dask's bag side by side (the benchmark checks their centers agree),
    from the environment ``benchmarks/peers/setup.sh`` makes."""
    peers_python = ROOT / "benchmarks" / ".venv" / "bin" / "python"
    if not peers_python.exists():
        pytest.skip(f"the peers are not installed ({peers_python} missing; "
                    "`bash benchmarks/peers/setup.sh` installs them)")
    report = json.loads(run_script(ROOT / "benchmarks" / "cache.py", "--quick", "--json",
                                   python=peers_python, timeout=240))
    assert report["systems"] == ["asyncspark", "pyspark", "dask-bag"]
    _check_cache_report(report)
    assert set(report["speedup"]) == {"pyspark", "dask-bag"}
