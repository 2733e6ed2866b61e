"""The web UI and REST API as an aiohttp application, and the server that runs it.

``ui_app(sc)`` returns an ``aiohttp.web.Application`` with Spark's UI pages (``/jobs/``,
``/stages/``, ``/storage/``, ``/environment/``, ``/executors/``), the REST API
(``/api/v1/...``), server-sent events (``/events``: a message whenever the status store
changes, at most 4 a second) and Prometheus metrics (``/metrics``); an embedding service
mounts it with ``app.add_subapp("/spark", ui_app(sc))``. ``UIServer`` is what a context
with ``spark.ui.enabled`` runs on ``spark.ui.port`` (``sc.uiWebUrl``).

The pages and the API read the context's status store, which lives on the context's
event loop: a request arriving on another loop (a service embedding a blocking
``asyncspark.sync.SparkContext``) is answered on the context's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .pages import add_page_routes, page_store
from .rest import CLOSING, GAUGES, LOOP, STORAGE, STORE, add_rest_routes
from .store import StatusStore, storage_info

__all__ = ["StatusStore", "UIServer", "ui_app"]

log: logging.Logger = logging.getLogger("asyncspark.ui")

_SSE_INTERVAL = 0.25


def _context(sc: Any) -> Any:
    return getattr(sc, "_ctx", sc)  # asyncspark.sync.SparkContext wraps a Context


@web.middleware
async def _on_context_loop(request: web.Request, handler):
    loop = request.app.get(LOOP)
    if loop is None or request.path.endswith("/events"):
        return await handler(request)
    if loop() in (None, asyncio.get_running_loop()):
        return await handler(request)
    fut = asyncio.run_coroutine_threadsafe(handler(request), loop())
    return await asyncio.wrap_future(fut)


async def _events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``data: <store version>`` whenever the store changed."""
    store = page_store(request)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    last = -1
    idle = 0.0
    closing: asyncio.Event = request.app[CLOSING]
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        while not closing.is_set():
            if store.version != last:
                last = store.version
                await resp.write(f"data: {last}\n\n".encode())
                idle = 0.0
            elif idle >= 15.0:
                await resp.write(b": keep-alive\n\n")
                idle = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), _SSE_INTERVAL)
            idle += _SSE_INTERVAL
    return resp


async def _metrics(request: web.Request) -> web.Response:
    from ..metrics import render

    gauges_of = request.app.get(GAUGES)
    gauges = gauges_of() if gauges_of is not None else {}
    text = render(request.app[STORE], gauges)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Format": "prometheus 0.0.4"})


def store_app(store: StatusStore, *,
              storage: Callable[[], list[dict[str, Any]]] | None = None,
              gauges: Callable[[], Mapping[str, tuple[str, float]]] | None = None,
              loop: Callable[[], asyncio.AbstractEventLoop | None] | None = None
              ) -> web.Application:
    """The UI application over ``store`` (a live context's)."""
    app = web.Application(middlewares=[_on_context_loop])
    app[STORE] = store
    add_sse(app)
    if storage is not None:
        app[STORAGE] = storage
    if gauges is not None:
        app[GAUGES] = gauges
    if loop is not None:
        app[LOOP] = loop

    add_rest_routes(app)
    add_page_routes(app)
    app.router.add_get("/events", _events)
    app.router.add_get("/metrics", _metrics)
    return app


def add_sse(app: web.Application) -> None:
    """What the event streams need: a flag set when the application shuts down."""
    app[CLOSING] = asyncio.Event()

    async def closing(_app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(closing)


def ui_app(sc: Any) -> web.Application:
    """The web UI and REST API of ``sc`` (a ``Context`` or a ``sync.SparkContext``) as an
    aiohttp application: ``app.add_subapp("/spark", ui_app(sc))``. The context's status
    store is attached now if it was not (jobs from then on are shown)."""
    ctx = _context(sc)
    store = ctx.status_store()

    def storage() -> list[dict[str, Any]]:
        master = ctx._block_master
        if master is None:
            return store.rdd_storage()
        blocks = {b: {e: (s.where, s.size) for e, s in locs.items()}
                  for b, locs in master.blocks.items()}
        for b, (host, size) in master.offheap.items():
            blocks.setdefault(b, {})[f"offheap@{host}"] = ("offheap", size)
        return storage_info(blocks)

    def gauges() -> dict[str, tuple[str, float]]:
        dag = ctx._dag
        depth = dag._queue.qsize() if dag is not None and dag._queue is not None else 0
        lag = ctx._loop_lag() if hasattr(ctx, "_loop_lag") else 0.0
        return {
            "asyncspark_scheduler_queue_depth": ("Events waiting for the DAG scheduler.",
                                                 depth),
            "asyncspark_event_loop_lag_seconds": (
                "How late the driver's event loop ran a 0.5 s timer, last time.", lag),
            "asyncspark_listener_events_dropped_total": (
                "Listener-bus events dropped (queues full).", ctx.listener_bus.dropped),
            "asyncspark_uptime_seconds": ("Seconds since the context started.",
                                          time.time() - ctx.startTime / 1000),
        }

    return store_app(store, storage=storage, gauges=gauges, loop=lambda: ctx._loop)


class UIServer:
    """Serves an application on ``host:port`` (0: an ephemeral port; a busy port tries
    the next ``retries`` ones, as Spark's ``spark.port.maxRetries``)."""

    def __init__(self, app: web.Application, host: str, port: int, retries: int = 16,
                 ssl_context: Any = None):
        self.app = app
        self.ssl_context = ssl_context  # HTTPS when set (spark.ssl.ui.enabled)
        self.host = host
        self.port = port
        self.retries = retries
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> str:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        last: OSError | None = None
        ports = [0] if self.port == 0 else range(self.port, self.port + self.retries + 1)
        for port in ports:
            site = web.TCPSite(runner, self.host, port, ssl_context=self.ssl_context)
            try:
                await site.start()
            except OSError as exc:
                last = exc
                continue
            self._runner = runner
            server = site._server
            self.bound_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return self.url
        await runner.cleanup()
        raise OSError(f"cannot serve the web UI on {self.host} ports {self.port}.."
                      f"{self.port + self.retries}: {last}")

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.bound_port}"

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
