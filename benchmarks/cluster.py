"""asyncspark on a 3-node Ray cluster against ``local[2]``, side by side in one invocation.

Usage::

    python benchmarks/cluster.py [--runs 3] [--records 20000000] [--keys 10000000]
                                 [--lines 400000] [--trivial 30] [--quick] [--json]

The script starts its own Ray cluster on this machine (``tests/cluster/raycluster.py``:
a head on 127.0.0.51 and worker nodes on .52 and .53, one CPU and one
``asyncspark_executor`` unit each, token authentication on, every port chosen free),
and stops it by its nodes' process groups at the end (never by name). Each run starts,
in rotating order, a ``local[2]`` context and a ``Context("ray")`` with one executor per
node (3), and measures on each:

- ``start_s``: the context's start (its executors started and registered);
- ``wordcount_s``: word count through the shuffle (``flatMap(split).map((w, 1))
  .reduceByKey(add, P).collect()``) over ``--lines`` generated lines of 8-12 words
  of a Zipf-distributed 50,000-word vocabulary (generated in the executors);
- ``rbk_s``: ``reduceByKey(add, P).count()`` over ``--records`` ``gen_pairs`` records
  with ``--keys`` distinct keys (``shared/bench``'s "rbk10m": 20 M records, 10 M keys);
- ``trivial_ms``: the median of ``--trivial`` jobs ``parallelize([1], 1).count()``
  (the per-job overhead of the scheduler and the backend);
- ``executor_start_s``: one executor removed and a replacement asked for
  (``ExecutorManager.scale``): the time until it has registered (per executor start).

Results are checked equal between the two systems. Figures are medians over the runs,
printed with the load average (the machine is shared: read ratios, not absolutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from operator import add
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "cluster"))
import raycluster  # noqa: E402 - first: Ray's auth environment, before ray is imported
from common import command_line, environment, gen_pairs, loadavg  # noqa: E402

P = 16
HEAD, WORKERS = "127.0.0.51", ["127.0.0.52", "127.0.0.53"]
VOCAB = 50_000


def gen_lines(part: int, nparts: int, total: int) -> list[str]:
    """Lines [part's share of ``total``] of 8-12 Zipf(1)-distributed words, seeded per
    partition (the same lines whichever system generates them)."""
    import bisect
    import itertools
    import random

    lo, hi = part * total // nparts, (part + 1) * total // nparts
    weights = list(itertools.accumulate(1.0 / r for r in range(1, VOCAB + 1)))
    top = weights[-1]
    rnd = random.Random(42 + part)
    out = []
    for _ in range(hi - lo):
        n = rnd.randint(8, 12)
        out.append(" ".join(f"w{bisect.bisect(weights, rnd.random() * top)}" for _ in range(n)))
    return out


async def measure(master: str, conf: dict, args) -> dict:
    from asyncspark import Context

    t = time.perf_counter()
    ctx = Context(master, app_name=f"bench-cluster-{master}", conf=conf)
    await ctx.start()
    figures: dict = {"start_s": time.perf_counter() - t}
    try:
        lines = args.lines
        t = time.perf_counter()
        counts = dict(await ctx.parallelize(range(P), P)
                      .flatMap(lambda p: gen_lines(p, P, lines))
                      .flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(add, P).collect())
        figures["wordcount_s"] = time.perf_counter() - t
        records, keys = args.records, args.keys
        t = time.perf_counter()
        distinct = await (ctx.parallelize(range(P), P)
                          .flatMap(lambda p: gen_pairs(p, P, records, keys))
                          .reduceByKey(add, P).count())
        figures["rbk_s"] = time.perf_counter() - t
        trivial = []
        for _ in range(args.trivial):
            t = time.perf_counter()
            assert await ctx.parallelize([1], 1).count() == 1
            trivial.append(time.perf_counter() - t)
        figures["trivial_ms"] = statistics.median(trivial) * 1e3
        figures["executor_start_s"] = await replace_one(ctx)
    finally:
        await ctx.stop()
    figures["_results"] = (counts, distinct)
    return figures


async def replace_one(ctx) -> float:
    """Remove the newest executor, ask for one again: seconds until one registered."""
    backend, executors = ctx._backend, ctx._task_scheduler.executors
    n = len(executors)
    newest = max(executors, key=int)
    backend.scale(n - 1, remove=[newest])
    await until(lambda: len(executors) < n and newest not in executors)
    t = time.perf_counter()
    backend.scale(n)
    await until(lambda: len(executors) >= n)
    return time.perf_counter() - t


async def until(cond, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within}s")
        await asyncio.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=20_000_000)
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--lines", type=int, default=400_000)
    parser.add_argument("--trivial", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.records, args.keys, args.lines, args.trivial = 1, 20_000, 10_000, 2_000, 5
    if min(args.runs, args.records, args.keys, args.lines, args.trivial) < 1:
        parser.error("--runs, --records, --keys, --lines and --trivial must be at least 1")

    t = time.perf_counter()
    cluster = raycluster.RayCluster(HEAD, WORKERS, head_cpus=1)
    systems = {"local[2]": ("local[2]", {}),
               "ray 3 nodes": ("ray", {"spark.executor.instances": "3",
                                       "asyncspark.ray.executorResource": raycluster.RESOURCE,
                                       "asyncspark.ray.nodeIpAddress": HEAD})}
    runs: list[dict] = []
    try:
        cluster.start()
        cluster_up = time.perf_counter() - t
        os.environ["RAY_ADDRESS"] = cluster.address
        order = list(systems)
        for i in range(args.runs):
            run: dict = {"load": loadavg()}
            for name in order[i % 2:] + order[:i % 2]:  # rotating order
                master, conf = systems[name]
                run[name] = asyncio.run(measure(master, dict(conf), args))
            a, b = (run[n].pop("_results") for n in order)
            if a != b:
                raise SystemExit(f"results differ between {order[0]} and {order[1]}")
            runs.append(run)
    finally:
        cluster.stop()
    keys = ["start_s", "wordcount_s", "rbk_s", "trivial_ms", "executor_start_s"]
    med = {n: {k: statistics.median(r[n][k] for r in runs) for k in keys} for n in systems}
    report = {"command": command_line(), "environment": environment("asyncio"),
              "params": {"runs": args.runs, "records": args.records, "keys": args.keys,
                         "lines": args.lines, "trivial": args.trivial, "quick": args.quick,
                         "partitions": P},
              "cluster_start_s": cluster_up, "runs": runs, "medians": med,
              "ray_vs_local": {k: med["ray 3 nodes"][k] / med["local[2]"][k] for k in keys
                               if med["local[2]"][k]},
              "load_after": loadavg()}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['command']}\ncluster up in {cluster_up:.1f}s; loads per run: "
          f"{[r['load'] for r in runs]}; after: {report['load_after']}")
    print(f"{'median of ' + str(args.runs):<22}" + "".join(f"{n:>14}" for n in systems)
          + f"{'ray/local':>11}")
    for k in keys:
        ratio = report["ray_vs_local"].get(k)
        print(f"{k:<22}" + "".join(f"{med[n][k]:>14.3f}" for n in systems)
              + (f"{ratio:>11.2f}" if ratio is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
