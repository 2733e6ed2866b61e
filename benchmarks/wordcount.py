"""Word count through the shuffle, against the same per-record pipeline in one plain
Python process, measured in the same run.

Usage::

    python benchmarks/wordcount.py [--mb 256] [--partitions 16] [--runs 3] [--quick]
                                   [--json] [--vs pyspark] [--data DIR] [--conf KEY=VALUE]

The pipeline (the "word count" case of ``shared/bench/README.md``), on ``local[2]``::

    sc.textFile(path, P).flatMap(str.split).map(lambda w: (w, 1))
      .reduceByKey(operator.add).collect()

Baseline: one process reads the lines, splits them, maps each word to ``(w, 1)`` and
folds the pairs into a dict with ``operator.add``. Each run starts a fresh context (its
start-up is reported apart; the figure compared is the job's wall time). asyncspark's
counts are checked against the baseline's.

The input: words of a fixed 50,000-word vocabulary with a Zipf (s = 1) distribution, 8-12
words a line, seed 42, generated once and cached under ``benchmarks/data/`` (or
``--data``). ``../shared/bench/gen_words.py`` generates it when that checkout is there;
otherwise ``write_words`` below does, with the same algorithm and the same bytes. Both
need numpy (only for generating; a cached input needs nothing).

Targets: asyncspark / baseline <= 0.7, and at least 4x faster than PySpark's 41.8 s
(the reference figure, PySpark 4.3.0 ``local[2]``), i.e. <= 10.45 s at 256 MiB.
``--vs pyspark`` also runs PySpark ``local[2]`` side by side when ``import pyspark`` works.
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

from common import (
    DATA_DIR,
    ChildSampler,
    StageMetrics,
    check_equal,
    command_line,
    environment,
    fmt,
    medians,
    parse_conf,
    progress,
    pyspark_context,
    pyspark_version,
    ratio,
    report_header,
    shared_script,
    timed_cpu,
    verdict,
)

import asyncspark

REFERENCE_PYSPARK_S = 41.8  # word count 256 MiB, PySpark 4.3.0 local[2]
REFERENCE_MB = 256
TARGET_VS_BASELINE = 0.7  # asyncspark / baseline, at most
TARGET_VS_PYSPARK = 4.0  # PySpark reference / asyncspark, at least
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


async def _asyncspark(path: str, partitions: int, conf: dict[str, str]) -> dict[str, Any]:
    clock = time.perf_counter
    t0 = clock()
    sc = asyncspark.Context("local[2]", app_name="wordcount-bench", conf=conf)
    metrics = StageMetrics()
    sc.addSparkListener(metrics)
    await sc.start()
    started = clock()
    sampler = ChildSampler(0.2)
    try:
        sampler.start()
        t = clock()
        pairs = await (sc.textFile(path, partitions).flatMap(str.split)
                       .map(lambda w: (w, 1)).reduceByKey(operator.add).collect())
        job = clock() - t
    finally:
        procs = sampler.stop()
        await sc.stop()
    return {"job_s": job, "start_s": started - t0, "pairs": pairs, **procs,
            "stages": metrics.summary()}


def run_asyncspark(path: str, partitions: int, conf: dict[str, str]) -> dict[str, Any]:
    return asyncspark.run(_asyncspark(path, partitions, conf))


def run_pyspark(path: str, partitions: int) -> tuple[float, dict[str, int]]:
    sc = pyspark_context("wordcount-bench")
    try:
        t = time.perf_counter()
        pairs = (sc.textFile(path, partitions).flatMap(str.split)
                 .map(lambda w: (w, 1)).reduceByKey(operator.add).collect())
        elapsed = time.perf_counter() - t
    finally:
        sc.stop()
    return elapsed, dict(pairs)


# -- the report ---------------------------------------------------------------------------

def measure(args: argparse.Namespace, conf: dict[str, str], vs_pyspark: bool) -> dict[str, Any]:
    data = ensure_input(args.mb, Path(args.data))
    path = data["path"]
    runs = []
    for i in range(args.runs):
        first_asyncspark = i % 2 == 0  # alternate which system goes first
        run: dict[str, Any] = {}
        if not first_asyncspark:
            run["baseline_s"], run["baseline_cpu_s"], expected = run_baseline(path)
        a = run_asyncspark(path, args.partitions, conf)
        if first_asyncspark:
            run["baseline_s"], run["baseline_cpu_s"], expected = run_baseline(path)
        counts = dict(a["pairs"])
        check_equal("word counts", counts, expected)
        if len(counts) != len(a["pairs"]):
            raise AssertionError("collect() returned a word more than once")
        run.update(asyncspark_s=a["job_s"], start_s=a["start_s"], words=sum(counts.values()),
                   distinct=len(counts), asyncspark_cpu_s=a["cpu_s"],
                   peak_rss_max_mib=a["peak_rss_max_mib"],
                   peak_rss_total_mib=a["peak_rss_total_mib"], stages=a["stages"])
        if vs_pyspark:
            run["pyspark_s"], spark_counts = run_pyspark(path, args.partitions)
            check_equal("PySpark word counts", spark_counts, expected)
        runs.append(run)
        progress(f"run {i + 1}/{args.runs}: asyncspark {run['asyncspark_s']:.2f} s "
                 f"(start {run['start_s']:.2f} s), baseline {run['baseline_s']:.2f} s"
                 + (f", PySpark {run['pyspark_s']:.2f} s" if vs_pyspark else ""))

    med = medians(runs)
    a, b = med["asyncspark_s"], med["baseline_s"]
    full = args.mb == REFERENCE_MB
    vs_ref = REFERENCE_PYSPARK_S / a if full else None
    return {
        "command": command_line(),
        "params": {"mb": args.mb, "partitions": args.partitions, "runs": args.runs,
                   "quick": args.quick, "conf": conf, "master": "local[2]"},
        "input": data,
        "environment": environment(),
        "runs": runs,
        "median": med,
        "mb_per_s": data["bytes"] / 2**20 / a,
        "ratio_vs_baseline": a / b,
        "cpu_ratio_vs_baseline": ratio(med.get("asyncspark_cpu_s"), med.get("baseline_cpu_s")),
        "pyspark": {
            "reference_s": REFERENCE_PYSPARK_S,
            "reference_at_mb": REFERENCE_MB,
            "speedup_vs_reference": vs_ref,
            "measured": vs_pyspark,
            "measured_s": med.get("pyspark_s"),
            "speedup_vs_measured": ratio(med.get("pyspark_s"), a),
            "skipped": None if vs_pyspark else args.pyspark_skip,
        },
        "targets": {
            "vs_baseline": {"target": f"<= {TARGET_VS_BASELINE}", "value": a / b,
                            "pass": a / b <= TARGET_VS_BASELINE},
            "vs_pyspark_reference": {
                "target": f">= {TARGET_VS_PYSPARK}x faster than {REFERENCE_PYSPARK_S} s "
                          f"(<= {REFERENCE_PYSPARK_S / TARGET_VS_PYSPARK:.2f} s)",
                "value": vs_ref,
                "pass": None if vs_ref is None else vs_ref >= TARGET_VS_PYSPARK},
        },
    }


def format_table(r: dict[str, Any]) -> str:
    p, med, inp = r["params"], r["median"], r["input"]
    ps = r["pyspark"]
    lines = [
        *report_header("word count", r),
        f"input {inp['path']}: {inp['bytes'] / 2**20:,.1f} MiB, {med['words']:,.0f} words, "
        f"{med['distinct']:,.0f} distinct; sha256 {inp['sha256'][:16]}...",
        f"median of {p['runs']} run(s), {p['partitions']} partitions",
        "",
        f"{'':28}{'seconds':>10}{'MB/s':>9}{'vs baseline':>13}{'CPU s':>9}"
        f"{'CPU vs base':>13}",
        f"{'asyncspark (job)':28}{fmt(med['asyncspark_s']):>10}{fmt(r['mb_per_s'], 1):>9}"
        f"{fmt(r['ratio_vs_baseline'], 2, 'x'):>13}{fmt(med.get('asyncspark_cpu_s'), 1):>9}"
        f"{fmt(r['cpu_ratio_vs_baseline'], 2, 'x'):>13}",
        f"{'baseline (1 process)':28}{fmt(med['baseline_s']):>10}"
        f"{fmt(inp['bytes'] / 2**20 / med['baseline_s'], 1):>9}{'1.00x':>13}"
        f"{fmt(med['baseline_cpu_s'], 1):>9}{'1.00x':>13}",
        f"{'asyncspark context start':28}{fmt(med['start_s']):>10}",
    ]
    if ps["measured"]:
        lines.append(f"{'PySpark local[2] (measured)':28}{fmt(ps['measured_s']):>10}"
                     f"{'':9}{fmt(ratio(ps['measured_s'], med['baseline_s']), 2, 'x'):>13}")
    lines.append(f"{'PySpark reference':28}{fmt(ps['reference_s']):>10}"
                 f"{fmt(REFERENCE_MB / ps['reference_s'], 1):>9}   (256 MiB, not measured here)")
    lines.append(f"executors' peak RSS: {fmt(med.get('peak_rss_max_mib'), 0)} MiB (largest), "
                 f"{fmt(med.get('peak_rss_total_mib'), 0)} MiB (both); CPU s = CPU time "
                 f"of both executors / of the baseline process")
    lines.append("")
    if ps["measured"]:
        lines.append(f"vs PySpark measured: {fmt(ps['speedup_vs_measured'])}x faster")
    else:
        lines.append(f"PySpark side by side: skipped ({ps['skipped']})")
    lines.append("targets:")
    for name, t in r["targets"].items():
        value = t["value"]
        lines.append(f"  {name:22} {t['target']:>44}   measured {fmt(value, 2):>7}   "
                     f"{verdict(t['pass'])}")
    if r["targets"]["vs_pyspark_reference"]["pass"] is None:
        lines.append(f"  (the PySpark reference is for {REFERENCE_MB} MiB: no comparison "
                     f"at {p['mb']:g} MiB)")
    if len(r["runs"]) > 1:
        lines.append("per run (asyncspark / baseline s): " + ", ".join(
            f"{x['asyncspark_s']:.2f}/{x['baseline_s']:.2f}" for x in r["runs"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="word count through asyncspark's shuffle vs one plain Python process")
    parser.add_argument("--mb", type=float, default=None,
                        help=f"input size in MiB (default {REFERENCE_MB}; 2 with --quick)")
    parser.add_argument("--partitions", type=int, default=16,
                        help="textFile minPartitions (default 16)")
    parser.add_argument("--runs", type=int, default=None,
                        help="repetitions, fresh context each (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 MiB and one run (figures not meaningful)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--vs", choices=("pyspark",), default=None,
                        help="also run PySpark local[2] side by side (if importable)")
    parser.add_argument("--data", default=str(DATA_DIR),
                        help="where the generated input is cached (default benchmarks/data)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="asyncspark configuration, e.g. "
                             "asyncspark.shuffle.memoryBudget=64m (repeatable)")
    args = parser.parse_args(argv)
    args.mb = args.mb if args.mb is not None else (2.0 if args.quick else float(REFERENCE_MB))
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if args.runs < 1 or args.partitions < 1 or args.mb <= 0:
        parser.error("--runs and --partitions must be at least 1, --mb positive")
    conf = parse_conf(parser, args.conf)

    vs_pyspark = False
    args.pyspark_skip = "not asked (--vs pyspark)"
    if args.vs == "pyspark":
        version = pyspark_version()
        vs_pyspark = version is not None
        args.pyspark_skip = None if vs_pyspark else "`import pyspark` fails here"
        if not vs_pyspark:
            progress("--vs pyspark: skipped, `import pyspark` fails here")
    progress(f"$ {command_line()}")
    report = measure(args, conf, vs_pyspark)
    print(json.dumps(report) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
