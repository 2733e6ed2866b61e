"""``asyncspark bench``: how fast the scheduler is, measured beside other systems.

Scenarios (all by default): ``latency`` (a trivial job's round trip, p50/p90/p99/max),
``throughput`` (one job of many empty tasks, and several such jobs at once),
``loop-lag`` (scheduler queue wait and event-loop lag while coroutines submit jobs
concurrently) and ``startup`` (context start until executors are registered, and
``import asyncspark`` in a fresh process). The latency scenario also measures its floors
from the same loop (``rtt``): a raw-protocol loopback msgpack request/reply, and the
task-sized msgpack request/reply a plain application writes with asyncio streams to
another Python process (issue #16's target compares the trivial job with the latter;
the ratio to the former is printed beside). Every installed peer (``multiprocessing``, ``pyspark``,
``dask``; ``--vs`` picks, ``--vs none`` none) runs the same work in the same invocation,
in rotating order; ``--breakdown`` adds the median time of each phase of a traced task
next to the round trip. Run ``python -m asyncspark.bench --help``.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
