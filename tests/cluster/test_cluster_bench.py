"""benchmarks/cluster.py runs end to end at its ``--quick`` sizes: it starts its own
3-node Ray cluster, measures local[2] and the cluster side by side, checks their results
equal, stops the cluster by process group, and prints one sane JSON object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'asyncspark[ray]'; "
                                  ".ci/run does)")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_examples_bench import ROOT, run_script


def test_cluster_benchmark_quick():
    report = json.loads(run_script(ROOT / "benchmarks" / "cluster.py", "--quick", "--json",
                                   timeout=300))
    assert report["params"]["quick"] is True
    assert report["params"]["runs"] == 1
    assert report["cluster_start_s"] > 0
    (run,) = report["runs"]
    for system in ("local[2]", "ray 3 nodes"):
        figures = run[system]
        assert set(figures) == {"start_s", "wordcount_s", "rbk_s", "trivial_ms",
                                "executor_start_s"}
        assert all(v > 0 for v in figures.values()), figures
    assert set(report["ray_vs_local"]) == set(run["local[2]"])
