"""Command line and run loop of ``asyncspark bench`` (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import sys
from dataclasses import asdict
from typing import Any

from .. import __version__
from . import engine, peers
from .params import PEERS, SCENARIOS, Params, parse_conf_items
from .report import format_table, median_breakdown, speedups, targets
from .stats import histogram, median_across_runs

__all__ = ["main", "measure"]

QUICK = {"runs": 1, "warmup": 5, "trivial": 20, "tasks": 200, "lag_jobs": 5}
FULL = {"runs": 5, "warmup": 50, "trivial": 500, "tasks": 10_000, "lag_jobs": 100}


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog, description="asyncspark scheduler benchmarks, side by side with peers "
        "measured in the same invocation (figures are medians across --runs).")
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help=f"any of {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--vs", action="append", default=[], choices=("all", "none", *PEERS),
                    metavar="PEER",
                    help=f"peers run side by side: all (default: every one installed), "
                    f"none, {', '.join(PEERS)} (repeatable; pyspark and dask only when "
                    "installed: `bash benchmarks/peers/setup.sh` in a checkout installs "
                    "them into benchmarks/.venv, whose python then runs this)")
    ap.add_argument("--breakdown", action="store_true",
                    help="median time of each phase of a trivial job's task (tracing on)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: tiny N and one run (figures not meaningful)")
    ap.add_argument("--runs", type=int, help="repetitions of everything (default 5)")
    ap.add_argument("--trivial", type=int, help="timed trivial jobs per run (default 500)")
    ap.add_argument("--warmup", type=int, help="untimed trivial jobs first (default 50)")
    ap.add_argument("--tasks", type=int, help="empty tasks in the throughput job "
                    "(default 10000)")
    ap.add_argument("--jobs", type=int, default=8, help="concurrent jobs and loop-lag "
                    "submitters (default 8)")
    ap.add_argument("--lag-jobs", type=int, help="trivial jobs per loop-lag submitter "
                    "(default 100)")
    ap.add_argument("--executors", type=int, default=2, help="local[N] (default 2)")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                    help="the driver's event loop (default uvloop, as asyncspark.run)")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="asyncspark configuration of the contexts (repeatable)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--plot", metavar="PNG",
                    help="also draw the latency distribution to PNG (needs matplotlib)")
    return ap


def _params(ap: argparse.ArgumentParser, args: argparse.Namespace) -> Params:
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)}")
    if min(sizes["runs"], sizes["trivial"], sizes["tasks"], sizes["lag_jobs"], args.jobs,
           args.executors) < 1 or sizes["warmup"] < 0:
        ap.error("sizes must be at least 1 (--warmup at least 0)")
    try:
        conf = parse_conf_items(args.conf)
    except ValueError as exc:
        ap.error(str(exc))
    scenarios = tuple(s for s in SCENARIOS if s in args.scenarios) or SCENARIOS
    if "none" in args.vs:
        chosen: tuple[str, ...] = ()
    elif not args.vs or "all" in args.vs:
        chosen = PEERS
    else:
        chosen = tuple(dict.fromkeys(args.vs))
    return Params(scenarios=scenarios, peers=chosen,
                  jobs=args.jobs, executors=args.executors, loop=args.loop,
                  breakdown=args.breakdown, conf=conf, **sizes)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(p: Params, progress: bool = False) -> dict[str, Any]:
    """Run everything ``p`` asks for, ``p.runs`` times; the report (a JSON-able dict but
    for ``"_samples"``, every trivial-job latency in ms)."""
    skipped = {peer: f"not installed in {sys.executable} (`bash benchmarks/peers/setup.sh` "
               "installs it into benchmarks/.venv)"
               for peer in p.peers if not peers.available(peer)}
    systems = ["asyncspark", *(peer for peer in p.peers if peer not in skipped)]
    for peer, why in skipped.items():
        if progress:
            _progress(f"--vs {peer}: {why}")
    runs: list[dict[str, Any]] = []
    samples: list[float] = []
    breakdowns: list[dict[str, Any]] = []
    for i in range(p.runs):
        # Rotate who goes first, so that neither always gets the cooler machine.
        order = systems[i % len(systems):] + systems[:i % len(systems)]
        run: dict[str, Any] = {}
        for system in order:
            figures = (engine.measure(p) if system == "asyncspark"
                       else peers.MEASURES[system](p))
            if system == "asyncspark":
                samples += figures.pop("_samples", [])
                breakdowns.append(figures.pop("_breakdown", None))
            figures.pop("_samples", None)
            run[system] = figures
        runs.append(run)
        if progress:
            _progress(f"run {i + 1}/{p.runs}: " + "; ".join(
                f"{s} p50 {run[s].get('latency', {}).get('p50_ms', float('nan')):.3f} ms, "
                f"{run[s].get('throughput', {}).get('tasks_per_s', float('nan')):,.0f} tasks/s"
                for s in systems))
    median = {s: median_across_runs([r[s] for r in runs]) for s in systems}
    return {
        "command": "",
        "params": asdict(p),
        "environment": _environment(p),
        "systems": systems,
        "skipped": skipped,
        "runs": runs,
        "median": median,
        "speedups": speedups(median),
        "targets": targets(median["asyncspark"]),
        "floor": median["asyncspark"].get("rtt"),
        "breakdown": median_breakdown(breakdowns),
        "histogram": histogram(samples),
        "_samples": samples,  # for --plot; not printed
    }


def _environment(p: Params) -> dict[str, Any]:
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        load = "-"
    return {"asyncspark": __version__, "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": load,
            "master": p.master, "loop": p.loop,
            "pool_start_method": multiprocessing.get_start_method()}


def _plot(samples_ms: list[float], path: str) -> str:
    """Draw the latency histogram to ``path``; what happened, for the report."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: ASCII histogram only"
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(samples_ms, bins=60)
    ax.set_xlabel("trivial job latency (ms)")
    ax.set_ylabel("jobs")
    ax.set_title("asyncspark trivial job latency")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None, prog: str = "asyncspark bench",
         command: str | None = None) -> int:
    """Run the benchmarks ``argv`` asks for; ``command`` is how to show the invocation
    in the report (default: ``prog`` and ``argv``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = _parser(prog)
    args = ap.parse_args(argv)
    p = _params(ap, args)
    report = measure(p, progress=not args.json)
    report["command"] = command or shlex.join([*prog.split(), *argv])
    samples = report.pop("_samples")
    if args.plot:
        report["plot"] = _plot(samples, args.plot)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
    return 0
