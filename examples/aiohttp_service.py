"""An aiohttp service that runs asyncspark jobs per request.

Usage::

    python examples/aiohttp_service.py [--port 8080] [--master local[2]] [--no-ui]
    curl --data-binary @examples/data/sample.txt localhost:8080/wordcount
    curl --data-binary @examples/data/sample.txt 'localhost:8080/topk?k=5'
    curl --data-binary @examples/data/sample.txt localhost:8080/words
    open http://localhost:8080/spark/   # the web UI; Prometheus text at /metrics

Endpoints (the posted body is UTF-8 text, split into lines and partitions):

- ``POST /wordcount``: ``{"counts": {word: n}, "distinct": ..., "total": ...}`` — a
  shuffle job (``reduceByKey``) in the FAIR pool ``interactive``;
- ``POST /topk?k=10``: the ``k`` most frequent words, ``[[word, n], ...]`` — a shuffle job
  in the pool ``batch``;
- ``POST /words``: ``{"total": ...}`` — a one-stage job (``map`` + ``sum``).

The context starts with the service and stops with it (Ctrl-C or SIGTERM: aiohttp's
graceful shutdown runs the cleanup context, which cancels running jobs and stops the
executors). Each request's jobs carry a job tag of their own; a client that disconnects
has its jobs cancelled (``handler_cancellation=True``); with
``--max-active-jobs``, requests beyond it get 503 with ``Retry-After`` (or wait
``--admission-timeout`` seconds for room first).
"""

from __future__ import annotations

import argparse
import json
import operator
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

import asyncspark.web as sw

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

# FAIR scheduling: light requests get a slot as soon as one frees, whatever the batch
# requests hold. "interactive" is needy until it runs 1 task, then has 4x the weight.
POOLS = {"pools": {
    "interactive": {"schedulingMode": "FAIR", "weight": 4, "minShare": 1},
    "batch": {"schedulingMode": "FIFO", "weight": 1},
}}


def tokenize(line: str) -> list[str]:
    """The words of ``line``, lower-cased (inner apostrophes kept: "don't")."""
    return _WORD.findall(line.lower())


def by_count(kv: tuple[str, int]) -> tuple[int, str]:
    """Most frequent first, ties alphabetically."""
    return -kv[1], kv[0]


async def _lines(request: web.Request) -> tuple[list[str], int]:
    try:
        text = await request.text()
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="the body must be UTF-8 text\n") from None
    return text.splitlines(), _int_param(request, "partitions", 2, 1, 64)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be an integer in [{low}, {high}], "
                                      f"got {raw!r}\n")
    return value


def _counts(sc, lines: list[str], partitions: int):
    return (sc.parallelize(lines, partitions).flatMap(tokenize).map(lambda w: (w, 1))
            .reduceByKey(operator.add, partitions))


async def wordcount(request: web.Request) -> web.Response:
    sc = request.app[sw.CONTEXT]
    sc.setLocalProperty("spark.scheduler.pool", "interactive")
    lines, partitions = await _lines(request)
    counts = dict(await _counts(sc, lines, partitions).collect())
    return web.json_response({"counts": counts, "distinct": len(counts),
                              "total": sum(counts.values())})


async def topk(request: web.Request) -> web.Response:
    sc = request.app[sw.CONTEXT]
    sc.setLocalProperty("spark.scheduler.pool", "batch")
    k = _int_param(request, "k", 10, 1, 10_000)
    lines, partitions = await _lines(request)
    top = await _counts(sc, lines, partitions).takeOrdered(k, key=by_count)
    return web.json_response([list(kv) for kv in top])


async def words(request: web.Request) -> web.Response:
    sc = request.app[sw.CONTEXT]
    sc.setLocalProperty("spark.scheduler.pool", "interactive")
    lines, partitions = await _lines(request)
    total = await sc.parallelize(lines, partitions).map(lambda s: len(tokenize(s))).sum()
    return web.json_response({"total": total})


def create_app(master: str = "local[2]", conf: Mapping[str, Any] | None = None, *,
               ui: bool = True) -> web.Application:
    """The service (not started): FAIR pools, the context's lifecycle, request-scoped
    job tags, the UI at ``/spark`` and ``/metrics`` (unless ``ui`` is false)."""
    app = web.Application(client_max_size=64 << 20)
    settings = {"spark.scheduler.mode": "FAIR",
                "asyncspark.scheduler.allocation": json.dumps(POOLS), **(conf or {})}
    sw.setup(app, master, app_name="aiohttp-service", conf=settings,
             ui="/spark" if ui else None, metrics="/metrics" if ui else None)
    app.router.add_post("/wordcount", wordcount)
    app.router.add_post("/topk", topk)
    app.router.add_post("/words", words)
    return app


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080,
                        help="port to listen on (default 8080)")
    parser.add_argument("--master", default="local[2]",
                        help="the asyncspark master (default local[2])")
    parser.add_argument("--no-ui", action="store_true", help="serve no /spark, /metrics")
    parser.add_argument("--max-active-jobs", type=int, default=0,
                        help="admission control: 503 beyond this many running jobs")
    parser.add_argument("--admission-timeout", type=float, default=0.0,
                        help="seconds a request waits for admission before its 503")
    args = parser.parse_args()
    conf = {"asyncspark.scheduler.maxActiveJobs": args.max_active_jobs,
            "asyncspark.scheduler.admissionTimeout": args.admission_timeout}
    app = create_app(args.master, conf, ui=not args.no_ui)
    # handler_cancellation: a client that goes away cancels its handler, and so its jobs.
    web.run_app(app, host=args.host, port=args.port, handler_cancellation=True)


if __name__ == "__main__":
    cli()
