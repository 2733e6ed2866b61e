"""Word count through the shuffle, against the same per-record pipeline in one plain
Python process, measured in the same run.

Usage::

    python benchmarks/wordcount.py [--mb 256] [--partitions 16] [--runs 3] [--quick]
                                   [--json] [--vs pyspark] [--data DIR] [--conf KEY=VALUE]

The pipeline (the "word count" case of ``shared/bench/README.md``), on ``local[2]``::

    sc.textFile(path, P).flatMap(str.split).map(lambda w: (w, 1))
      .reduceByKey(operator.add).collect()

Side by side, in the same invocation and in rotating order: the same per-record pipeline
in one plain Python process (reads the lines, splits them, maps each word to ``(w, 1)``
and folds the pairs into a dict with ``operator.add``), PySpark ``local[2]`` (the same
RDD pipeline) and Dask's bag on 2 single-threaded workers
(``read_text(path, blocksize).str.split().flatten().frequencies()``, per-record Python
too; word count has no vectorised dataframe form here). Peers run when installed
(``bash benchmarks/peers/setup.sh``, then run this with ``benchmarks/.venv/bin/python``).
Each run starts a fresh context (its start-up is reported apart; the figure compared is
the job's wall time); next to it each system's floor, the input pipeline + ``count()``
(no shuffle) right after the job. Every system's counts are checked against the
baseline's.

The input: words of a fixed 50,000-word vocabulary with a Zipf (s = 1) distribution, 8-12
words a line, seed 42, generated once and cached under ``benchmarks/data/`` (or
``--data``). ``../shared/bench/gen_words.py`` generates it when that checkout is there;
otherwise ``write_words`` below does, with the same algorithm and the same bytes. Both
need numpy (only for generating; a cached input needs nothing).

Targets (ratios of this run, 256 MiB only): asyncspark / baseline <= 0.52 (two cores:
0.5 at best), and at least 3.5x faster than PySpark.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import operator
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import peers
from common import (
    DATA_DIR,
    ChildSampler,
    StageMetrics,
    check_equal,
    child_pids,
    command_line,
    environment,
    fmt,
    parse_conf,
    progress,
    pyspark_context,
    ratio,
    run_line,
    shared_script,
    system_median,
    time_medians,
    timed,
    timed_cpu,
    verdict,
)

import asyncspark

FULL_MB = 256
TARGET_VS_BASELINE = 0.52  # asyncspark / baseline, at most
TARGET_VS_PYSPARK = 3.5  # PySpark / asyncspark, at least (same run)
SEED, VOCAB, ZIPF_S = 42, 50_000, 1.0
NUMPY_MISSING = (
    "wordcount.py needs numpy to generate its input file (only for that: a cached input "
    "in {data} needs nothing). Install it with `pip install numpy` (or asyncspark's "
    "benchmark extra), or pass --data DIR holding {name}.")


# -- the input ----------------------------------------------------------------------------

def write_words(out: Path, mb: float, seed: int = SEED, vocab: int = VOCAB,
                zipf_s: float = ZIPF_S) -> str:
    """Write the word-count input to ``out``; its sha256.

    The algorithm of ``shared/bench/gen_words.py`` (so the same seed gives the same
    bytes): a vocabulary of distinct random lowercase words of 2-10 letters; then, in
    blocks of 100,000 lines of 8-12 words, words drawn by inverse CDF from the Zipf
    weights rank**-s; the file is cut at the last whole line within ``mb`` MiB.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < vocab:
        length = int(rng.integers(2, 11))
        w = "".join(letters[rng.integers(0, 26, size=length)])
        if w not in seen:
            seen.add(w)
            words.append(w)
    weights = np.arange(1, vocab + 1, dtype=np.float64) ** (-zipf_s)
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    table = np.array(words, dtype=object)

    target = int(mb * 1024 * 1024)
    written = 0
    digest = hashlib.sha256()
    with open(out, "wb") as f:
        while written < target:
            per_line = rng.integers(8, 13, size=100_000)
            drawn = table[np.searchsorted(cdf, rng.random(int(per_line.sum())), side="right")]
            bounds = itertools.accumulate(per_line.tolist(), initial=0)
            starts = list(bounds)
            lines = [" ".join(drawn[a:b]) for a, b in itertools.pairwise(starts)]
            buf = ("\n".join(lines) + "\n").encode("ascii")
            if written + len(buf) > target:  # whole lines only
                cut = buf.rfind(b"\n", 0, target - written) + 1
                if cut <= 0:
                    cut = buf.find(b"\n") + 1
                buf = buf[:cut]
            f.write(buf)
            digest.update(buf)
            written += len(buf)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def ensure_input(mb: float, data_dir: Path) -> dict[str, Any]:
    """The cached input of ``mb`` MiB (generated on first use): path, size, sha256 and
    the generator used. Exits with a message when numpy is needed and missing."""
    name = f"words-{mb:g}mb-seed{SEED}.txt"
    path = data_dir / name
    if path.exists():
        return {"path": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path),
                "generator": "cached"}
    try:
        import numpy  # noqa: F401
    except ImportError:
        sys.exit(NUMPY_MISSING.format(data=data_dir, name=name))
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    shared = shared_script("gen_words.py")
    progress(f"generating {path} ({mb:g} MiB) with "
             f"{shared or 'benchmarks/wordcount.py:write_words'}")
    try:
        if shared is not None:
            subprocess.run([sys.executable, str(shared), str(tmp), "--mb", str(mb),
                            "--seed", str(SEED)], check=True, stdout=subprocess.DEVNULL)
            digest, generator = _sha256(tmp), str(shared)
        else:
            digest, generator = write_words(tmp, mb), "benchmarks/wordcount.py"
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest,
            "generator": generator}


# -- the three systems --------------------------------------------------------------------

def run_baseline(path: str) -> tuple[float, float, dict[str, int]]:
    """The same per-record pipeline in this process: ``(seconds, CPU seconds, counts)``."""
    def job() -> dict[str, int]:
        add = operator.add
        counts: dict[str, int] = {}
        with open(path, encoding="utf-8") as f:
            pairs = map(lambda w: (w, 1), itertools.chain.from_iterable(map(str.split, f)))
            for k, v in pairs:
                if k in counts:
                    counts[k] = add(counts[k], v)
                else:
                    counts[k] = v
        return counts

    return timed_cpu(job)


def _pair(w: str) -> tuple[str, int]:
    return (w, 1)


async def _asyncspark(path: str, partitions: int, conf: dict[str, str]) -> dict[str, Any]:
    clock = time.perf_counter
    others = child_pids()  # e.g. PySpark's JVM, which outlives its context
    t0 = clock()
    sc = asyncspark.Context("local[2]", app_name="wordcount-bench", conf=conf)
    metrics = StageMetrics()
    sc.addSparkListener(metrics)
    await sc.start()
    started = clock()
    sampler = ChildSampler(0.2, exclude=others)
    procs = None
    try:
        sampler.start()
        t = clock()
        pairs = await (sc.textFile(path, partitions).flatMap(str.split)
                       .map(lambda w: (w, 1)).reduceByKey(operator.add).collect())
        job = clock() - t
        procs = sampler.stop()
        t = clock()
        floor_n = await sc.textFile(path, partitions).flatMap(str.split).map(_pair).count()
        floor = clock() - t
    finally:
        if procs is None:
            procs = sampler.stop()
        await sc.stop()
    return {"s": job, "start_s": started - t0, "pairs": pairs, **procs,
            "floor_s": floor, "floor_count": floor_n, "stages": metrics.summary()}


def run_asyncspark(path: str, partitions: int, conf: dict[str, str]) -> dict[str, Any]:
    return asyncspark.run(_asyncspark(path, partitions, conf))


def run_pyspark(path: str, partitions: int) -> dict[str, Any]:
    sc = pyspark_context("wordcount-bench")
    try:
        s, pairs = timed(lambda: sc.textFile(path, partitions).flatMap(str.split)
                         .map(lambda w: (w, 1)).reduceByKey(operator.add).collect())
        floor, floor_n = timed(lambda: sc.textFile(path, partitions).flatMap(str.split)
                               .map(_pair).count())
    finally:
        sc.stop()
    return {"s": s, "pairs": pairs, "floor_s": floor, "floor_count": floor_n}


def run_dask_bag(path: str, partitions: int) -> dict[str, Any]:
    import dask.bag as db

    blocksize = -(-os.path.getsize(path) // partitions)  # about `partitions` blocks
    with peers.dask_client(2):
        words = db.read_text(path, blocksize=blocksize).str.split().flatten()
        s, pairs = timed(lambda: words.frequencies().compute())
        floor, floor_n = timed(lambda: words.map(_pair).count().compute())
    return {"s": s, "pairs": pairs, "floor_s": floor, "floor_count": floor_n}


# -- the report ---------------------------------------------------------------------------


def measure(args: argparse.Namespace, conf: dict[str, str],
            chosen: list[str]) -> dict[str, Any]:
    data = ensure_input(args.mb, Path(args.data))
    path = data["path"]
    systems = ["asyncspark", "baseline"]
    if "pyspark" in chosen:
        systems.append("pyspark")
    if "dask" in chosen:
        systems.append("dask-bag")
    runs = []
    for i in range(args.runs):
        run: dict[str, Any] = {}
        counts: dict[str, dict[str, int]] = {}
        for system in peers.rotate(systems, i):
            if system == "baseline":
                s, cpu, counts[system] = run_baseline(path)
                run[system] = {"s": s, "cpu_s": cpu}
                continue
            if system == "asyncspark":
                figures = run_asyncspark(path, args.partitions, conf)
            elif system == "pyspark":
                figures = run_pyspark(path, args.partitions)
            else:
                figures = run_dask_bag(path, args.partitions)
            pairs = figures.pop("pairs")
            counts[system] = dict(pairs)
            if len(counts[system]) != len(pairs):
                raise AssertionError(f"{system} returned a word more than once")
            run[system] = figures
        expected = counts["baseline"]
        words = sum(expected.values())
        for system in systems:
            check_equal(f"{system} word counts", counts[system], expected)
            if run[system].get("floor_count") not in (None, words):
                raise AssertionError(f"{system}'s input counted {run[system]['floor_count']}"
                                     f" words, the baseline {words}")
        run["words"], run["distinct"] = words, len(expected)
        runs.append(run)
        progress(f"run {i + 1}/{args.runs}: " + run_line(run, peers.rotate(systems, i)))

    med = time_medians(runs, systems)
    for key in ("cpu_s", "start_s", "peak_rss_max_mib", "peak_rss_total_mib"):
        med["asyncspark"][key] = system_median(runs, "asyncspark", key)
    med["baseline"]["cpu_s"] = system_median(runs, "baseline", "cpu_s")
    a, b = med["asyncspark"]["s"], med["baseline"]["s"]
    speedup = {s: ratio(med[s]["s"], a) for s in systems if s != "asyncspark"}
    full = args.mb == FULL_MB
    targets = {}
    if full:
        targets = {
            "vs_baseline": _target(f"<= {TARGET_VS_BASELINE}x one process", a / b, "<=",
                                   TARGET_VS_BASELINE),
            "vs_pyspark": _target(f">= {TARGET_VS_PYSPARK}x faster than PySpark",
                                  speedup.get("pyspark"), ">=", TARGET_VS_PYSPARK),
        }
    return {
        "command": command_line(),
        "params": {"mb": args.mb, "partitions": args.partitions, "runs": args.runs,
                   "quick": args.quick, "conf": conf, "master": "local[2]"},
        "input": data,
        "environment": environment(),
        "systems": systems,
        "runs": runs,
        "words": runs[0]["words"],
        "distinct": runs[0]["distinct"],
        "median": med,
        "mb_per_s": data["bytes"] / 2**20 / a,
        "speedup": speedup,
        "ratio_vs_baseline": a / b,
        "cpu_ratio_vs_baseline": ratio(med["asyncspark"]["cpu_s"], med["baseline"]["cpu_s"]),
        "targets": targets,
    }


def _target(label: str, value: float | None, op: str, threshold: float) -> dict[str, Any]:
    ok = None if value is None else (value <= threshold if op == "<=" else value >= threshold)
    return {"target": label, "value": value, "pass": ok}


def format_table(r: dict[str, Any]) -> str:
    p, med, inp, env = r["params"], r["median"], r["input"], r["environment"]
    mib = inp["bytes"] / 2**20
    lines = [
        f"$ {r['command']}",
        f"word count, median of {p['runs']} run(s), {p['partitions']} partitions, systems in "
        f"rotating order; Python {env['python']}, {env['cpus']} CPUs, load avg "
        f"{env['loadavg']}" + (f"; conf {p['conf']}" if p["conf"] else ""),
        f"asyncspark {env['asyncspark']} local[2]; "
        + "; ".join(f"{k} {v}" for k, v in r["peer_versions"].items())
        + (" (PySpark local[2]; Dask: 2 single-threaded worker processes)"
           if r["peer_versions"] else ""),
        f"input {inp['path']}: {mib:,.1f} MiB, {r['words']:,} words, {r['distinct']:,} "
        f"distinct; sha256 {inp['sha256'][:16]}...",
    ]
    for peer, why in r["peers_skipped"].items():
        if why != "not asked":
            lines.append(f"{peer}: skipped, {why}")
    lines += ["", f"{'':26}{'job s':>9}{'MB/s':>8}{'floor s':>9}{'asyncspark':>12}"
                  f"{'CPU s':>8}", f"{'':26}{'':>9}{'':>8}{'':>9}{'x faster':>12}"]
    for s in r["systems"]:
        m = med[s]
        label = {"asyncspark": "asyncspark (job)", "baseline": "1 plain process",
                 "pyspark": "PySpark local[2]", "dask-bag": "Dask bag (per record)"}[s]
        lines.append(f"{label:26}{fmt(m['s']):>9}{fmt(mib / m['s'], 1):>8}"
                     f"{fmt(m['floor_s']):>9}"
                     f"{'' if s == 'asyncspark' else fmt(r['speedup'][s], 2, 'x'):>12}"
                     f"{fmt(m.get('cpu_s'), 1):>8}")
    a = med["asyncspark"]
    lines += [
        f"{'asyncspark context start':26}{fmt(a['start_s']):>9}",
        f"asyncspark / 1 process: {fmt(r['ratio_vs_baseline'], 2)}x wall (2 cores: 0.5x at "
        f"best), {fmt(r['cpu_ratio_vs_baseline'], 2)}x CPU; executors' peak RSS "
        f"{fmt(a.get('peak_rss_max_mib'), 0)} MiB (largest), "
        f"{fmt(a.get('peak_rss_total_mib'), 0)} MiB (both)",
        "",
    ]
    if r["targets"]:
        lines.append("targets (256 MiB, ratios of this run):")
        for t in r["targets"].values():
            lines.append(f"  {t['target']:>34}   measured {fmt(t['value'], 2):>7}   "
                         f"{verdict(t['pass'])}")
    else:
        lines.append(f"targets: only at {FULL_MB} MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="word count through asyncspark's shuffle side by side with PySpark, "
                    "Dask's bag and one plain Python process")
    parser.add_argument("--mb", type=float, default=None,
                        help=f"input size in MiB (default {FULL_MB}; 2 with --quick)")
    parser.add_argument("--partitions", type=int, default=16,
                        help="textFile minPartitions (default 16)")
    parser.add_argument("--runs", type=int, default=None,
                        help="repetitions, fresh context each (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 MiB and one run (figures not meaningful)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    peers.add_vs_argument(parser)
    parser.add_argument("--data", default=str(DATA_DIR),
                        help="where the generated input is cached (default benchmarks/data)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="asyncspark configuration, e.g. "
                             "asyncspark.shuffle.memoryBudget=64m (repeatable)")
    args = parser.parse_args(argv)
    args.mb = args.mb if args.mb is not None else (2.0 if args.quick else float(FULL_MB))
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if args.runs < 1 or args.partitions < 1 or args.mb <= 0:
        parser.error("--runs and --partitions must be at least 1, --mb positive")
    conf = parse_conf(parser, args.conf)
    progress(f"$ {command_line()}")
    chosen, skipped = peers.select(args.vs)
    report = measure(args, conf, chosen)
    report["peers"], report["peers_skipped"] = chosen, skipped
    report["peer_versions"] = peers.versions(chosen)
    print(json.dumps(report) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
