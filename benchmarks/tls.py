"""What TLS costs: the same context with TLS off and on (mutual TLS, throwaway
certificates made by ``tests/tlscerts.py``), side by side in one invocation, in
alternating order, medians across ``--runs``:

- ``latency``: ms per trivial job (``parallelize([1], 1).count()``) after a warm-up;
- ``throughput``: empty tasks a second (one job of ``--tasks`` tasks);
- ``shuffle_s``: seconds of ``reduceByKey`` over ``--records`` int pairs (``--keys``
  keys, 8 partitions);
- ``bulk_shuffle_s``: seconds of ``partitionBy(8)`` of ``--bulk-records`` records with
  100-byte values (every record crosses the shuffle: ~``--bulk-records`` x 110 bytes);

both with ``asyncspark.shuffle.localRead=false`` in both modes, so every block crosses a
block server connection (TLS-encrypted in the TLS mode).

Context start-up (``start_s``) is reported too: the TLS handshakes of the executors'
connections are in it. Prints a table (``--json``: the runs too)::

    python benchmarks/tls.py [--runs 3] [--trivial 300] [--tasks 5000]
                             [--records 2000000] [--keys 100000]
                             [--bulk-records 1000000]
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import shutil
import statistics
import sys
import tempfile
import time

from common import ROOT, loadavg

sys.path.insert(0, str(ROOT / "tests"))

from tlscerts import make_tls_files

import asyncspark

MODES = ("off", "on")


async def measure(conf: dict, args) -> dict:
    t0 = time.perf_counter()
    async with asyncspark.Context("local[2]", app_name="tls-bench", conf=conf) as sc:
        start_s = time.perf_counter() - t0
        for _ in range(30):
            await sc.parallelize([1], 1).count()
        times = []
        for _ in range(args.trivial):
            t = time.perf_counter()
            await sc.parallelize([1], 1).count()
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        await sc.parallelize(range(args.tasks), args.tasks).foreachPartition(lambda it: None)
        tasks_per_s = args.tasks / (time.perf_counter() - t)
        n, keys = args.records, args.keys
        pairs = sc.range(n, numSlices=8).map(lambda i: ((i * 2654435761) % keys, 1))
        t = time.perf_counter()
        got = await pairs.reduceByKey(operator.add, 8).count()
        shuffle_s = time.perf_counter() - t
        assert got == min(n, keys), got
        bulk = sc.range(args.bulk_records, numSlices=8).map(
            lambda i: (i, i.to_bytes(8, "little") * 12 + b"0123"))
        t = time.perf_counter()
        got = await bulk.partitionBy(8).count()
        bulk_s = time.perf_counter() - t
        assert got == args.bulk_records, got
        return {"start_s": start_s, "latency_ms": statistics.median(times) * 1e3,
                "tasks_per_s": tasks_per_s, "shuffle_s": shuffle_s, "bulk_shuffle_s": bulk_s}


async def main(args) -> int:
    directory = tempfile.mkdtemp(prefix="tls-bench-")
    try:
        files = make_tls_files(directory)
        base = {"asyncspark.shuffle.localRead": "false"}
        confs = {"off": base,
                 "on": {**base, **files.conf(**{"spark.ssl.needClientAuth": "true"})}}
        runs: list[dict] = []
        loads = [loadavg()]
        for r in range(args.runs):
            order = MODES if r % 2 == 0 else MODES[::-1]
            for mode in order:
                result = await measure(confs[mode], args)
                runs.append({"run": r, "tls": mode, **result})
                print(f"run {r} TLS {mode}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in result.items()), file=sys.stderr)
            loads.append(loadavg())
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    keys = ("start_s", "latency_ms", "tasks_per_s", "shuffle_s", "bulk_shuffle_s")
    med = {m: {k: statistics.median(x[k] for x in runs if x["tls"] == m) for k in keys}
           for m in MODES}
    print(f"TLS off vs on (mutual), local[2], medians of {args.runs} runs; "
          f"load average {' -> '.join(loads)}")
    print(f"{'metric':<14}{'off':>12}{'on':>12}{'on / off':>10}")
    for k in keys:
        print(f"{k:<14}{med['off'][k]:>12.3f}{med['on'][k]:>12.3f}"
              f"{med['on'][k] / med['off'][k]:>10.2f}")
    if args.json:
        print(json.dumps({"medians": med, "runs": runs, "load": loads}))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python benchmarks/tls.py", description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--trivial", type=int, default=300)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--bulk-records", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(asyncspark.run(main(ap.parse_args())))  # uvloop, as applications run
