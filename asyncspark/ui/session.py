"""What a context runs for observability, started and stopped with it: the status store
(when the UI, the event log or the status tracker needs it), the web UI server
(``spark.ui.enabled``, ``spark.ui.port``), the event log (``spark.eventLog.*``), the
console progress bar (``spark.ui.showConsoleProgress``), the event-loop lag probe and
the application events (start, environment, end).

Nothing here is attached when nothing asks for it, so the scheduler's hot path builds no
events then (the listener bus is inactive).
"""

from __future__ import annotations

import asyncio
import collections
import getpass
import logging
import os
import platform
import re
import sys
import time
from typing import Any

from ..listener import (
    SparkListenerApplicationEnd,
    SparkListenerApplicationStart,
    SparkListenerBlockUpdated,
    SparkListenerEnvironmentUpdate,
    SparkListenerExecutorAdded,
    SparkListenerStageCompleted,
    SparkListenerUnpersistRDD,
)
from .store import StatusStore

__all__ = ["Observability", "interactive"]

log: logging.Logger = logging.getLogger("asyncspark.ui")
_LAG_PERIOD = 0.5
_STAGES_WITH_ACCUMULATORS = 1000


def interactive() -> bool:
    """Whether Python runs a REPL (``python -i``, the plain or IPython prompt)."""
    return bool(getattr(sys, "ps1", None) or sys.flags.interactive
                or "IPython" in sys.modules)


class Observability:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        conf = ctx.conf
        self.store: StatusStore | None = None
        self.server: Any = None
        self.event_log: Any = None
        self.progress: Any = None
        self.lag: float = 0.0
        self._lag_task: asyncio.Task | None = None
        # stage id -> {accumulator id: value after its latest task}, for StageCompleted
        self.stage_accums: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        ctx._accumulators.on_applied = self._accumulators_applied
        # The DAG scheduler's listener events go straight to the bus (nothing in between
        # on the scheduler's path); what they gain on the way is added in the batch.
        self.post = ctx.listener_bus.post
        ctx.listener_bus.prepare[SparkListenerStageCompleted] = self._add_accumulables
        self.ui_enabled: bool = conf.ui_enabled if conf.ui_enabled is not None else interactive()
        show = conf.show_console_progress
        self.show_progress: bool = show if show is not None else (
            interactive() and sys.stderr.isatty())

    def _accumulators_applied(self, stage_id: int, values: list) -> None:
        if not self.ctx.listener_bus.active:
            return
        d = self.stage_accums.get(stage_id)
        if d is None:
            d = self.stage_accums[stage_id] = {}
            if len(self.stage_accums) > _STAGES_WITH_ACCUMULATORS:
                self.stage_accums.popitem(last=False)
        for aid, value in values:
            d[aid] = value

    def block_updated(self, block: str, executor_id: str, where: str, size: int) -> None:
        bus = self.ctx.listener_bus
        if bus.active:
            bus.post(SparkListenerBlockUpdated(block, executor_id, where, size, time.time()))

    def unpersisted(self, rdd_id: int) -> None:
        bus = self.ctx.listener_bus
        if bus.active:
            bus.post(SparkListenerUnpersistRDD(rdd_id, time.time()))

    def _add_accumulables(self, event: SparkListenerStageCompleted) -> None:
        """A completed stage gets its accumulator values (Spark's
        ``StageInfo.accumulables``), in the bus's batch, before any listener sees it."""
        values = self.stage_accums.get(event.stageId) if self.stage_accums else None
        if values and not event.accumulables:
            event.accumulables = [{"id": aid, "name": None, "value": str(v)}
                                  for aid, v in sorted(values.items())]

    def status_store(self) -> StatusStore:
        if self.store is None:
            c = self.ctx.conf
            self.store = StatusStore(self.ctx.applicationId, c.app_name,
                                     retained_jobs=c.ui_retained_jobs,
                                     retained_stages=c.ui_retained_stages,
                                     retained_tasks=c.ui_retained_tasks)
            self.store.start_time = self.ctx.startTime / 1000
            self.store.queue_name = "appStatus"  # type: ignore[attr-defined]
            self.store.log_paths = self._log_paths
            if self.ctx._state in ("starting", "running"):
                self._seed(self.store)  # it missed the application's first events
            self.ctx.listener_bus.add(self.store)
        return self.store

    def _seed(self, store: StatusStore) -> None:
        ctx = self.ctx
        store.onApplicationStart(self._app_start())
        store.onEnvironmentUpdate(self._environment())
        ts = ctx._task_scheduler
        for eid, ex in list(ts.executors.items()) if ts is not None else []:
            store.onExecutorAdded(SparkListenerExecutorAdded(eid, ex.host, time.time()))

    def _app_start(self) -> SparkListenerApplicationStart:
        ctx = self.ctx
        return SparkListenerApplicationStart(ctx.conf.app_name, ctx.applicationId,
                                             ctx.startTime / 1000, _user())

    def _environment(self) -> SparkListenerEnvironmentUpdate:
        ctx = self.ctx
        return SparkListenerEnvironmentUpdate({
            "runtime": {"pythonVersion": platform.python_version(),
                        "pythonExecutable": sys.executable,
                        "asyncsparkVersion": ctx.version},
            "sparkProperties": sorted([k, _redact(k, v)] for k, v in ctx.conf.raw.items()),
            "systemProperties": sorted([
                ["os.name", platform.system()], ["os.version", platform.release()],
                ["user.dir", os.getcwd()], ["host", platform.node()]]),
        })

    def _log_paths(self, executor_id: str) -> dict[str, Any] | None:
        backend = self.ctx._backend
        path = getattr(backend, "executor_log_path", None)
        return {"stderr": path(executor_id)} if path is not None else None

    def before_start(self) -> None:
        """Attach the listeners the configuration asks for (before the bus starts)."""
        conf = self.ctx.conf
        if self.ui_enabled:
            self.status_store()
        if conf.event_log_enabled:
            from ..eventlog import EventLogWriter

            writer = EventLogWriter(conf.event_log_dir, self.ctx.applicationId,
                                    conf.event_log_compress)
            try:
                writer.open()
            except OSError as exc:
                from ..errors import ConfigError

                raise ConfigError(f"spark.eventLog.dir: cannot write the event log "
                                  f"{writer.path}.inprogress: {exc}") from exc
            self.event_log = writer
            self.ctx.listener_bus.add(writer)
        if self.show_progress:
            from ..progress import ConsoleProgressBar

            self.progress = ConsoleProgressBar()
            self.ctx.listener_bus.add(self.progress)

    def post_application_start(self) -> None:
        bus = self.ctx.listener_bus
        if not bus.active:
            return
        bus.post(self._app_start())
        bus.post(self._environment())

    async def after_start(self) -> None:
        """Serve the UI (the context is running)."""
        if not self.ui_enabled:
            return
        from . import UIServer, ui_app

        server = UIServer(ui_app(self.ctx), self.ctx.conf.rpc_host, self.ctx.conf.ui_port,
                          ssl_context=self.ctx._tls.ui)  # HTTPS: spark.ssl.ui.enabled
        url = await server.start()
        self.server = server
        log.info("Bound SparkUI to %s, and started at %s", self.ctx.conf.rpc_host, url)
        if interactive():  # as PySpark's shell banner: the URL, whatever the log level
            print(f"asyncspark web UI available at {url}/", file=sys.stderr)
        self._lag_task = asyncio.get_running_loop().create_task(
            self._probe_lag(), name="asyncspark-loop-lag")

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def _probe_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(_LAG_PERIOD)
            self.lag = max(0.0, loop.time() - t0 - _LAG_PERIOD)

    async def stop(self) -> None:
        """Before the bus stops: post ApplicationEnd, stop the UI server."""
        bus = self.ctx.listener_bus
        if bus.active:
            bus.post(SparkListenerApplicationEnd(time.time()))
        if self._lag_task is not None:
            self._lag_task.cancel()
            await asyncio.gather(self._lag_task, return_exceptions=True)
            self._lag_task = None
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()

    async def after_bus_stopped(self) -> None:
        if self.event_log is not None:
            await asyncio.to_thread(self.event_log.close)
        if self.progress is not None:
            self.progress.clear()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


# Spark's spark.redaction.regex default: values of matching keys never reach the UI, the
# REST API or the event log (spark.ssl.privateKeyPassword above all).
_REDACT = re.compile(r"(?i)secret|password|token|access[.]?key")


def _redact(key: str, value: str) -> str:
    return "*********(redacted)" if _REDACT.search(key) else value
