"""The console progress bar (Spark's format, rate-limited, cleared), the event log
(JSON lines, in-progress name, gzip, an unfinished last line), the Prometheus text and
setLogLevel."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re

import pytest

from asyncspark.eventlog import IN_PROGRESS, EventLogWriter, encode_line, read_event_log
from asyncspark.listener import (
    SparkListenerExecutorAdded,
    SparkListenerJobEnd,
    SparkListenerJobStart,
    SparkListenerStageCompleted,
    SparkListenerStageSubmitted,
    SparkListenerTaskEnd,
    SparkListenerTaskStart,
    event_to_json,
)
from asyncspark.logs import parse_level, set_log_level
from asyncspark.metrics import render
from asyncspark.progress import FIRST_DELAY, UPDATE_PERIOD, ConsoleProgressBar, render_bar
from asyncspark.ui.store import StatusStore


def test_render_bar_is_sparks_format():
    # 17 columns for the bar: 17 * 12 // 40 = 5 done
    assert render_bar([(3, 40, 12, 2)], 40) == "[Stage 3:=====>" + " " * 11 + "(12 + 2) / 40]"
    two = render_bar([(1, 10, 10, 0), (2, 4, 0, 4)], 80)
    assert two.startswith("[Stage 1:=")
    assert "(10 + 0) / 10][Stage 2:>" in two
    assert two.endswith("(0 + 4) / 4]")
    assert render_bar([], 80) == ""


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def task(stage, tid, ok=True):
    return (SparkListenerTaskStart(stage, 0, tid, tid, tid, 0, "0", 0.0),
            SparkListenerTaskEnd(stage, 0, tid, tid, tid, "0", ok, "Success", 0.1, 0.0))


def test_progress_bar_waits_rate_limits_and_clears():
    out, clock = io.StringIO(), Clock()
    bar = ConsoleProgressBar(out, clock, width=40)
    bar.onStageSubmitted(SparkListenerStageSubmitted(3, 0, 4, 0.0))
    start, end = task(3, 0)
    bar.onTaskStart(start)
    assert out.getvalue() == ""  # a stage is drawn once it has run FIRST_DELAY
    clock.t = FIRST_DELAY
    bar.onTaskEnd(end)
    assert out.getvalue() == "\r[Stage 3:====>" + " " * 14 + "(1 + 0) / 4]"
    draws = out.getvalue().count("\r")
    for i in range(1, 3):  # within UPDATE_PERIOD: no redraw
        s, e = task(3, i)
        bar.onTaskStart(s)
        bar.onTaskEnd(e)
    assert out.getvalue().count("\r") == draws
    clock.t += UPDATE_PERIOD * 1.01
    s, _ = task(3, 3)
    bar.onTaskStart(s)
    assert out.getvalue().endswith("(3 + 1) / 4]")
    bar.onStageCompleted(SparkListenerStageCompleted(3, 0, 4, 1.0))
    assert out.getvalue().endswith("\r" + " " * 40 + "\r")  # cleared at stage end
    bar.onJobEnd(SparkListenerJobEnd(0, 1.0, "JobSucceeded"))
    assert out.getvalue().count(" " * 40) == 1  # nothing more to clear


def test_short_stage_draws_nothing():
    out, clock = io.StringIO(), Clock()
    bar = ConsoleProgressBar(out, clock, width=40)
    bar.onStageSubmitted(SparkListenerStageSubmitted(0, 0, 1, 0.0))
    s, e = task(0, 0)
    bar.onTaskStart(s)
    bar.onTaskEnd(e)
    bar.onStageCompleted(SparkListenerStageCompleted(0, 0, 1, 0.0))
    assert out.getvalue() == ""


@pytest.mark.parametrize("compress", [False, True])
def test_event_log_round_trip(tmp_path, compress):
    w = EventLogWriter(str(tmp_path / "logs"), "local-1", compress)
    w.open()
    events = [SparkListenerJobStart(0, 1.0, [0], {"k": "v"}),
              SparkListenerJobEnd(0, 2.0, "JobSucceeded")]
    for ev in events:
        getattr(w, "onJobStart" if isinstance(ev, SparkListenerJobStart) else "onJobEnd")(ev)
    name = "local-1" + (".gz" if compress else "")
    assert (tmp_path / "logs" / (name + IN_PROGRESS)).exists()
    if not compress:  # a running application's log has its events written already
        w.flush()
        text = (tmp_path / "logs" / (name + IN_PROGRESS)).read_text()
        assert text.count("\n") == 3
    w.close()
    path = tmp_path / "logs" / name
    assert path.exists()
    assert not (tmp_path / "logs" / (name + IN_PROGRESS)).exists()
    opener = gzip.open if compress else open
    with opener(path, "rt") as f:
        first = json.loads(f.readline())
    assert first["Event"] == "SparkListenerLogStart"
    assert list(read_event_log(str(path))) == events


def test_event_log_reader_skips_an_unfinished_line(tmp_path):
    path = tmp_path / "app.inprogress"
    line = json.dumps({"Event": "SparkListenerJobEnd", "jobId": 1, "time": 2.0,
                       "jobResult": "JobSucceeded"})
    path.write_text(line + "\n" + line[:20])
    assert list(read_event_log(str(path))) == [SparkListenerJobEnd(1, 2.0, "JobSucceeded")]


def test_event_log_write_failure_is_logged_once(tmp_path, caplog):
    w = EventLogWriter(str(tmp_path), "app")
    w.open()
    w._file.close()  # writes now fail
    with caplog.at_level(logging.ERROR, "asyncspark.eventlog"):
        w.onJobEnd(SparkListenerJobEnd(0, 1.0, "JobSucceeded"))
        w.flush()
        w.onJobEnd(SparkListenerJobEnd(1, 1.0, "JobSucceeded"))
        w.flush()
        w.close()
    assert caplog.text.count("cannot write the event log") == 1


def test_prometheus_text():
    store = StatusStore("app-7")
    store.onJobStart(SparkListenerJobStart(0, 1.0, [0], {}, []))
    text = render(store, {"asyncspark_scheduler_queue_depth": ("Queue.", 3)})
    lines = text.splitlines()
    assert "# TYPE asyncspark_jobs gauge" in lines
    assert 'asyncspark_jobs{application="app-7",status="running"} 1' in lines
    assert 'asyncspark_scheduler_queue_depth{application="app-7"} 3' in lines
    for line in lines:  # every sample: name{labels} value
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value)
            assert name.startswith("asyncspark_")


def test_set_log_level():
    logger = logging.getLogger("asyncspark")
    old = logger.level
    try:
        assert set_log_level("info") == logging.INFO
        assert logger.level == logging.INFO
        assert parse_level("WARN") == logging.WARNING
        assert parse_level("OFF") > logging.CRITICAL
        with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
            set_log_level("LOUD")
    finally:
        logger.setLevel(old)


def test_ui_and_listener_keys_are_validated():
    from asyncspark.conf import Config
    from asyncspark.errors import ConfigError

    c = Config.from_items([("spark.ui.port", "0"), ("spark.ui.enabled", "true"),
                           ("spark.ui.retainedJobs", "5")])
    assert (c.ui_port, c.ui_enabled, c.ui_retained_jobs) == (0, True, 5)
    assert Config().ui_enabled is None  # the default: on only in an interactive interpreter
    with pytest.raises(ConfigError, match=re.escape("spark.ui.port must be at most 65535")):
        Config.from_items([("spark.ui.port", "70000")])
    with pytest.raises(ConfigError, match=re.escape("eventqueue.capacity must be at least 1")):
        Config.from_items([("spark.scheduler.listenerbus.eventqueue.capacity", "0")])
    with pytest.raises(ConfigError, match=re.escape("spark.ui.enabled: expected true or false")):
        Config.from_items([("spark.ui.enabled", "maybe")])


async def test_ui_server_takes_the_next_port_when_busy():
    import socket

    from aiohttp import web

    from asyncspark.ui import UIServer

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        server = UIServer(web.Application(), "127.0.0.1", port, retries=16)
        await server.start()
        try:
            assert port < server.bound_port <= port + 16
        finally:
            await server.stop()
        wanted = re.escape(f"cannot serve the web UI on 127.0.0.1 ports {port}")
        with pytest.raises(OSError, match=wanted):
            await UIServer(web.Application(), "127.0.0.1", port, retries=0).start()
    finally:
        busy.close()


@pytest.mark.parametrize("event", [
    SparkListenerTaskStart(1, 0, 7, 2, 3, 1, "exec-1", 1764800000.123456),
    SparkListenerTaskEnd(1, 0, 7, 2, 3, "0", True, "Success", 0.25, 2.5,
                         {"executorRunTime": 4, "resultSize": 10}),
    SparkListenerTaskEnd(1, 0, 7, 2, 3, "é\"x", False, 'boom: "quoted"\nline\t\u2603', 0.1,
                         3.0, {}),
    SparkListenerTaskEnd(1, 0, 7, 2, 3, "0", True, "Success", float("inf"), 3.0, {}),
    SparkListenerTaskEnd(1, 0, 7, 2, 3, "0", 1, "Success", 0.1, None, {"odd": b"x"}),
    SparkListenerStageSubmitted(4, 1, 8, 5.0),
    SparkListenerStageCompleted(4, 1, 8, 6.0),
    SparkListenerStageCompleted(4, 1, 8, 6.0, "failed: why", [{"id": 1, "value": "3"}]),
    SparkListenerJobStart(2, 1.0, [3, 4], {"k": "v"}, [{"stageId": 3}], [{"id": 1}]),
    SparkListenerJobEnd(2, 7.0, "JobFailed: ValueError: \"x\""),
    SparkListenerJobEnd(True, 7.0, "JobSucceeded"),
    SparkListenerExecutorAdded("1", "host", 1.0, {"stderr": "/x"}),
])
def test_an_event_log_line_is_what_json_dumps_gives(event):
    """The hand-written lines of the task and stage events parse to what the generic
    encoding gives, and odd field types fall back to it."""
    line = encode_line(event)
    assert line.endswith("\n")
    assert "\n" not in line[:-1]
    assert json.loads(line) == json.loads(json.dumps(event_to_json(event), default=str))
