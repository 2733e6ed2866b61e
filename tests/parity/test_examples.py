"""examples/pagerank.py and examples/logistic_regression.py: PySpark programs that run
unchanged but the import, checked against plain-Python references of the same maths."""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import subprocess
import sys
from collections import defaultdict

import cloudpickle
import pytest

from asyncspark import SparkContext

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # executors cannot import it by name
    return module


def reference_pagerank(path: pathlib.Path, iterations: int) -> dict[str, float]:
    links: dict[str, set[str]] = defaultdict(set)
    for line in path.read_text().splitlines():
        if line.strip():
            page, neighbour = line.split()
            links[page].add(neighbour)
    ranks = dict.fromkeys(links, 1.0)
    for _ in range(iterations):
        received: dict[str, float] = defaultdict(float)
        for page, neighbours in links.items():
            if page in ranks:
                for n in neighbours:
                    received[n] += ranks[page] / len(neighbours)
        ranks = {p: 0.15 + 0.85 * r for p, r in received.items()}
    return ranks


def reference_fit(points, d: int, iterations: int) -> list[float]:
    w = [0.0] * d
    for _ in range(iterations):
        g = [0.0] * d
        for y, x in points:
            margin = y * sum(a * b for a, b in zip(w, x, strict=True))
            scale = (1.0 / (1.0 + math.exp(-margin)) - 1.0) * y
            g = [gi + scale * xi for gi, xi in zip(g, x, strict=True)]
        w = [wi - gi / len(points) for wi, gi in zip(w, g, strict=True)]
    return w


@pytest.fixture(scope="module")
def sc():
    with SparkContext("local[2]", "examples") as ctx:
        yield ctx


@pytest.mark.parametrize("iterations", [0, 1, 10])
def test_pagerank_matches_the_reference(sc, iterations):
    pagerank = _load("pagerank")
    path = EXAMPLES / "data" / "links.txt"
    got = dict(pagerank.pagerank(sc, str(path), iterations))
    want = reference_pagerank(path, iterations)
    assert got.keys() == want.keys()
    for page, rank in want.items():
        assert got[page] == pytest.approx(rank, rel=1e-12)


def test_logistic_regression_matches_the_reference(sc):
    lr = _load("logistic_regression")
    points = lr.generate(300, 3, seed=7)
    got = lr.fit(sc, points, 3, 15)
    assert got == pytest.approx(reference_fit(points, 3, 15), rel=1e-9)
    assert lr.accuracy(points, got) > 0.8


@pytest.mark.parametrize(("script", "args", "first"), [
    ("pagerank.py", ["--iterations", "3"], "has rank:"),
    ("logistic_regression.py", ["--points", "200", "--iterations", "3"], "Final w:"),
])
def test_examples_run_as_scripts(script, args, first):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    assert first in out.stdout.splitlines()[0]
    helped = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    assert helped.stdout.startswith("usage:")
    assert "only the import differs" in " ".join(helped.stdout.split())


def test_examples_differ_from_pyspark_only_in_the_import():
    for script in ("pagerank.py", "logistic_regression.py"):
        text = (EXAMPLES / script).read_text()
        assert "from asyncspark import SparkContext\n" in text
        code = text.replace("from asyncspark import SparkContext\n", "")
        assert "asyncspark" not in code.split('"""', 2)[2], script  # nothing else of ours
