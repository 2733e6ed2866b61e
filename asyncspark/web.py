"""Embedding asyncspark in an aiohttp service: the context's lifecycle, request-scoped
jobs, the web UI and ``/metrics``.

::

    from aiohttp import web
    import asyncspark.web as sw

    async def count(request):
        sc = request.app[sw.CONTEXT]
        return web.json_response(await sc.parallelize(range(100)).count())

    app = web.Application()
    sw.setup(app, "local[2]", app_name="svc")  # context, UI at /spark, /metrics, tags
    app.router.add_get("/count", count)
    web.run_app(app, handler_cancellation=True)

- ``CONTEXT``: the ``aiohttp.web.AppKey`` under which the ``Context`` is stored.
- ``context_ctx(master, app_name, conf, freeze_gc=True)``: a ``cleanup_ctx`` generator
  that starts the context with the service and stops it on shutdown (executors gone,
  directories removed); ``.context`` is the (not yet started) ``Context``, so the UI can
  be mounted before the application starts. Once started it moves what is alive into
  the garbage collector's permanent generation (``gc.freeze()``, undone on shutdown), so
  the service's full collections stop traversing its start-up heap.
- ``request_jobs``: a middleware that tags the jobs of each request with a job tag of
  its own (``request_tag(request)``, in ``spark.job.tags``), cancels them when the
  handler is cancelled (the client went away: aiohttp cancels handlers when run with
  ``handler_cancellation=True``, as its test server always does), and answers 503 with
  ``Retry-After`` when admission control rejects a job (``JobRejectedError``).
- ``ui_app(sc)``: the web UI and REST API as a sub-application (``asyncspark.ui``).
- ``setup(app, ...)``: all of the above in one call.

A cancelled handler's awaiting action raises ``CancelledError``, which cancels its job
(its tasks are killed; a task blocked in C code has its executor replaced after
``asyncspark.task.killGracePeriod``); the middleware also cancels jobs the request
started in tasks it did not await.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web

from .conf import SparkConf
from .context import Context
from .context_jobs import isolated_local_properties
from .errors import JobRejectedError
from .ui import ui_app

__all__ = ["CONTEXT", "REQUEST_TAG", "context_ctx", "metrics_handler", "request_jobs",
           "request_tag", "setup", "ui_app"]

CONTEXT: web.AppKey[Context] = web.AppKey("asyncspark.context", Context)
# request[REQUEST_TAG]: the tag of its jobs (a web.RequestKey where aiohttp has them)
REQUEST_TAG: Any = (web.RequestKey("asyncspark.request_tag", str)  # type: ignore[attr-defined]
                    if hasattr(web, "RequestKey") else "asyncspark.request_tag")
_request_ids = itertools.count(1)


def context_ctx(master: str = "local[*]", app_name: str | None = None,
                conf: SparkConf | Mapping[str, Any] | None = None, *,
                freeze_gc: bool = True) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` generator: ``app.cleanup_ctx.append(context_ctx("local[2]"))``.

    On startup it stores the context under ``app[CONTEXT]`` and starts it (a failure
    to start fails the service's startup); on shutdown it stops it: running jobs are
    cancelled, executors stopped, the context's directories removed. The returned
    callable's ``context`` attribute is the context, created now and not yet started.

    With ``freeze_gc`` (the default), once the context has started, a full collection
    runs and what survives it (modules, the application, the context: some 70,000
    objects) is moved to the permanent generation with ``gc.freeze()``, undone with
    ``gc.unfreeze()`` on shutdown. A full collection of a running service then no longer
    traverses them: each took ~20 ms on a 2-core machine, and the one-stage service
    benchmark's p99 at 20 concurrent requests went down by 3-6 ms when the machine was
    quiet and by 8-30 ms under load. What was alive at start and later becomes cyclic
    garbage is kept until shutdown; pass ``freeze_gc=False`` if the service's own
    start-up state churns.
    """
    sc = Context(master, app_name, conf)

    async def asyncspark_context(app: web.Application) -> AsyncIterator[None]:
        app[CONTEXT] = sc
        await sc.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if freeze_gc:
                gc.unfreeze()
            await sc.stop()

    asyncspark_context.context = sc  # type: ignore[attr-defined]
    return asyncspark_context


def request_tag(request: web.Request) -> str:
    """The job tag of ``request``'s jobs (set by ``request_jobs``)."""
    return request[REQUEST_TAG]


@web.middleware
async def request_jobs(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Tag each request's jobs, cancel them if the handler is cancelled, map
    ``JobRejectedError`` to 503 (see the module docstring)."""
    sc = request.config_dict.get(CONTEXT)
    if sc is None:
        return await handler(request)
    tag = f"aiohttp-request-{next(_request_ids)}"
    request[REQUEST_TAG] = tag
    # The handler runs in this coroutine: the tag (a per-coroutine local property) is
    # its jobs', tasks it creates inherit it, and nothing it sets outlives the request.
    with isolated_local_properties():
        sc.addJobTag(tag)
        sc.setJobDescription(f"{request.method} {request.path}")
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if sc._state == "running":
                sc.cancelJobsWithTag(tag)
            raise
        except JobRejectedError as exc:
            raise web.HTTPServiceUnavailable(
                text=f"{exc}\n", headers={"Retry-After": "1"}) from exc


def metrics_handler(ui: web.Application) -> Callable:
    """A handler serving the Prometheus text of the UI sub-application ``ui`` (made by
    ``ui_app``) at another path, e.g. the service's own ``/metrics``."""
    from .metrics import render
    from .ui.rest import GAUGES, STORE

    async def metrics(request: web.Request) -> web.Response:
        gauges = ui.get(GAUGES)
        return web.Response(text=render(ui[STORE], gauges() if gauges else {}),
                            content_type="text/plain", charset="utf-8")

    return metrics


def setup(app: web.Application, master: str = "local[*]", app_name: str | None = None,
          conf: SparkConf | Mapping[str, Any] | None = None, *, ui: str | None = "/spark",
          metrics: str | None = "/metrics", tag_requests: bool = True,
          freeze_gc: bool = True) -> Context:
    """Embed a context in ``app`` before it starts: ``context_ctx`` in its cleanup
    contexts (``freeze_gc`` passed on), the UI mounted at ``ui`` and its metrics at
    ``metrics`` (None: not served), the ``request_jobs`` middleware (``tag_requests``).
    Returns the context (started with the application)."""
    lifecycle = context_ctx(master, app_name, conf, freeze_gc=freeze_gc)
    sc: Context = lifecycle.context  # type: ignore[attr-defined]
    app[CONTEXT] = sc
    app.cleanup_ctx.append(lifecycle)
    if tag_requests:
        app.middlewares.append(request_jobs)
    if ui is not None or metrics is not None:
        sub = ui_app(sc)
        if ui is not None:
            app.add_subapp(ui, sub)
        if metrics is not None:
            app.router.add_get(metrics, metrics_handler(sub))
    return sc
