"""The event log: every listener event as one JSON line with Spark's event names
(``{"Event": "SparkListenerJobStart", ...}``), written to ``spark.eventLog.dir`` as
``<application id>.inprogress`` and renamed to ``<application id>`` when the application
ends (``.gz`` appended with ``spark.eventLog.compress``). ``read_event_log`` reads one back
(the history server replays it into a status store: ``ui/history.py``).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from .listener import event_from_json, event_to_json

__all__ = ["EventLogWriter", "list_event_logs", "read_event_log"]

log: logging.Logger = logging.getLogger("asyncspark.eventlog")
IN_PROGRESS = ".inprogress"


class EventLogWriter:
    """A listener queueing each event it receives; a thread of its own turns them into
    JSON lines and writes them (every 0.25 s, and at once on job and application end),
    so the driver's event loop only appends to a list."""

    queue_name = "eventLog"
    FLUSH_PERIOD = 0.25

    def __init__(self, directory: str, app_id: str, compress: bool = False) -> None:
        self.directory: str = os.path.abspath(directory.removeprefix("file:"))
        name = app_id + (".gz" if compress else "")
        self.path: str = os.path.join(self.directory, name)
        self.compress = compress
        self._file: TextIO | None = None
        self.failed: bool = False
        self._pending: list = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        tmp = self.path + IN_PROGRESS
        if self.compress:
            self._file = gzip.open(tmp, "wt", encoding="utf-8")
        else:
            self._file = open(tmp, "w", encoding="utf-8")
        self._file.write(json.dumps({"Event": "SparkListenerLogStart",
                                     "Spark Version": "asyncspark"}) + "\n")
        self._thread = threading.Thread(target=self._run, name="asyncspark-event-log",
                                        daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on"):
            return self._queue
        raise AttributeError(name)

    def _queue(self, event: Any) -> None:
        with self._lock:
            self._pending.append(event)
        if type(event).__name__ in ("SparkListenerJobEnd", "SparkListenerApplicationEnd"):
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.FLUSH_PERIOD)
            self._wake.clear()
            self._write_pending()
            if self._closing:
                return

    def _write_pending(self) -> None:
        with self._lock:
            events, self._pending = self._pending, []
        f = self._file
        if not events or f is None or self.failed:
            return
        try:
            f.write("".join(json.dumps(event_to_json(ev), default=str) + "\n"
                            for ev in events))
            f.flush()
        except (OSError, ValueError) as exc:
            self.failed = True
            log.error("cannot write the event log %s: %s; no more events are logged",
                      self.path + IN_PROGRESS, exc)

    def flush(self) -> None:
        """Write what is queued now (from any thread but the writer's)."""
        if self._thread is None:
            self._write_pending()
            return
        with self._lock:
            if not self._pending:
                return
        self._wake.set()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return
            time.sleep(0.005)

    def close(self) -> None:
        """Write what is queued, close the file and give it its final name."""
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join(10.0)
            self._thread = None
        self._write_pending()
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.close()
            os.replace(self.path + IN_PROGRESS, self.path)
        except OSError as exc:
            log.error("cannot finish the event log %s: %s", self.path, exc)


def read_event_log(path: str) -> Iterator[Any]:
    """The events of the log at ``path`` (an unfinished last line, as a running
    application's log may have, is skipped)."""
    opener = gzip.open if path.removesuffix(IN_PROGRESS).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is not JSON (being written?): skipped", path, n)
                continue
            if d.get("Event") == "SparkListenerLogStart":
                continue
            try:
                yield event_from_json(d)
            except (ValueError, TypeError) as exc:
                log.warning("%s line %d: %s: skipped", path, n, exc)


def list_event_logs(directory: str) -> list[str]:
    """The event logs in ``directory`` (finished and in progress), oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise FileNotFoundError(f"event log directory {directory} does not exist") from None
    paths = [os.path.join(directory, n) for n in names if not n.startswith(".")]
    paths = [p for p in paths if os.path.isfile(p)]
    return sorted(paths, key=os.path.getmtime)
