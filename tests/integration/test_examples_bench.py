"""The examples and the latency benchmark run end to end as scripts.

Each script runs as a subprocess (``sys.executable``) in its own session, so that on a
timeout or a failure the whole process group — the script and its executor processes —
can be found and killed; a test fails if anything of that group outlives the script.
"""

from __future__ import annotations

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


def run_script(*args: str | Path, cwd: Path = ROOT) -> str:
    """Run ``python *args`` from ``cwd``; its stdout. Fails on a non-zero exit, a timeout
    or a process of its group left running after it exited."""
    proc = subprocess.Popen(
        [sys.executable, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    pgid = proc.pid  # a new session: the script leads its own process group
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_group(pgid)
        out, err = proc.communicate()
        pytest.fail(f"{args} timed out after {TIMEOUT} s\nstdout:\n{out}\nstderr:\n{err}")
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


def test_latency_benchmark_quick_json() -> None:
    out = run_script(ROOT / "benchmarks" / "latency.py", "--quick", "--json")
    report = json.loads(out)  # exactly one JSON object on stdout
    assert report["params"]["runs"] == 1
    assert len(report["runs"]) == 1
    for system in ("asyncspark", "pool"):
        m = report["median"][system]
        assert 0 < m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"] <= m["max_ms"]
        assert m["tasks_per_s"] > 0
        assert m["first_job_ms"] > 0
    assert report["median"]["asyncspark"]["start_ms"] > 0
    assert set(report["targets"]) == {"trivial_p50_ms", "tasks_per_s"}
    assert all(isinstance(t["pass"], bool) for t in report["targets"].values())
    assert report["ratio_vs_pool"]["trivial_p50"] > 0
    assert report["reference"]["pyspark_local2"]["trivial_p50_ms"] == 91.0
