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
from collections.abc import Iterator
from typing import Any, TextIO

from .listener import event_from_json, event_to_json

__all__ = ["EventLogWriter", "list_event_logs", "read_event_log"]

log = logging.getLogger("asyncspark.eventlog")
IN_PROGRESS = ".inprogress"


class EventLogWriter:
    """A listener writing each event it receives as a JSON line."""

    queue_name = "eventLog"

    def __init__(self, directory: str, app_id: str, compress: bool = False) -> None:
        self.directory = os.path.abspath(directory.removeprefix("file:"))
        name = app_id + (".gz" if compress else "")
        self.path = os.path.join(self.directory, name)
        self.compress = compress
        self._file: TextIO | None = None
        self.failed = False

    def open(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        tmp = self.path + IN_PROGRESS
        if self.compress:
            self._file = gzip.open(tmp, "wt", encoding="utf-8")
        else:
            self._file = open(tmp, "w", encoding="utf-8")
        self._file.write(json.dumps({"Event": "SparkListenerLogStart",
                                     "Spark Version": "asyncspark"}) + "\n")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on"):
            return self._write
        raise AttributeError(name)

    def _write(self, event: Any) -> None:
        f = self._file
        if f is None or self.failed:
            return
        try:
            f.write(json.dumps(event_to_json(event), default=str) + "\n")
            if type(event).__name__ in ("SparkListenerJobEnd", "SparkListenerApplicationEnd"):
                f.flush()
        except (OSError, ValueError) as exc:
            self.failed = True
            log.error("cannot write the event log %s: %s; no more events are logged",
                      self.path + IN_PROGRESS, exc)

    def close(self) -> None:
        """Close the file and give it its final name."""
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
