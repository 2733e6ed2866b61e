"""Scheduler latency, throughput and start-up of asyncspark ``local[2]``, against a bare
``concurrent.futures.ProcessPoolExecutor(2)`` measured in the same run.

The harness is ``asyncspark.bench`` (the ``asyncspark bench`` command); this script runs
its ``latency``, ``throughput`` and ``startup`` scenarios with ``--vs multiprocessing``
and passes every other option through::

    python benchmarks/latency.py [--quick] [--runs N] [--json] [--breakdown]
                                 [--loop uvloop|asyncio] [--conf KEY=VALUE ...]

Run ``asyncspark bench --help`` for all options (loop-lag, ``--vs pyspark|dask``, plots).
"""

from __future__ import annotations

import shlex
import sys

from asyncspark.bench import main

if __name__ == "__main__":
    sys.exit(main(["latency", "throughput", "startup", "--vs", "multiprocessing",
                   *sys.argv[1:]], prog="python benchmarks/latency.py",
                  command=shlex.join(["python", "benchmarks/latency.py", *sys.argv[1:]])))
