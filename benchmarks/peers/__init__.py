"""The peers the benchmarks measure side by side with asyncspark: PySpark ``local[2]`` and a
Dask ``distributed`` cluster of 2 single-threaded worker processes.

They are never asyncspark dependencies: ``bash benchmarks/peers/setup.sh`` installs them
(with a Java runtime for PySpark) into ``benchmarks/.venv``, whose interpreter runs the
benchmarks (it sees asyncspark's own environment too)::

    bash benchmarks/peers/setup.sh
    benchmarks/.venv/bin/python benchmarks/shuffle.py

Every benchmark takes ``--vs``: ``all`` (the default: every peer that is installed),
``none``, or one of ``pyspark``, ``dask`` (repeatable). A peer asked for by name but not
installed is reported as skipped, with why, and so is every peer under ``--vs all`` when
none is installed (then only asyncspark and the one-process baseline run).

Dask runs in two flavours, labelled apart in every report: ``dask-bag`` (the same
per-record Python work as asyncspark and PySpark) and ``dask-df`` (a vectorised
dataframe whose columns numpy generates: the same shapes and counts, not the same
records, and no per-record Python at all).

Imports nothing heavy at module level: each peer's modules are imported when it runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PEERS = ("pyspark", "dask")
SETUP = "bash benchmarks/peers/setup.sh"
VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def why_missing(peer: str) -> str | None:
    """Why ``peer`` cannot run here, or None when it can."""
    modules = {"pyspark": ("pyspark",), "dask": ("dask", "distributed", "pandas", "pyarrow")}
    missing = [m for m in modules[peer] if not _importable(m)]
    if missing:
        hint = (f"run the benchmark with {VENV_PYTHON}" if VENV_PYTHON.exists()
                else f"install the peers with `{SETUP}`")
        return f"`import {', '.join(missing)}` fails in {sys.executable} ({hint})"
    if peer == "pyspark" and not _java_ok():
        return "PySpark needs Java 17+ (`java` not on PATH): run `" + SETUP + "`"
    return None


def _java_ok() -> bool:
    import shutil

    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


def add_vs_argument(parser: Any) -> None:
    parser.add_argument(
        "--vs", action="append", default=None, choices=("all", "none", *PEERS),
        metavar="PEER", help="peers measured side by side: all (default: every one "
        "installed), none, pyspark, dask (repeatable; install them with "
        f"`{SETUP}`)")


def select(vs: Sequence[str] | None, quiet: bool = False) -> tuple[list[str], dict[str, str]]:
    """The peers to run for ``--vs`` values and ``{peer: why skipped}``."""
    asked = list(dict.fromkeys(vs or ["all"]))
    if "none" in asked:
        return [], {p: "not asked (--vs none)" for p in PEERS}
    wanted = list(PEERS) if "all" in asked else [p for p in PEERS if p in asked]
    chosen, skipped = [], {}
    for peer in PEERS:
        if peer not in wanted:
            skipped[peer] = "not asked"
            continue
        why = why_missing(peer)
        if why is None:
            chosen.append(peer)
        else:
            skipped[peer] = why
            if not quiet:
                print(f"--vs {peer}: skipped, {why}", file=sys.stderr, flush=True)
    return chosen, skipped


def rotate(systems: Sequence[str], i: int) -> list[str]:
    """``systems`` starting at the ``i``-th (run ``i`` of a benchmark), so that none
    always gets the cooler machine."""
    k = i % len(systems) if systems else 0
    return [*systems[k:], *systems[:k]]


def versions(peers: Sequence[str]) -> dict[str, str]:
    out = {}
    if "pyspark" in peers:
        import pyspark

        out["pyspark"] = pyspark.__version__
    if "dask" in peers:
        import dask
        import distributed

        out["dask"] = f"{dask.__version__} (distributed {distributed.__version__})"
    return out


@contextlib.contextmanager
def dask_client(workers: int = 2) -> Iterator[Any]:
    """A ``distributed`` client of a fresh local cluster: ``workers`` single-threaded
    worker processes (asyncspark's ``local[2]`` is 2 executor processes); closed after.
    The workers get this process's ``sys.path`` (they import the benchmarks' modules)."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="distributed")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        path = list(sys.path)
        client.run(_extend_path, path)
        yield client
    finally:
        client.close()
        cluster.close()


def _extend_path(path: list[str]) -> None:
    for entry in path:
        if entry not in sys.path:
            sys.path.append(entry)
