"""``pyright --verifytypes asyncspark``: the share of the package's public symbols whose
type a library user's checker knows without inferring it.

The check fails below 95 % (the issue's target; 97.9 % on main after the helpers'
merges). The public API proper (``RDD`` with its pair, aggregate and sampling methods,
``Context``, the blocking facade, ``StorageLevel``, ``Broadcast``, ``Accumulator``,
``StatCounter``, ``BoundedFloat``, the listener events) must be complete
(``COMPLETE``). What is left below 100 % is chiefly the wire messages
(``transport/messages``), whose bare ``list``/``dict`` field annotations are their
msgpack schema (read by ``transport/codec.py``) and so stay as they are.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIN_SCORE = 0.95
# Modules whose every exported symbol must be fully typed: the API users program against.
COMPLETE = ("asyncspark.rdd", "asyncspark.rdd_actions", "asyncspark.pairs",
            "asyncspark.aggregations",
            "asyncspark.sampling", "asyncspark.context", "asyncspark.sync",
            "asyncspark.sync_rdd", "asyncspark.sync_actions", "asyncspark.approx",
            "asyncspark.broadcast", "asyncspark.accumulators", "asyncspark.statcounter",
            "asyncspark.storage.level", "asyncspark.conf", "asyncspark.errors",
            "asyncspark.taskcontext", "asyncspark.ui.tracker", "asyncspark.listener")


def _pyright() -> list[str]:
    exe = shutil.which("pyright")
    if exe is None:
        pytest.skip("pyright (the test extra) is not installed")
    return [exe]


@pytest.fixture(scope="module")
def report() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([*_pyright(), "--verifytypes", "asyncspark", "--ignoreexternal",
                          "--outputjson"], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=300)
    if not out.stdout.strip():
        pytest.fail(f"pyright printed no report: {out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    assert data["typeCompleteness"]["packageRootDirectory"] == str(ROOT / "asyncspark"), (
        "pyright checked another copy of asyncspark than this checkout")
    return data


def _incomplete(report: dict) -> list[dict]:
    return [s for s in report["typeCompleteness"]["symbols"]
            if s["isExported"] and (not s["isTypeKnown"] or s["isTypeAmbiguous"])]


def test_score_does_not_drop(report):
    tc = report["typeCompleteness"]
    score = tc["completenessScore"]
    worst = sorted(s["name"] for s in _incomplete(report))[:40]
    assert score >= MIN_SCORE, (
        f"verifytypes score {score:.1%} < {MIN_SCORE:.1%}; incomplete symbols, first 40: "
        + ", ".join(worst))
    print(f"verifytypes: {score:.1%} ({tc['exportedSymbolCounts']})", file=sys.stderr)


def test_public_api_is_completely_typed(report):
    missing = sorted(s["name"] for s in _incomplete(report)
                     if s["name"].startswith(tuple(m + "." for m in COMPLETE))
                     or s["name"] in COMPLETE)
    assert not missing, "public API symbols with unknown or ambiguous types: " + ", ".join(
        missing)


USER_FILE = '''
from asyncspark import SparkContext


def job(sc: SparkContext) -> list[tuple[str, int]]:
    words = sc.parallelize(["a b", "b"]).flatMap(str.split)
    return words.map(lambda w: (w, len(w))).reduceByKey(max).collect()


def wrong(sc: SparkContext) -> str:
    return sc.parallelize([1]).first()
'''


def test_an_editable_install_is_resolved_from_a_users_file(tmp_path):
    """The README's ``pip install -e .``: pyright, run on a file outside the checkout with
    the installed environment only, finds asyncspark and its types."""
    import importlib.metadata

    # The installed distribution is the one pip recorded (direct_url.json): the checkout's
    # own asyncspark.egg-info, found first on a path that holds the checkout, has none.
    dists = list(importlib.metadata.distributions(name="asyncspark"))
    if not dists:
        pytest.skip("asyncspark is not installed (pip install -e .)")
    urls = [json.loads(d.read_text("direct_url.json") or "{}").get("url", "") for d in dists]
    location = next((u for u in urls if u), "")
    if location != ROOT.as_uri():
        pytest.skip(f"asyncspark is installed from {location or 'an index'}, not this checkout")
    (tmp_path / "user.py").write_text(USER_FILE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([*_pyright(), "--pythonpath", sys.executable, "--outputjson",
                          "user.py"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    messages = [d["message"] for d in json.loads(out.stdout)["generalDiagnostics"]]
    assert not [m for m in messages if "could not be resolved" in m], messages
    assert len(messages) == 1, messages
    assert '"int" is not assignable to return type "str"' in messages[0], messages
