"""The shuffle cases of ``shared/bench/README.md`` on asyncspark ``local[2]``, each against
the same per-record pipeline in one plain Python process, measured in the same run.

Usage::

    python benchmarks/shuffle.py [--case all|rbk1k|rbk10m|gbk10m|sort|join] [--records N]
                                 [--runs 3] [--quick] [--json] [--vs pyspark]
                                 [--timeout S] [--conf KEY=VALUE ...]

Cases (P = 16; the records are generated inside the tasks of
``sc.parallelize(range(P), P).flatMap(...)`` by ``gen_pairs``/``gen_sort_keys`` of
``shared/bench/workloads.py``, or their copy in ``common.py`` in a clean clone):

=======  =====================================================================  ========
case     pipeline                                                               PySpark
=======  =====================================================================  ========
rbk1k    20 M ``gen_pairs``, 1,000 keys, ``reduceByKey(add, P).count()``        14.3 s
rbk10m   20 M ``gen_pairs``, 10 M keys, ``reduceByKey(add, P).count()``         57.8 s
gbk10m   the same pairs, ``groupByKey(P).count()``                              64.9 s
sort     10 M ``gen_sort_keys`` as ``(k, None)``, ``sortByKey(True, P).count()`` 25.4 s
join     2 M x 2 M ``gen_pairs`` rows, 1 M keys (right values + 1), ``join``    23.2 s
=======  =====================================================================  ========

The baseline generates the same records in one process and dict-folds (``reduceByKey``),
groups into lists (``groupByKey``), sorts with the same key function (``sortByKey``) or
groups both sides and emits the pairs (``join``); asyncspark's count must equal it.
``--records N`` sets a case's records (per side for ``join``); its keys stay as in the
table unless there would be fewer than 2 records a key, then they are the largest power
of ten <= N / 2 (the 10 M-key cases and join have exactly 2 a key at full size).

Each run starts a fresh context; the figure is the job's wall time (for ``sort`` that
includes the sampling jobs of ``sortByKey``, as in PySpark). The executors' resident
memory is sampled every 0.2 s during the job (peak of the largest executor and of their
sum), next to the shuffle memory budget (``asyncspark.shuffle.memoryBudget``). Target:
at least 2x faster than the PySpark reference on each case (full size only).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import operator
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from common import (
    ChildSampler,
    P,
    StageMetrics,
    command_line,
    environment,
    fmt,
    load_workloads,
    loadavg,
    medians,
    parse_conf,
    progress,
    pyspark_context,
    pyspark_version,
    ratio,
    report_header,
    timed,
    timed_cpu,
    verdict,
)

import asyncspark
from asyncspark.conf import Config

WORKLOADS, WORKLOADS_SOURCE = load_workloads()
TARGET_VS_PYSPARK = 2.0  # PySpark reference / asyncspark, at least


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    records: int  # full size (per side for join)
    nkeys: int | None  # None: sort keys
    reference_s: float  # PySpark 4.3.0 local[2], shared/bench/README.md

    def keys_for(self, records: int) -> int | None:
        if self.nkeys is None or records >= 2 * self.nkeys:
            return self.nkeys
        k = 1
        while k * 10 <= records // 2:
            k *= 10
        return k


CASES = {c.name: c for c in (
    Case("rbk1k", "reduceByKey 1k keys", 20_000_000, 1_000, 14.3),
    Case("rbk10m", "reduceByKey 10M keys", 20_000_000, 10_000_000, 57.8),
    Case("gbk10m", "groupByKey 10M keys", 20_000_000, 10_000_000, 64.9),
    Case("sort", "sortByKey 10M", 10_000_000, None, 25.4),
    Case("join", "join 2M x 2M", 2_000_000, 1_000_000, 23.2),
)}
QUICK_RECORDS = {"rbk1k": 20_000, "rbk10m": 20_000, "gbk10m": 20_000, "sort": 10_000,
                 "join": 2_000}


# -- the pipelines: one builder for asyncspark and PySpark (same API) ----------------------

def _pairs(sc: Any, total: int, nkeys: int, plus: int = 0) -> Any:
    gen = WORKLOADS.gen_pairs
    src = sc.parallelize(range(P), P)
    if plus:
        return src.flatMap(lambda p: [(k, v + plus) for k, v in gen(p, P, total, nkeys)])
    return src.flatMap(lambda p: gen(p, P, total, nkeys))


def _sort_key(kv: tuple) -> Any:
    return kv[0]


def build(sc: Any, case: str, records: int, nkeys: int | None) -> Any:
    """The RDD whose ``count()`` is the case (on asyncspark or PySpark)."""
    if case in ("rbk1k", "rbk10m"):
        return _pairs(sc, records, nkeys).reduceByKey(operator.add, P)
    if case == "gbk10m":
        return _pairs(sc, records, nkeys).groupByKey(P)
    if case == "sort":
        gen = WORKLOADS.gen_sort_keys
        return (sc.parallelize(range(P), P)
                .flatMap(lambda p: [(k, None) for k in gen(p, P, records)])
                .sortByKey(True, P))
    if case == "join":
        return _pairs(sc, records, nkeys).join(_pairs(sc, records, nkeys, plus=1), P)
    raise ValueError(case)


# -- the baseline: the same per-record work in this process --------------------------------

def _fold(pairs_by_part: Any, d: dict) -> dict:
    add = operator.add
    for part in pairs_by_part:
        for k, v in part:
            if k in d:
                d[k] = add(d[k], v)
            else:
                d[k] = v
    return d


def _group(pairs_by_part: Any) -> dict:
    d: dict = {}
    for part in pairs_by_part:
        for k, v in part:
            if k in d:
                d[k].append(v)
            else:
                d[k] = [v]
    return d


def baseline(case: str, records: int, nkeys: int | None) -> int:
    """The case's count, computed in one process."""
    gen_pairs, gen_sort_keys = WORKLOADS.gen_pairs, WORKLOADS.gen_sort_keys

    def parts(plus: int = 0) -> Any:
        for p in range(P):
            pairs = gen_pairs(p, P, records, nkeys)
            yield [(k, v + plus) for k, v in pairs] if plus else pairs

    if case in ("rbk1k", "rbk10m"):
        return len(_fold(parts(), {}))
    if case == "gbk10m":
        return len(_group(parts()))
    if case == "sort":
        rows: list = []
        for p in range(P):
            rows.extend([(k, None) for k in gen_sort_keys(p, P, records)])
        rows.sort(key=_sort_key)
        return len(rows)
    if case == "join":
        groups: dict = {}  # key -> (left values, right values), as a cogroup
        for side, pairs_by_part in enumerate((parts(), parts(plus=1))):
            for part in pairs_by_part:
                for k, v in part:
                    if k not in groups:
                        groups[k] = ([], [])
                    groups[k][side].append(v)
        return sum(len([(k, (v, w)) for v in vs for w in ws])
                   for k, (vs, ws) in groups.items())
    raise ValueError(case)


# -- one run of each system -----------------------------------------------------------------

async def _asyncspark(case: str, records: int, nkeys: int | None, conf: dict[str, str],
                      limit_s: float) -> dict[str, Any]:
    clock = time.perf_counter
    t0 = clock()
    sc = asyncspark.Context("local[2]", app_name=f"shuffle-bench-{case}", conf=conf)
    metrics = StageMetrics()
    sc.addSparkListener(metrics)
    await sc.start()
    started = clock() - t0
    sampler = ChildSampler(0.2)
    timed_out = False
    try:
        sampler.start()
        idle = sampler.result()
        t = clock()
        try:
            async with asyncio.timeout(limit_s):
                count = await build(sc, case, records, nkeys).count()
        except TimeoutError:
            timed_out, count = True, None
        job = clock() - t
    finally:
        mem = sampler.stop()
        await sc.stop()
    spill = sum(s.get("shuffle_spill_bytes", 0) for s in metrics.stages.values())
    return {"asyncspark_s": job, "start_s": started, "count": count, "timed_out": timed_out,
            "peak_rss_max_mib": mem["peak_rss_max_mib"],
            "peak_rss_total_mib": mem["peak_rss_total_mib"],
            "idle_rss_max_mib": idle["peak_rss_max_mib"], "asyncspark_cpu_s": mem["cpu_s"],
            "map_spill_mib": spill / 2**20, "stages": metrics.summary()}


def run_asyncspark(case: str, records: int, nkeys: int | None, conf: dict[str, str],
                   timeout: float) -> dict[str, Any]:
    return asyncspark.run(_asyncspark(case, records, nkeys, conf, timeout))


def run_pyspark(case: str, records: int, nkeys: int | None) -> tuple[float, int]:
    sc = pyspark_context(f"shuffle-bench-{case}", [WORKLOADS.__file__])
    try:
        return timed(lambda: build(sc, case, records, nkeys).count())
    finally:
        sc.stop()


# -- the report -----------------------------------------------------------------------------

def measure_run(case: Case, i: int, records: int, nkeys: int | None,
                args: argparse.Namespace, conf: dict[str, str],
                vs_pyspark: bool) -> dict[str, Any]:
    """One run of the case on each system (alternating which goes first), checked."""
    run: dict[str, Any] = {}
    order = ("asyncspark", "baseline") if i % 2 == 0 else ("baseline", "asyncspark")
    for system in order:
        if system == "baseline":
            run["baseline_s"], run["baseline_cpu_s"], run["expected"] = timed_cpu(
                lambda: baseline(case.name, records, nkeys))
            gc.collect()
        else:
            run.update(run_asyncspark(case.name, records, nkeys, conf, args.timeout))
            if run["timed_out"]:
                return run
    if run["count"] != run["expected"]:
        raise AssertionError(f"{case.name}: asyncspark counted {run['count']}, the "
                             f"baseline {run['expected']}")
    if vs_pyspark:
        run["pyspark_s"], spark_count = run_pyspark(case.name, records, nkeys)
        if spark_count != run["expected"]:
            raise AssertionError(f"{case.name}: PySpark counted {spark_count}, the "
                                 f"baseline {run['expected']}")
    return run


def measure_case(case: Case, args: argparse.Namespace, conf: dict[str, str],
                 vs_pyspark: bool) -> dict[str, Any]:
    records = args.records or (QUICK_RECORDS[case.name] if args.quick else case.records)
    nkeys = case.keys_for(records)
    runs: list[dict[str, Any]] = []
    error = None
    for i in range(args.runs):
        try:
            run = measure_run(case, i, records, nkeys, args, conf, vs_pyspark)
        except Exception as exc:  # report it with the other cases' figures
            error = f"failed: {type(exc).__name__}: {exc}"
            progress(f"{case.name} run {i + 1}: {error}\n{traceback.format_exc()}")
            break
        runs.append(run)
        if run["timed_out"]:
            error = f"asyncspark timed out after {args.timeout:g} s (stopped)"
            progress(f"{case.name} run {i + 1}: {error}")
            break
        progress(f"{case.name} run {i + 1}/{args.runs}: asyncspark {run['asyncspark_s']:.2f} s"
                 f" ({fmt(run['asyncspark_cpu_s'], 1)} CPU s), baseline "
                 f"{run['baseline_s']:.2f} s ({run['baseline_cpu_s']:.1f} CPU s), executor "
                 f"peak RSS {fmt(run['peak_rss_max_mib'], 0)} MiB"
                 + (f", PySpark {run['pyspark_s']:.2f} s" if vs_pyspark else ""))

    ok = [r for r in runs if not r["timed_out"]]
    med = medians(ok) if ok else {}
    full = records == case.records
    a = med.get("asyncspark_s")
    vs_ref = ratio(case.reference_s, a) if full else None
    return {
        "title": case.title,
        "records": records,
        "nkeys": nkeys,
        "full_size": full,
        "error": error,
        "runs": runs,
        "median": med,
        "ratio_vs_baseline": ratio(a, med.get("baseline_s")),
        "cpu_ratio_vs_baseline": ratio(med.get("asyncspark_cpu_s"), med.get("baseline_cpu_s")),
        "pyspark": {"reference_s": case.reference_s, "speedup_vs_reference": vs_ref,
                    "measured_s": med.get("pyspark_s"),
                    "speedup_vs_measured": ratio(med.get("pyspark_s"), a)},
        "target": {"target": f">= {TARGET_VS_PYSPARK}x faster than {case.reference_s} s "
                             f"(<= {case.reference_s / TARGET_VS_PYSPARK:.2f} s)",
                   "value": vs_ref,
                   "pass": (vs_ref >= TARGET_VS_PYSPARK) if vs_ref is not None
                   else (False if error and full else None)},
    }


def format_table(r: dict[str, Any]) -> str:
    p = r["params"]
    budget = p["memory_budget_mib"]
    lines = [
        *report_header("shuffle cases", r),
        f"median of {p['runs']} run(s), P = {P}; generators: {p['workloads']}; shuffle memory "
        f"budget {budget:g} MiB per executor",
        "",
        f"{'case':22}{'records':>12}{'asyncspark':>11}{'baseline':>10}{'a/base':>8}"
        f"{'CPU':>7}{'PySpark':>9}{'vs PySpark':>11}{'target':>8}{'exec RSS':>10}"
        f"{'sum RSS':>9}{'spill':>7}",
        f"{'':22}{'':>12}{'s':>11}{'s':>10}{'wall':>8}{'a/base':>7}{'ref s':>9}"
        f"{'x faster':>11}{'>= 2x':>8}{'peak MiB':>10}{'MiB':>9}{'MiB':>7}",
    ]
    for name, c in r["cases"].items():
        m = c["median"]
        rec = f"{c['records']:,}" + (" x2" if name == "join" else "")
        if c["error"] and not m:
            lines.append(f"{c['title']:22}{rec:>12}   {c['error']}")
            continue
        lines.append(
            f"{c['title']:22}{rec:>12}{fmt(m['asyncspark_s']):>11}{fmt(m['baseline_s']):>10}"
            f"{fmt(c['ratio_vs_baseline'], 2, 'x'):>8}"
            f"{fmt(c['cpu_ratio_vs_baseline'], 2, 'x'):>7}"
            f"{fmt(c['pyspark']['reference_s'], 1):>9}"
            f"{fmt(c['pyspark']['speedup_vs_reference'], 2, 'x'):>11}"
            f"{verdict(c['target']['pass']):>8}{fmt(m.get('peak_rss_max_mib'), 0):>10}"
            f"{fmt(m.get('peak_rss_total_mib'), 0):>9}{fmt(m.get('map_spill_mib'), 0):>7}")
    lines += [
        "",
        "a/base wall = asyncspark job time / baseline time (< 1: asyncspark faster);",
        "CPU a/base = CPU seconds of both executors / of the baseline (barely inflated by "
        "other load);",
        "vs PySpark = reference figure / asyncspark job time (full size only);",
        "exec RSS = peak of the largest executor, sum = of both at once (idle executor: "
        + fmt(_first(r, "idle_rss_max_mib"), 0) + " MiB); spill = map-side spill.",
    ]
    measured = {n: c for n, c in r["cases"].items() if c["pyspark"]["measured_s"] is not None}
    if measured:
        lines.append("PySpark local[2] measured here: " + ", ".join(
            f"{n} {fmt(c['pyspark']['measured_s'])} s "
            f"({fmt(c['pyspark']['speedup_vs_measured'])}x)" for n, c in measured.items()))
    else:
        lines.append(f"PySpark side by side: skipped ({r['pyspark_skipped']})")
    for name, c in r["cases"].items():
        if c["error"]:
            lines.append(f"{name}: {c['error']}")
        if len(c["runs"]) > 1:
            lines.append(f"{name} per run (asyncspark / baseline s): " + ", ".join(
                f"{x['asyncspark_s']:.2f}/{x.get('baseline_s', float('nan')):.2f}"
                for x in c["runs"]))
    return "\n".join(lines)


def _first(r: dict[str, Any], key: str) -> float | None:
    for c in r["cases"].values():
        if c["median"].get(key) is not None:
            return c["median"][key]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="asyncspark shuffle cases vs one plain Python process")
    parser.add_argument("--case", choices=("all", *CASES), action="append", default=None,
                        help="case to run (repeatable; default all)")
    parser.add_argument("--records", type=int, default=None,
                        help="records of each case (per side for join; default: the "
                             "reference size, tiny with --quick)")
    parser.add_argument("--runs", type=int, default=None,
                        help="repetitions, fresh context each (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny sizes and one run (figures not meaningful)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--vs", choices=("pyspark",), default=None,
                        help="also run PySpark local[2] side by side (if importable)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds before an asyncspark job is cancelled and the case "
                             "given up (default 300)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="asyncspark configuration, e.g. "
                             "asyncspark.shuffle.memoryBudget=64m (repeatable)")
    args = parser.parse_args(argv)
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if args.runs < 1 or (args.records is not None and args.records < 1) or args.timeout <= 0:
        parser.error("--runs and --records must be at least 1, --timeout positive")
    conf = parse_conf(parser, args.conf)
    chosen = args.case or ["all"]
    names = list(CASES) if "all" in chosen else list(dict.fromkeys(chosen))

    skipped = "not asked (--vs pyspark)"
    vs_pyspark = False
    if args.vs == "pyspark":
        vs_pyspark = pyspark_version() is not None
        skipped = None if vs_pyspark else "`import pyspark` fails here"
        if not vs_pyspark:
            progress("--vs pyspark: skipped, `import pyspark` fails here")
    progress(f"$ {command_line()}")
    env = environment()
    budget = Config.from_items(conf.items()).shuffle_memory
    cases = {name: measure_case(CASES[name], args, conf, vs_pyspark) for name in names}
    env["loadavg_end"] = loadavg()
    report = {
        "command": command_line(),
        "params": {"cases": names, "records": args.records, "runs": args.runs,
                   "quick": args.quick, "timeout_s": args.timeout, "conf": conf,
                   "master": "local[2]", "partitions": P, "workloads": WORKLOADS_SOURCE,
                   "memory_budget_mib": budget / 2**20},
        "environment": env,
        "pyspark_skipped": skipped,
        "cases": cases,
    }
    print(json.dumps(report) if args.json else format_table(report))
    return 1 if any(c["error"] for c in cases.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
