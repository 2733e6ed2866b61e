"""The event log: every listener event as one JSON line with Spark's event names
(``{"Event": "SparkListenerJobStart", ...}``), encoded a batch at a time on the event
loop and written by a thread of its own to ``spark.eventLog.dir`` as
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
from collections.abc import Iterator
from json.encoder import c_make_encoder, encode_basestring
from typing import Any, TextIO

from .listener import (
    SparkListenerApplicationEnd,
    SparkListenerJobEnd,
    SparkListenerStageCompleted,
    SparkListenerStageSubmitted,
    SparkListenerTaskEnd,
    SparkListenerTaskStart,
    event_from_json,
    event_to_json,
)

__all__ = ["EventLogWriter", "encode_line", "list_event_logs", "read_event_log"]

log: logging.Logger = logging.getLogger("asyncspark.eventlog")
IN_PROGRESS = ".inprogress"


_enc = c_make_encoder(None, str, encode_basestring, None, ":", ",", False, False, True) \
    if c_make_encoder is not None else None


def _json(obj: Any) -> str:
    """``json.dumps(obj, default=str)`` without the separators' spaces (one C call)."""
    if _enc is not None:
        return "".join(_enc(obj, 0))
    return json.dumps(obj, default=str, separators=(",", ":"))


def _numbers(*values: Any) -> bool:
    """Whether every value is an int or a finite float (what ``repr`` writes as JSON)."""
    for v in values:
        t = type(v)
        if t is not int and (t is not float or v - v != 0.0):
            return False
    return True


# The events of every task and stage, written by hand (a third of the C encoder's time
# on a dict); each checks its fields are numbers where numbers go, else the generic
# encoding is used. The lines parse to what json.dumps(event_to_json(ev)) gives.
def _task_start(e: SparkListenerTaskStart) -> str | None:
    if not _numbers(e.stageId, e.stageAttemptId, e.taskId, e.index, e.partition,
                    e.attemptNumber, e.time) or type(e.executorId) is not str:
        return None
    return (f'{{"Event":"SparkListenerTaskStart","stageId":{e.stageId},'
            f'"stageAttemptId":{e.stageAttemptId},"taskId":{e.taskId},"index":{e.index},'
            f'"partition":{e.partition},"attemptNumber":{e.attemptNumber},'
            f'"executorId":{encode_basestring(e.executorId)},"time":{e.time!r}}}\n')


def _task_end(e: SparkListenerTaskEnd) -> str | None:
    if not _numbers(e.stageId, e.stageAttemptId, e.taskId, e.index, e.partition,
                    e.duration, e.time) or type(e.executorId) is not str \
            or type(e.reason) is not str or type(e.successful) is not bool:
        return None
    return (f'{{"Event":"SparkListenerTaskEnd","stageId":{e.stageId},'
            f'"stageAttemptId":{e.stageAttemptId},"taskId":{e.taskId},"index":{e.index},'
            f'"partition":{e.partition},"executorId":{encode_basestring(e.executorId)},'
            f'"successful":{"true" if e.successful else "false"},'
            f'"reason":{encode_basestring(e.reason)},"duration":{e.duration!r},'
            f'"time":{e.time!r},"metrics":{_json(e.metrics)}}}\n')


def _stage_submitted(e: SparkListenerStageSubmitted) -> str | None:
    if not _numbers(e.stageId, e.attemptId, e.numTasks, e.time):
        return None
    return (f'{{"Event":"SparkListenerStageSubmitted","stageId":{e.stageId},'
            f'"attemptId":{e.attemptId},"numTasks":{e.numTasks},"time":{e.time!r}}}\n')


def _stage_completed(e: SparkListenerStageCompleted) -> str | None:
    if e.failureReason is not None or e.accumulables \
            or not _numbers(e.stageId, e.attemptId, e.numTasks, e.time):
        return None
    return (f'{{"Event":"SparkListenerStageCompleted","stageId":{e.stageId},'
            f'"attemptId":{e.attemptId},"numTasks":{e.numTasks},"time":{e.time!r},'
            f'"failureReason":null,"accumulables":[]}}\n')


def _job_end(e: SparkListenerJobEnd) -> str | None:
    if not _numbers(e.jobId, e.time) or type(e.jobResult) is not str:
        return None
    return (f'{{"Event":"SparkListenerJobEnd","jobId":{e.jobId},"time":{e.time!r},'
            f'"jobResult":{encode_basestring(e.jobResult)}}}\n')


_LINES: dict[type, Any] = {
    SparkListenerTaskStart: _task_start, SparkListenerTaskEnd: _task_end,
    SparkListenerStageSubmitted: _stage_submitted,
    SparkListenerStageCompleted: _stage_completed, SparkListenerJobEnd: _job_end,
}
_FLUSH_NOW = (SparkListenerJobEnd, SparkListenerApplicationEnd)


def encode_line(event: Any) -> str:
    """The event log's line of ``event`` (JSON with Spark's event name, and a newline)."""
    fast = _LINES.get(type(event))
    if fast is not None:
        line = fast(event)
        if line is not None:
            return line
    return _json(event_to_json(event)) + "\n"


class EventLogWriter:
    """A listener turning each batch of events the bus delivers into JSON lines (on the
    event loop: a few microseconds an event) and handing the text to a thread of its own,
    which writes it every 0.25 s, and when a job or the application ends, at most 0.1 s
    after the write before (waking a thread for each of many short jobs costs them more
    than the encoding: its GIL hand-offs land on the scheduler's path), so the driver's
    event loop does no file I/O and a running application's log has its finished jobs
    within 0.1 s."""

    queue_name = "eventLog"
    FLUSH_PERIOD = 0.25
    MIN_GAP = 0.1  # seconds between two writes woken by job ends

    def __init__(self, directory: str, app_id: str, compress: bool = False) -> None:
        self.directory: str = os.path.abspath(directory.removeprefix("file:"))
        name = app_id + (".gz" if compress else "")
        self.path: str = os.path.join(self.directory, name)
        self.compress = compress
        self._file: TextIO | None = None
        self.failed: bool = False
        self._chunks: list[str] = []  # encoded, not yet written (appends are atomic)
        self._queued = 0  # chunks queued so far
        self._written = 0  # chunks written (or given up on) so far
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._closed = threading.Event()
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

    def _on_event_batch(self, events: list) -> None:
        """The bus's batch: encoded here, written by the thread."""
        lines = _LINES
        out = []
        now = False
        for ev in events:
            cls = type(ev)
            fast = lines.get(cls)
            line = fast(ev) if fast is not None else None
            out.append(line if line is not None else _json(event_to_json(ev)) + "\n")
            if cls in _FLUSH_NOW:
                now = True
        self._put("".join(out), now)

    def _queue(self, event: Any) -> None:
        self._put(encode_line(event), isinstance(event, _FLUSH_NOW))

    def _put(self, text: str, now: bool) -> None:
        self._chunks.append(text)
        self._queued += 1
        if now and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.FLUSH_PERIOD)
            self._wake.clear()
            self._write_pending()
            if self._closing or self._closed.wait(self.MIN_GAP):
                return

    def _write_pending(self) -> None:
        with self._cond:
            chunks, self._chunks = self._chunks, []
            target = self._queued
            f = self._file
            if chunks and f is not None and not self.failed:
                try:
                    f.write("".join(chunks))
                    f.flush()
                except (OSError, ValueError) as exc:
                    self.failed = True
                    log.error("cannot write the event log %s: %s; no more events are "
                              "logged", self.path + IN_PROGRESS, exc)
            self._written = max(self._written, target)
            self._cond.notify_all()

    def flush(self) -> None:
        """Write what is queued now (from any thread but the writer's)."""
        if self._thread is None:
            self._write_pending()
            return
        target = self._queued
        self._wake.set()
        with self._cond:
            self._cond.wait_for(lambda: self._written >= target, 5.0)

    def close(self) -> None:
        """Write what is queued, close the file and give it its final name."""
        if self._thread is not None:
            self._closing = True
            self._closed.set()
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
