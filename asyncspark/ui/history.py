"""The history server (``asyncspark history DIR``): the web UI and REST API of the
applications whose event logs (``spark.eventLog.dir``) are in a directory, finished or
still running, each replayed into its own status store.

``/api/v1/applications`` lists them all and ``/api/v1/applications/{id}/...`` answers as
the live application did; the pages of one are under ``/history/{id}/``. Logs are read
incrementally: a request re-reads what was appended since (a running application's log
grows), at most once a second.
"""

from __future__ import annotations

import gzip
import html
import json
import logging
import os
import time

from aiohttp import web

from ..eventlog import IN_PROGRESS, list_event_logs
from ..listener import _METHODS, event_from_json
from .pages import add_page_routes
from .rest import STORES, add_rest_routes
from .store import StatusStore

__all__ = ["HistoryProvider", "history_app"]

log: logging.Logger = logging.getLogger("asyncspark.history")
_REFRESH = 1.0


class _Log:
    """One event log and the store it replays into (``offset``: bytes consumed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.store = StatusStore()
        self.offset = 0
        self.size = -1

    def update(self) -> None:
        path = self.path
        if not os.path.exists(path) and path.endswith(IN_PROGRESS):
            final = path.removesuffix(IN_PROGRESS)
            if os.path.exists(final):  # the application ended meanwhile
                self.path = path = final
        try:
            size = os.path.getsize(path)
        except OSError:
            return
        if size == self.size:
            return
        self.size = size
        if path.removesuffix(IN_PROGRESS).endswith(".gz"):
            # gzip cannot be read from the middle: replay from the start
            self.store, self.offset = StatusStore(), 0
            with gzip.open(path, "rb") as f:
                self._replay(f.read(), final_chunk=not path.endswith(IN_PROGRESS))
            return
        with open(path, "rb") as f:
            f.seek(self.offset)
            self._replay(f.read(), final_chunk=False)

    def _replay(self, data: bytes, final_chunk: bool) -> None:
        end = data.rfind(b"\n") + 1
        if final_chunk:
            end = len(data)
        self.offset += end
        for n, line in enumerate(data[:end].splitlines()):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                if d.get("Event") == "SparkListenerLogStart":
                    continue
                ev = event_from_json(d)
            except (ValueError, TypeError) as exc:
                log.warning("%s: skipped an event (%s): line %d of this read", self.path,
                            exc, n + 1)
                continue
            method = getattr(self.store, _METHODS.get(type(ev), "onOtherEvent"), None)
            if method is not None:
                method(ev)


class HistoryProvider:
    """The applications of a directory of event logs, kept up to date."""

    def __init__(self, directory: str) -> None:
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"event log directory {directory} does not exist")
        self.directory = directory
        self.logs: dict[str, _Log] = {}
        self._checked = 0.0

    def stores(self) -> dict[str, StatusStore]:
        now = time.monotonic()
        if now - self._checked >= _REFRESH:
            self._checked = now
            self.refresh()
        return {lg.store.app_id: lg.store for lg in self.logs.values() if lg.store.app_id}

    def refresh(self) -> None:
        known = {lg.path.removesuffix(IN_PROGRESS) for lg in self.logs.values()}
        for path in list_event_logs(self.directory):
            key = path.removesuffix(IN_PROGRESS)
            if key not in known:
                self.logs[key] = _Log(path)
                known.add(key)
        for lg in self.logs.values():
            try:
                lg.update()
            except OSError as exc:
                log.warning("cannot read the event log %s: %s", lg.path, exc)


def history_app(directory: str) -> web.Application:
    """The history server's application over the event logs in ``directory``."""
    from . import _events, add_sse

    provider = HistoryProvider(directory)
    provider.refresh()
    app = web.Application()
    app[STORES] = provider.stores
    add_sse(app)
    add_rest_routes(app)
    add_page_routes(app, "/history/{app}")
    app.router.add_get("/history/{app}/events", _events)

    async def index(request: web.Request) -> web.Response:
        rows = []
        for app_id, store in sorted(provider.stores().items()):
            a = store.application()["attempts"][0]
            rows.append(f"<tr><td><a href='history/{html.escape(app_id)}/jobs/'>"
                        f"{html.escape(app_id)}</a></td><td>{html.escape(store.app_name)}</td>"
                        f"<td>{a['startTime']}</td><td>{a['endTime'] if a['completed'] else ''}"
                        f"</td><td>{'' if a['completed'] else 'running'}</td></tr>")
        body = ("<!doctype html><html><head><meta charset='utf-8'><title>History Server"
                "</title></head><body><h2>asyncspark History Server</h2><p>Event log "
                f"directory: {html.escape(directory)}</p><table border='1'><tr><th>App ID"
                "</th><th>App Name</th><th>Started</th><th>Completed</th><th></th></tr>"
                + "".join(rows) + "</table></body></html>")
        return web.Response(text=body, content_type="text/html")

    app.router.add_get("/", index)
    return app
