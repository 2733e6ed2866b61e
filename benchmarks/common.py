"""Helpers shared by the shuffle benchmarks (``wordcount.py``, ``shuffle.py``).

Kept free of heavy imports at module level: PySpark workers import this module when it
provides the reference generators (``--vs pyspark``), so it must import with the standard
library only.

- The reference generators of ``shared/bench/workloads.py`` (``gen_pairs``,
  ``gen_sort_keys``): imported from ``../shared/bench`` beside the repository when it is
  there, else the same formulas written here (``load_workloads``); their vectorised
  counterparts for Dask's dataframe (``df_pairs``, ``df_sort_keys``, numpy and pandas
  imported when called).
- ``ChildSampler``: peak resident memory and CPU time of the driver's child processes
  (the executors), sampled every 0.2 s on a thread.
- ``StageMetrics``: a listener summing task durations and metrics per stage.
- Argument, environment and report helpers.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SHARED_BENCH = ROOT.parent / "shared" / "bench"
DATA_DIR = BENCH_DIR / "data"
P = 16  # partitions of every reference workload


# -- the reference workloads (same formulas as shared/bench/workloads.py) -----------------

MULT = 2654435761  # odd and not divisible by 5: i * MULT mod 10**k is a bijection


def part_range(part: int, nparts: int, total: int) -> tuple[int, int]:
    """Global index range [lo, hi) of partition ``part`` out of ``nparts``."""
    return part * total // nparts, (part + 1) * total // nparts


def gen_pairs(part: int, nparts: int, total: int, nkeys: int) -> list[tuple[int, int]]:
    """(key, value) int pairs; every key in [0, nkeys) appears total/nkeys times
    (nkeys = 10**k)."""
    lo, hi = part_range(part, nparts, total)
    return [((i * MULT) % nkeys, i & 127) for i in range(lo, hi)]


def gen_sort_keys(part: int, nparts: int, total: int) -> list[int]:
    """Pseudo-random 31-bit int keys, deterministic per partition."""
    import random

    lo, hi = part_range(part, nparts, total)
    r = random.Random(1_000_003 + part)
    return [r.getrandbits(31) for _ in range(hi - lo)]


def df_pairs(part: int, nparts: int, total: int, nkeys: int, plus: int = 0) -> Any:
    """``gen_pairs``'s records as a pandas frame (columns ``k``, ``v``), vectorised with
    numpy: the same keys and values (``plus`` added to the values), for Dask's dataframe."""
    import numpy as np
    import pandas as pd

    lo, hi = part_range(part, nparts, total)
    i = np.arange(lo, hi, dtype=np.int64)
    return pd.DataFrame({"k": (i * MULT) % nkeys, "v": (i & 127) + plus})


def df_sort_keys(part: int, nparts: int, total: int) -> Any:
    """As many pseudo-random 31-bit int keys as ``gen_sort_keys`` (not the same ones:
    numpy draws them), column ``k``, for Dask's dataframe."""
    import numpy as np
    import pandas as pd

    lo, hi = part_range(part, nparts, total)
    rng = np.random.default_rng(1_000_003 + part)
    return pd.DataFrame({"k": rng.integers(0, 2**31, hi - lo, dtype=np.int64)})


def shared_script(name: str) -> Path | None:
    """``../shared/bench/<name>`` when this checkout has it (not in a clean clone)."""
    path = SHARED_BENCH / name
    return path if path.is_file() else None


def load_workloads() -> tuple[ModuleType, str]:
    """The module providing ``gen_pairs``/``gen_sort_keys`` and where it came from.

    ``shared/bench/workloads.py`` is imported by name after putting its directory on
    ``sys.path``: executors get the driver's ``sys.path``, so they import it too.
    """
    if shared_script("workloads.py") is not None:
        if str(SHARED_BENCH) not in sys.path:
            sys.path.append(str(SHARED_BENCH))
        module = importlib.import_module("workloads")
        if hasattr(module, "gen_pairs") and hasattr(module, "gen_sort_keys"):
            return module, str(SHARED_BENCH / "workloads.py")
    return sys.modules[__name__], "benchmarks/common.py (local copy of shared/bench/workloads.py)"


# -- measurement helpers ------------------------------------------------------------------

class ChildSampler:
    """Resident memory and CPU time of the children of this process (recursively: the
    executors), sampled every ``interval`` seconds on a daemon thread between ``start()``
    and ``stop()``; call ``stop()`` before the children exit.

    Figures: the highest RSS any one child reached, the highest sum over children at one
    sample, and the CPU seconds (user + system) the children used between ``start()`` and
    ``stop()`` -- unlike wall time, barely inflated when other processes compete for the
    CPUs. Needs psutil; without it the figures are None.

    ``exclude``: pids (with their descendants) left out, e.g. ``child_pids()`` taken
    before the context started: a peer's processes that outlive its run (PySpark keeps
    its JVM for the life of the process) are not asyncspark's executors.
    """

    def __init__(self, interval: float = 0.2, exclude: Iterable[int] = ()) -> None:
        self.interval = interval
        self.exclude = set(exclude)
        self.peaks: dict[int, int] = {}
        self.peak_total = 0
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import psutil
        except ImportError:
            self._psutil = None
        else:
            self._psutil = psutil

    def sample(self) -> None:
        psutil = self._psutil
        total = 0
        for child in psutil.Process().children(recursive=True):
            if child.pid in self.exclude:
                continue
            try:
                if self.exclude and self.exclude.intersection(
                        p.pid for p in child.parents()):
                    continue
                with child.oneshot():
                    rss = child.memory_info().rss
                    t = child.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            cpu = t.user + t.system
            self.cpu_first.setdefault(child.pid, cpu)
            self.cpu_last[child.pid] = cpu
            total += rss
            if rss > self.peaks.get(child.pid, 0):
                self.peaks[child.pid] = rss
        self.peak_total = max(self.peak_total, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> ChildSampler:
        if self._psutil is not None:
            self.sample()
            self._thread = threading.Thread(target=self._run, name="bench-sampler",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.sample()
        return self.result()

    def result(self) -> dict[str, Any]:
        if self._psutil is None or not self.peaks:
            return {"peak_rss_max_mib": None, "peak_rss_total_mib": None, "cpu_s": None}
        return {"peak_rss_max_mib": max(self.peaks.values()) / 2**20,
                "peak_rss_total_mib": self.peak_total / 2**20,
                "cpu_s": sum(self.cpu_last[p] - self.cpu_first[p] for p in self.cpu_last)}


def child_pids() -> set[int]:
    """The pids of this process's children now (recursively; empty without psutil)."""
    try:
        import psutil
    except ImportError:
        return set()
    return {c.pid for c in psutil.Process().children(recursive=True)}


class StageMetrics:
    """Listener: per stage, the number of tasks, summed task seconds and summed numeric
    task metrics (e.g. ``shuffle_spill_bytes``). Read it after ``Context.stop()``, which
    delivers every queued event."""

    def __init__(self) -> None:
        self.stages: dict[int, dict[str, float]] = {}

    def onTaskEnd(self, event: Any) -> None:
        s = self.stages.setdefault(event.stageId, {"tasks": 0, "task_s": 0.0})
        s["tasks"] += 1
        s["task_s"] += event.duration
        for key, value in (event.metrics or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                s[key] = s.get(key, 0) + value

    def summary(self) -> dict[str, dict[str, float]]:
        return {str(k): v for k, v in sorted(self.stages.items())}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of ``fn()``."""
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall seconds, CPU seconds of this process, result)`` of ``fn()``."""
    c = time.process_time()
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, time.process_time() - c, result


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each numeric figure over runs (keys of the first run; None when a run
    lacks it)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            continue
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        out[key] = statistics.median(values) if values else None
    return out


def parse_conf(parser: Any, items: Iterable[str]) -> dict[str, str]:
    """``--conf KEY=VALUE`` options as a dict, validated by asyncspark's configuration
    (the same parsing as ``asyncspark bench --conf``)."""
    from asyncspark.bench.params import parse_conf_items

    try:
        return parse_conf_items(list(items))
    except ValueError as exc:  # ConfigError is a ValueError too
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


def command_line() -> str:
    """How this script was run, as a shell command."""
    return shlex.join(["python", *sys.argv])


def environment(loop: str = "uvloop") -> dict[str, Any]:
    import asyncspark

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "asyncspark": asyncspark.__version__,
        "loop": loop,
        "loadavg": loadavg(),
        "git": git_revision(),
    }
    try:
        import psutil

        env["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return env


def git_revision() -> str | None:
    """The checkout's commit, ``+dirty`` when asyncspark/ has uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "asyncspark"],
                               cwd=ROOT, text=True, capture_output=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def loadavg() -> str:
    """The 1/5/15-minute load averages (the machines are shared: noisy figures show)."""
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "-"


def pyspark_version() -> str | None:
    """PySpark's version when ``import pyspark`` works (never a dependency), else None."""
    try:
        import pyspark
    except Exception:
        return None
    return getattr(pyspark, "__version__", "unknown")


def pyspark_context(app_name: str, py_files: Iterable[str] = (), cores: int = 2) -> Any:
    """A fresh PySpark ``local[cores]`` SparkContext (UI off), shipping ``py_files``."""
    from pyspark import SparkConf, SparkContext

    conf = (SparkConf().setMaster(f"local[{cores}]").setAppName(app_name)
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false"))
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    for path in py_files:
        sc.addPyFile(path)
    return sc


def fmt(v: float | None, digits: int = 2, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}{suffix}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_equal(name: str, got: Any, expected: Any) -> None:
    if got != expected:
        raise AssertionError(f"{name}: asyncspark's result differs from the baseline's "
                             f"({_short(got)} != {_short(expected)})")


def _short(x: Any) -> str:
    if isinstance(x, Mapping):
        return f"<{len(x)} keys>"
    s = repr(x)
    return s if len(s) < 80 else s[:77] + "..."


def report_header(title: str, r: dict[str, Any]) -> list[str]:
    """The first two lines of a benchmark's table: the command, and what ran where."""
    p, env = r["params"], r["environment"]
    return [
        f"$ {r['command']}",
        f"{title}, asyncspark {env['asyncspark']} local[2] vs one plain Python process; "
        f"Python {env['python']}, {env['cpus']} CPUs, load avg {env['loadavg']}"
        + (f"; conf {p['conf']}" if p["conf"] else ""),
    ]


LABELS = {"asyncspark": "asyncspark", "baseline": "1 process", "pyspark": "PySpark",
          "dask-bag": "Dask bag", "dask-df": "Dask df"}


def system_median(runs: list[dict[str, Any]], system: str, key: str) -> float | None:
    """The median of ``run[system][key]`` over the runs that have it as a number."""
    values = [r[system][key] for r in runs
              if system in r and isinstance(r[system].get(key), (int, float))]
    return statistics.median(values) if values else None


def run_line(run: dict[str, Any], order: Iterable[str]) -> str:
    """One run's times (and floors), in the order the systems ran."""
    return ", ".join(
        f"{LABELS[s]} {run[s]['s']:.2f} s" + (f" (floor {run[s]['floor_s']:.2f})"
                                              if run[s].get("floor_s") else "")
        for s in order)


def time_medians(runs: list[dict[str, Any]], systems: Iterable[str]) -> dict[str, Any]:
    """Per system, the median time and floor of the runs."""
    return {s: {"s": system_median(runs, s, "s"), "floor_s": system_median(runs, s, "floor_s")}
            for s in systems}
