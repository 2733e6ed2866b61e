"""Scheduler latency, throughput and start-up of asyncspark ``local[2]``, against a bare
``concurrent.futures.ProcessPoolExecutor(2)``, PySpark and Dask (when installed: ``bash
benchmarks/peers/setup.sh``, then run this with ``benchmarks/.venv/bin/python``), and the
loopback msgpack round trip, all measured in the same run.

The harness is ``asyncspark.bench`` (the ``asyncspark bench`` command); this script runs
its ``latency``, ``throughput`` and ``startup`` scenarios and passes every other option
through::

    python benchmarks/latency.py [--quick] [--runs N] [--json] [--breakdown]
                                 [--vs all|none|multiprocessing|pyspark|dask]
                                 [--loop uvloop|asyncio] [--conf KEY=VALUE ...]

Run ``asyncspark bench --help`` for all options (loop-lag, plots).
"""

from __future__ import annotations

import shlex
import sys

from asyncspark.bench import main

if __name__ == "__main__":
    sys.exit(main(["latency", "throughput", "startup", *sys.argv[1:]],
                  prog="python benchmarks/latency.py",
                  command=shlex.join(["python", "benchmarks/latency.py", *sys.argv[1:]])))
