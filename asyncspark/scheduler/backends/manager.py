"""ExecutorManager: the driver's side of a cluster backend (whatever provides executors).

It listens for executors (``endpoint.py``'s ``CoarseGrainedBackend``), asks a
``ClusterBackend`` (``cluster.py``) for them and reads its ``Launched`` / ``Lost`` events:
a launched executor may register (its id and process id must match), a lost one is
reported to the task scheduler at once (with ``host_lost`` the outputs of its whole host
go), and the backend replaces it, at most ``asyncspark.executor.maxReplacementsPerMinute``
times a minute. Executors that fail to start are retried by the backend with a backoff
(``asyncspark.executor.startBackoff`` doubling up to ``maxStartBackoff``); after
``asyncspark.executor.maxStartFailures`` failures in a row with no executor left, start-up
fails and running jobs are aborted (the backend keeps trying for later jobs).

Liveness as before: a registered executor silent for ``asyncspark.executor.heartbeatTimeout``
is declared lost and killed; one whose connection drops is given a moment for its exit
status, then killed. An executor that died of a crash signal or exited on its own with an
error took its task with it (that failure counts against ``spark.task.maxFailures``); one
killed from outside or by the driver does not.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from ...conf import Config
from ...errors import ExecutorLostError
from ...transport.messages.control import StopExecutor
from ..allocation import AllocationConf
from ..task_scheduler import TaskScheduler
from .cluster import ClusterBackend, ExecutorSpec, Launched, Lost
from .dynamic import DynamicAllocation
from .endpoint import CoarseGrainedBackend

__all__ = ["ExecutorManager", "describe_exit", "task_caused_exit"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

# Exit codes of an executor that lost its driver (executor.py): not a task's doing.
_CONNECTION_EXITS = frozenset({0, 2, 3})
# Deaths a task can cause by itself (a crash in native code, an abort).
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
                            signal.SIGABRT})
_EXIT_GRACE_S = 1.0  # how long a lost connection waits for its process's exit status


def task_caused_exit(code: int | None) -> bool:
    """Whether an executor exit code says its own work killed it (see the module doc)."""
    if code is None or code in _CONNECTION_EXITS:
        return False
    if code > 0:
        return True
    try:
        return signal.Signals(-code) in _CRASH_SIGNALS
    except ValueError:
        return False


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ExecutorManager(CoarseGrainedBackend):
    """Executors from a ``ClusterBackend``: registration, loss, replacement limits,
    heartbeats, kill and stop (see the module docstring)."""

    def __init__(self, conf: Config, num_executors: int, task_scheduler: TaskScheduler,
                 cluster: ClusterBackend, spec: ExecutorSpec | None = None,
                 dag: Any = None) -> None:
        super().__init__(conf, task_scheduler)
        self.cluster = cluster
        # spark.dynamicAllocation.enabled: the target follows the workload (dynamic.py);
        # local[N]'s N is then the default maxExecutors.
        self.allocation: DynamicAllocation | None = None
        if conf.dyn_enabled:
            local = conf.master.strip().startswith("local")  # local, local[N], ...
            self.allocation = DynamicAllocation(self, AllocationConf.from_config(
                conf, default_max=num_executors if local else None), dag)
            num_executors = self.allocation.initial
        self.num_executors: int = num_executors
        self.spec: ExecutorSpec = spec or ExecutorSpec(cores=conf.task_slots)
        self.launched: dict[str, Launched] = {}
        self._lost_waiters: dict[str, asyncio.Future] = {}
        self._kill_reasons: dict[str, str] = {}
        self._timed_out: set[str] = set()  # killed for not registering in time
        self._replacements: collections.deque[float] = collections.deque()
        self._heartbeat_timers: dict[str, asyncio.TimerHandle] = {}
        self._registration_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self._events_task: asyncio.Task | None = None
        self._start_failed: asyncio.Future | None = None
        self._failures_in_row = 0
        self._progress = asyncio.Event()  # an executor registered, or one was lost
        self.last_loss: str = ""
        self.stopping: bool = False
        self.heartbeat_losses: int = 0  # executors declared lost for silence
        self.hosts_lost: int = 0

    @property
    def procs(self) -> dict[str, Any]:
        """The backend's executor processes, where it has local ones (``LocalBackend``)."""
        return getattr(self.cluster, "procs", {})

    @property
    def executor_log_path(self) -> Callable[[str], str] | None:
        """The backend's ``executor_log_path(executor_id)`` where executors' logs are files
        the driver can read (``LocalBackend``), else None."""
        return getattr(self.cluster, "executor_log_path", None)

    @property
    def local_root(self) -> str:
        """The driver's scratch directory (where the backend keeps it)."""
        return self.cluster.local_root  # type: ignore[attr-defined]

    # -- endpoint hooks ------------------------------------------------------------------

    def _accepts(self, executor_id: str, pid: int) -> bool:
        ev = self.launched.get(executor_id)
        return ev is not None and ev.pid == pid

    def _is_live(self, executor_id: str) -> bool:
        return executor_id in self.launched

    def _on_registered(self, executor_id: str) -> None:
        timer = self._registration_timers.pop(executor_id, None)
        if timer is not None:
            timer.cancel()
        self._failures_in_row = 0
        self._progress.set()
        self.cluster.registered(executor_id)
        self._arm_heartbeat_check(executor_id, self.conf.heartbeat_timeout)

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.cluster.connect()
        await self.serve(self.cluster.advertise_host())
        await self.cluster.start(self.address, self.secret)  # type: ignore[arg-type]
        self._events_task = loop.create_task(self._consume(), name="asyncspark-backend-events")
        self._start_failed = loop.create_future()
        self.cluster.set_target(self.num_executors, self.spec)
        timeout = self.conf.registration_timeout
        try:
            async with asyncio.timeout(timeout):
                while len(self.task_scheduler.executors) < self.num_executors:
                    self._progress.clear()
                    await self._progress.wait()
                    if self._start_failed.done():
                        raise self._start_failed.exception()  # type: ignore[misc]
        except TimeoutError:
            await self.stop()
            raise ExecutorLostError(
                f"{self.num_executors - len(self.task_scheduler.executors)} executor(s) did "
                f"not register within {timeout}s (asyncspark.executor.registrationTimeout)"
                + (f"; last: {self.last_loss}" if self.last_loss else "")) from None
        except BaseException:
            await self.stop()
            raise
        finally:
            self._start_failed = None
        if self.allocation is not None:
            self.allocation.start()

    # -- events --------------------------------------------------------------------------

    async def _consume(self) -> None:
        async for ev in self.cluster.events():
            try:
                if type(ev) is Launched:
                    self._launched(ev)
                else:
                    self._lost(ev)  # type: ignore[arg-type]
            except Exception:
                log.exception("handling %s", ev)

    def _launched(self, ev: Launched) -> None:
        if self.stopping:
            return
        loop = asyncio.get_running_loop()
        self.launched[ev.executor_id] = ev
        self._pending[ev.executor_id] = loop.create_future()
        self._registration_timers[ev.executor_id] = loop.call_later(
            self.conf.registration_timeout, self._registration_timed_out, ev.executor_id)

    def _registration_timed_out(self, executor_id: str) -> None:
        self._registration_timers.pop(executor_id, None)
        if executor_id in self.launched and executor_id not in self.task_scheduler.executors:
            self._timed_out.add(executor_id)
            self.kill_executor(executor_id, (
                f"it did not register within {self.conf.registration_timeout}s "
                "(asyncspark.executor.registrationTimeout)"))

    def _lost(self, ev: Lost) -> None:
        eid = ev.executor_id
        for timers in (self._heartbeat_timers, self._registration_timers):
            timer = timers.pop(eid, None)
            if timer is not None:
                timer.cancel()
        self._progress.set()
        waiter = self._lost_waiters.pop(eid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(ev)
        killed = self._kill_reasons.pop(eid, None)
        reason = killed or ev.reason
        self.last_loss = reason
        task_caused = killed is None and task_caused_exit(ev.exit_code)
        launched = self.launched.pop(eid, None)
        fut = self._pending.pop(eid, None)
        if fut is not None and not fut.done():
            fut.set_exception(ExecutorLostError(f"{reason} before registering"))
            fut.exception()  # retrieved: nobody else may wait for it
        was_registered = eid in self.task_scheduler.executors
        self._forget_executor(eid)
        if self.stopping:
            self._timed_out.discard(eid)
            return
        if ev.host_lost and launched is not None:
            self.hosts_lost += 1
            self._host_lost(launched.host, reason)
        if was_registered:
            log.warning("Replacing the lost executor (%s)", reason)
            self.task_scheduler.executor_lost(eid, reason, task_caused)
            self._limit_replacements(reason)
            return
        if (killed is None and not ev.stopped) or eid in self._timed_out:
            self._start_failure(reason)  # not a start cancelled by a lower target
        self._timed_out.discard(eid)

    def _host_lost(self, host: str, reason: str) -> None:
        """A whole node is gone: every executor on it is lost at once (their outputs
        with them), not one by one as their connections time out."""
        for eid, ev in list(self.launched.items()):
            if ev.host == host:
                self._kill_reasons.setdefault(eid, f"its host {host} was lost ({reason})")
                if eid in self.task_scheduler.executors:
                    self.task_scheduler.executor_lost(eid, self._kill_reasons[eid])
                self.cluster.kill([eid])

    def _start_failure(self, reason: str) -> None:
        self._failures_in_row += 1
        log.warning("executor start failed (%d in a row): %s", self._failures_in_row, reason)
        if self._failures_in_row < self.conf.max_start_failures or self.task_scheduler.executors:
            return
        msg = (f"{self._failures_in_row} executor starts failed in a row "
               f"(asyncspark.executor.maxStartFailures); last: {reason}")
        if self._start_failed is not None and not self._start_failed.done():
            self._start_failed.set_exception(ExecutorLostError(msg))
        else:
            self.task_scheduler.abort_all(f"no executor is left: {msg}")

    def _limit_replacements(self, reason: str) -> None:
        now = time.monotonic()
        while self._replacements and now - self._replacements[0] > 60.0:
            self._replacements.popleft()
        limit = self.conf.max_replacements_per_minute
        if len(self._replacements) < limit:
            self._replacements.append(now)
            return
        log.error("not replacing executor: %d replacements in the last minute", limit)
        target = getattr(self.cluster, "target", self.num_executors)
        self.cluster.set_target(max(0, target - 1), self.spec)
        if not self.launched:
            self.task_scheduler.abort_all(
                f"all executors died and {limit} replacements in the last minute is the "
                f"limit (asyncspark.executor.maxReplacementsPerMinute); last: {reason}")

    # -- liveness ------------------------------------------------------------------------

    def _arm_heartbeat_check(self, executor_id: str, delay: float) -> None:
        old = self._heartbeat_timers.pop(executor_id, None)
        if old is not None:
            old.cancel()
        self._heartbeat_timers[executor_id] = asyncio.get_running_loop().call_later(
            delay, self._check_heartbeat, executor_id)

    def _check_heartbeat(self, executor_id: str) -> None:
        """Timer: declare an executor lost (and kill it) once it has been silent for
        ``heartbeatTimeout``; else check again when that would be the case."""
        self._heartbeat_timers.pop(executor_id, None)
        conn = self.conns.get(executor_id)
        ev = self.launched.get(executor_id)
        if self.stopping or conn is None or ev is None:
            return
        timeout = self.conf.heartbeat_timeout
        silent = time.monotonic() - conn.last_heartbeat
        if silent < timeout:
            self._arm_heartbeat_check(executor_id, timeout - silent)
            return
        reason = (f"executor {executor_id} (pid {ev.pid} on {ev.host}) sent no heartbeat for "
                  f"{silent:.1f}s (asyncspark.executor.heartbeatTimeout = {timeout:g}s): it "
                  f"is hung or stopped, so it was killed")
        log.warning("%s", reason)
        self.heartbeat_losses += 1
        self._kill_reasons[executor_id] = reason
        self.task_scheduler.executor_lost(executor_id, reason)
        self.cluster.kill([executor_id])  # SIGKILL reaches a stopped process too

    def _connection_lost(self, executor_id: str, exc: BaseException | None) -> None:
        if self.stopping or executor_id not in self.launched:
            return  # gone already: its Lost event reported it
        reason = f"executor {executor_id} lost its connection" + (f": {exc}" if exc else "")
        # Usually the process has just died: give it a moment so that the loss is
        # reported with its exit code or signal, then treat it as hung and kill it.
        task = asyncio.get_running_loop().create_task(
            self._await_exit_or_kill(executor_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _await_exit_or_kill(self, executor_id: str, reason: str) -> None:
        waiter = self._lost_waiters.get(executor_id)
        if waiter is None:
            waiter = self._lost_waiters[executor_id] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), _EXIT_GRACE_S)
        except TimeoutError:
            exited = getattr(self.cluster, "has_exited", None)
            if exited is not None and exited(executor_id):
                return  # dead, not reaped yet: its Lost event carries its status
            if executor_id not in self.launched:
                return
            self._kill_reasons.setdefault(executor_id, reason)
            self.task_scheduler.executor_lost(executor_id, reason)
            self.cluster.kill([executor_id])
        finally:
            if self._lost_waiters.get(executor_id) is waiter and waiter.done():
                self._lost_waiters.pop(executor_id, None)

    def kill_executor(self, executor_id: str, reason: str) -> None:
        """Kill an executor (it is then reported lost and replaced)."""
        if executor_id not in self.launched:
            return
        log.warning("killing executor %s: %s", executor_id, reason)
        self._kill_reasons[executor_id] = f"executor {executor_id} was killed: {reason}"
        self.cluster.kill([executor_id])

    def scale(self, n: int, remove: list[str] | None = None,
              reasons: dict[str, str] | None = None) -> None:
        """Keep ``n`` executors; to scale down, stop ``remove`` (the driver's choice:
        idle ones, holding no needed shuffle output) rather than the newest."""
        if remove:
            for eid in remove:
                reason = self._kill_reasons[eid] = (reasons or {}).get(
                    eid, f"executor {eid} was removed (target {n})")
                # Out of scheduling at once (no launch while it stops; its outputs go
                # with it): then its end is a removal, not a loss to replace.
                if eid in self.task_scheduler.executors:
                    self.task_scheduler.executor_lost(eid, reason)
            self.cluster.kill(remove)
        self.num_executors = n
        self.cluster.set_target(n, self.spec)

    # -- stop ----------------------------------------------------------------------------

    def release_now(self, on_loop: bool) -> None:
        """Synchronously stop every executor and remove the scratch directory: the last
        step of ``Context.stop()`` (a no-op after an orderly ``stop()``), and all that can
        be done at interpreter exit or on SIGTERM. ``on_loop``: called on the loop's
        thread, so its timers, tasks and connections are dropped too."""
        self.stopping = True
        release = getattr(self.cluster, "release_now", None)
        if release is not None:
            release()
        if on_loop:
            self._cancel_timers_and_tasks()
            if self._events_task is not None:
                self._events_task.cancel()
            self._abort_endpoint_now()

    def _cancel_timers_and_tasks(self) -> None:
        if self.allocation is not None:
            self.allocation.stop()
        for timers in (self._heartbeat_timers, self._registration_timers):
            for timer in timers.values():
                timer.cancel()
            timers.clear()
        for task in list(self._tasks):
            task.cancel()

    async def stop(self) -> None:
        self.stopping = True
        for conn in list(self.conns.values()):
            try:
                conn.proto.send(StopExecutor("context stopped"))
            except ConnectionError:
                pass
        self._cancel_timers_and_tasks()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cluster.close()
        if self._events_task is not None:
            try:
                await asyncio.wait_for(self._events_task, 5.0)
            except (TimeoutError, asyncio.CancelledError):
                self._events_task.cancel()
        await self._close_endpoint()
