"""The shuffle benchmarks run end to end as scripts, at their tiny ``--quick`` sizes.

Each runs as a subprocess in its own session (``run_script``: a failure, a timeout or an
executor left running fails the test) and must print one sane JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_examples_bench import ROOT, run_script

BENCH = ROOT / "benchmarks"
SHUFFLE_CASES = {"rbk1k", "rbk10m", "gbk10m", "sort", "join"}


def _check_common(report: dict) -> None:
    assert report["command"].startswith("python ")
    assert report["environment"]["cpus"] >= 1
    assert report["params"]["quick"] is True
    assert report["params"]["runs"] == 1


def test_wordcount_quick_json(tmp_path: Path) -> None:
    pytest.importorskip("numpy", reason="wordcount.py generates its input with numpy")
    out = run_script(BENCH / "wordcount.py", "--quick", "--mb", "0.5", "--json",
                     "--vs", "pyspark", "--data", tmp_path)
    report = json.loads(out)  # exactly one JSON object on stdout
    _check_common(report)
    assert report["params"]["mb"] == 0.5
    inp = report["input"]
    assert Path(inp["path"]).parent == tmp_path
    assert 0 < inp["bytes"] <= 0.5 * 2**20 + 200  # cut at a whole line
    assert len(inp["sha256"]) == 64
    (run,) = report["runs"]
    assert min(run["asyncspark_s"], run["baseline_s"], run["start_s"]) > 0
    assert run["words"] > run["distinct"] > 1000  # Zipf over 50,000 words
    assert report["ratio_vs_baseline"] == pytest.approx(
        run["asyncspark_s"] / run["baseline_s"])
    assert isinstance(report["targets"]["vs_baseline"]["pass"], bool)
    assert report["targets"]["vs_pyspark_reference"]["pass"] is None  # not 256 MiB
    ps = report["pyspark"]
    assert ps["reference_s"] == 41.8
    assert ps["measured"] or ps["skipped"]


def test_shuffle_quick_json() -> None:
    out = run_script(BENCH / "shuffle.py", "--quick", "--json")
    report = json.loads(out)
    _check_common(report)
    assert set(report["cases"]) == SHUFFLE_CASES
    assert report["params"]["memory_budget_mib"] == 256
    expected = {"rbk1k": 1000, "rbk10m": 10_000, "gbk10m": 10_000, "sort": 10_000,
                "join": 4_000}
    for name, case in report["cases"].items():
        assert case["error"] is None, name
        assert not case["full_size"]
        assert case["target"]["pass"] is None  # no reference comparison below full size
        (run,) = case["runs"]
        assert run["count"] == run["expected"] == expected[name], name
        assert min(run["asyncspark_s"], run["baseline_s"]) > 0
        assert case["ratio_vs_baseline"] > 0
        assert case["median"]["peak_rss_max_mib"] > 0  # psutil is a test dependency
        assert case["median"]["peak_rss_total_mib"] >= case["median"]["peak_rss_max_mib"]
        assert case["pyspark"]["reference_s"] > 0
    assert report["pyspark_skipped"]

