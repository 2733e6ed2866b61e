"""The blocking facade is typed: mypy infers ``RDD[T]`` through transformations and pair
methods, and a misspelt method or a wrong element type is a type error (no
``__getattr__`` forwarding)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
mypy_api = pytest.importorskip("mypy.api", reason="mypy (the test extra) is not installed")

GOOD = '''
from asyncspark import SparkContext

def job(sc: SparkContext) -> None:
    words = sc.parallelize(["a b", "b c"]).flatMap(str.split)
    counts = words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
    pairs: list[tuple[str, int]] = counts.collect()
    total: int = words.map(len).sum()
    joined = counts.join(counts.mapValues(str))
    reveal_type(joined)
    lines: list[str] = sc.textFile("x").take(3)
    print(pairs, total, lines)
'''

BAD = '''
from asyncspark import SparkContext

def job(sc: SparkContext) -> None:
    rdd = sc.parallelize([1, 2, 3])
    rdd.colect()
    s: str = rdd.first()
    sc.parallelise([1])
'''


def _mypy(tmp_path: pathlib.Path, source: str) -> tuple[str, int]:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source))
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent",
                          "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"),
                          str(path)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    return out.stdout, out.returncode


def test_types_flow_through_the_facade(tmp_path):
    out, code = _mypy(tmp_path, GOOD)
    assert code == 0, out
    assert 'Revealed type is "asyncspark.sync_rdd.RDD[tuple[str, tuple[int, str]]]"' in out


def test_typos_and_wrong_types_are_errors(tmp_path):
    out, code = _mypy(tmp_path, BAD)
    assert code == 1
    assert '"RDD[int]" has no attribute "colect"' in out
    assert 'expression has type "int", variable has type "str"' in out
    assert '"SparkContext" has no attribute "parallelise"' in out
