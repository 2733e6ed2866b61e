"""``asyncspark bench``: how fast the scheduler is, measured beside other systems.

Scenarios (all by default): ``latency`` (a trivial job's round trip, p50/p90/p99/max),
``throughput`` (one job of many empty tasks, and several such jobs at once),
``loop-lag`` (scheduler queue wait and event-loop lag while coroutines submit jobs
concurrently) and ``startup`` (context start until executors are registered, and
``import asyncspark`` in a fresh process). ``--vs multiprocessing|pyspark|dask`` runs the
same work on those systems in the same invocation; ``--breakdown`` adds the median time
of each phase of a traced task. Run ``python -m asyncspark.bench --help``.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
