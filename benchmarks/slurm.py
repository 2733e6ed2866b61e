"""asyncspark on a 2-node SLURM cluster against ``local[2]``, side by side in one invocation.

Usage::

    python benchmarks/slurm.py [--runs 3] [--lines 100000] [--trivial 20] [--json]

The script starts its own SLURM cluster on this machine (``tests/cluster/slurmcluster.py``:
Debian's slurm-wlm and munge, as root; nodes n1 and n2 on 127.0.0.21 and .22, one CPU
each, every port chosen free) and stops it by its daemons' process groups at the end
(never by name). Each run starts, in rotating order, a ``local[2]`` context and a
``Context("slurm")`` with one executor per node (2), and measures on each:

- ``start_s``: the context's start (its executors started and registered);
- ``wordcount_s``: word count through the shuffle over ``--lines`` generated lines;
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import slurmcluster  # noqa: E402

from asyncspark import Context  # noqa: E402

NODES = {"n1": "127.0.0.21", "n2": "127.0.0.22"}


def lines_of(part: int, n: int) -> list[str]:
    import random

    rnd = random.Random(part)
    return [" ".join(f"w{int(rnd.paretovariate(1.2)) % 50_000}"
                     for _ in range(rnd.randint(8, 12))) for _ in range(n)]


async def measure(master: str, conf: dict, args) -> tuple[dict, dict]:
    t = time.perf_counter()
    async with Context(master, app_name="bench-slurm", conf=conf) as sc:
        figures = {"start_s": time.perf_counter() - t}
        parts = 4
        per = args.lines // parts
        t = time.perf_counter()
        counts = dict(await sc.parallelize(range(parts), parts)
                      .flatMap(lambda p: lines_of(p, per)).flatMap(str.split)
                      .map(lambda w: (w, 1)).reduceByKey(add, parts).collect())
        figures["wordcount_s"] = time.perf_counter() - t
        await sc.parallelize([1], 1).count()
        trivial = []
        for _ in range(args.trivial):
            t = time.perf_counter()
            await sc.parallelize([1], 1).count()
            trivial.append(time.perf_counter() - t)
        figures["trivial_ms"] = statistics.median(trivial) * 1000
        executors = sc._task_scheduler.executors
        n = len(executors)
        victim = max(executors, key=int)
        sc._backend.scale(n - 1, remove=[victim])
        await until(lambda: victim not in executors and len(executors) == n - 1)
        t = time.perf_counter()
        sc._backend.scale(n)
        await until(lambda: len(executors) >= n)
        figures["executor_start_s"] = time.perf_counter() - t
    return figures, counts


async def until(cond, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within}s")
        await asyncio.sleep(0.01)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--trivial", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    why = slurmcluster.missing()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    systems = {"local[2]": ("local[2]", {}),
               "slurm 2 nodes": ("slurm", {"spark.executor.instances": "2",
                                           "asyncspark.rpc.host": "127.0.0.1",
                                           "asyncspark.slurm.pollInterval": "500ms"})}
    cluster = slurmcluster.SlurmCluster(NODES)
    runs = []
    try:
        t = time.perf_counter()
        cluster.start()
        cluster_start = time.perf_counter() - t
        for i in range(args.runs):
            order = list(systems)[i % 2:] + list(systems)[:i % 2]
            run, results = {}, []
            for name in order:
                master, conf = systems[name]
                run[name], counts = asyncio.run(measure(master, conf, args))
                results.append(counts)
            if results[0] != results[1]:
                print("results differ between the systems", file=sys.stderr)
                return 1
            runs.append(run)
    finally:
        cluster.stop()
    med = {name: {k: statistics.median(r[name][k] for r in runs) for k in runs[0][name]}
           for name in systems}
    ratio = {k: med["slurm 2 nodes"][k] / med["local[2]"][k] for k in med["local[2]"]}
    report = {"params": vars(args), "load_average": os.getloadavg(),
              "cluster_start_s": cluster_start, "runs": runs, "medians": med,
              "slurm_vs_local": ratio}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"SLURM cluster up in {cluster_start:.2f}s; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; medians of {args.runs} runs")
    for key in med["local[2]"]:
        print(f"  {key:17s} local[2] {med['local[2]'][key]:9.3f}   slurm "
              f"{med['slurm 2 nodes'][key]:9.3f}   ratio {ratio[key]:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
