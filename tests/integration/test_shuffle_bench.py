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
PEERS_PYTHON = BENCH / ".venv" / "bin" / "python"
SHUFFLE_CASES = {"rbk1k", "rbk10m", "gbk10m", "sort", "join"}


def _check_common(report: dict) -> None:
    assert report["command"].startswith("python ")
    assert report["environment"]["cpus"] >= 1
    assert report["params"]["quick"] is True
    assert report["params"]["runs"] == 1


def _check_wordcount(report: dict, tmp_path: Path) -> None:
    _check_common(report)
    assert report["params"]["mb"] == 0.5
    inp = report["input"]
    assert Path(inp["path"]).parent == tmp_path
    assert 0 < inp["bytes"] <= 0.5 * 2**20 + 200  # cut at a whole line
    assert len(inp["sha256"]) == 64
    assert report["words"] > report["distinct"] > 1000  # Zipf over 50,000 words
    want = {"asyncspark", "baseline"} | ({"pyspark"} & set(report["peers"]))
    if "dask" in report["peers"]:
        want.add("dask-bag")
    assert set(report["systems"]) == want
    (run,) = report["runs"]
    for system in want:
        assert run[system]["s"] > 0
        if system != "baseline":  # the floor: the input pipeline's count()
            assert run[system]["floor_count"] == report["words"]
            assert run[system]["floor_s"] > 0
    assert run["asyncspark"]["start_s"] > 0
    assert report["ratio_vs_baseline"] == pytest.approx(
        run["asyncspark"]["s"] / run["baseline"]["s"])
    assert report["targets"] == {}  # not 256 MiB


def test_wordcount_quick_json(tmp_path: Path) -> None:
    pytest.importorskip("numpy", reason="wordcount.py generates its input with numpy")
    out = run_script(BENCH / "wordcount.py", "--quick", "--mb", "0.5", "--json",
                     "--data", tmp_path)
    report = json.loads(out)  # exactly one JSON object on stdout
    _check_wordcount(report, tmp_path)
    for peer in ("pyspark", "dask"):
        assert (peer in report["peers"]) != bool(report["peers_skipped"].get(peer))


def test_wordcount_quick_with_peers(tmp_path: Path) -> None:
    if not PEERS_PYTHON.exists():
        pytest.skip(f"the peers are not installed ({PEERS_PYTHON} missing; "
                    "`bash benchmarks/peers/setup.sh` installs them)")
    out = run_script(BENCH / "wordcount.py", "--quick", "--mb", "0.5", "--json",
                     "--data", tmp_path, python=PEERS_PYTHON, timeout=240)
    report = json.loads(out)
    assert report["peers"] == ["pyspark", "dask"]
    _check_wordcount(report, tmp_path)


def _check_shuffle_case(name: str, case: dict, peers: list[str]) -> None:
    expected = {"rbk1k": 1000, "rbk10m": 10_000, "gbk10m": 10_000, "sort": 10_000,
                "join": 4_000}
    dask = {"rbk1k": {"dask-bag", "dask-df"}, "rbk10m": {"dask-bag", "dask-df"},
            "gbk10m": {"dask-bag"}, "sort": {"dask-df"}, "join": {"dask-df"}}
    assert case["error"] is None, name
    assert not case["full_size"]
    assert case["targets"] == {}  # targets only at full size
    want = {"asyncspark", "baseline"}
    if "pyspark" in peers:
        want.add("pyspark")
    if "dask" in peers:
        want |= dask[name]
    assert set(case["systems"]) == want, name
    (run,) = case["runs"]
    assert set(run) == want
    inputs = {"sort": 10_000, "join": 4_000}.get(name, 20_000)  # records into the shuffle
    for system, figures in run.items():
        assert figures["count"] == expected[name], (name, system)
        assert figures["s"] > 0
        if system != "baseline":  # the no-shuffle floor: the input's count()
            assert figures["floor_count"] == inputs
            assert figures["floor_s"] > 0
    for system in want - {"asyncspark"}:
        assert case["speedup"][system] == pytest.approx(
            run[system]["s"] / run["asyncspark"]["s"])
    m = case["median"]["asyncspark"]
    assert m["peak_rss_max_mib"] > 0  # psutil is a test dependency
    assert m["peak_rss_total_mib"] >= m["peak_rss_max_mib"]


def test_shuffle_quick_json() -> None:
    """asyncspark and the one-process baseline; the peers as installed in this interpreter
    (never in the project's environment: skipped, saying why)."""
    out = run_script(BENCH / "shuffle.py", "--quick", "--json")
    report = json.loads(out)
    _check_common(report)
    assert set(report["cases"]) == SHUFFLE_CASES
    assert report["params"]["memory_budget_mib"] == 256
    for peer in ("pyspark", "dask"):
        assert (peer in report["peers"]) != bool(report["peers_skipped"].get(peer))
    for name, case in report["cases"].items():
        _check_shuffle_case(name, case, report["peers"])


def test_shuffle_quick_with_peers() -> None:
    """PySpark and Dask side by side, from the benchmark environment that
    ``benchmarks/peers/setup.sh`` makes."""
    if not PEERS_PYTHON.exists():
        pytest.skip(f"the peers are not installed ({PEERS_PYTHON} missing; "
                    "`bash benchmarks/peers/setup.sh` installs them)")
    out = run_script(BENCH / "shuffle.py", "--quick", "--json", "--case", "rbk10m",
                     "--case", "join", python=PEERS_PYTHON, timeout=240)
    report = json.loads(out)
    assert report["peers"] == ["pyspark", "dask"]
    assert set(report["peer_versions"]) == {"pyspark", "dask"}
    for name, case in report["cases"].items():
        _check_shuffle_case(name, case, report["peers"])
