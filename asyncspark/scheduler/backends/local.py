"""LocalBackend: ``local[N]`` — N executor subprocesses on this machine.

Process management only: the driver's side of the executors' connections (handshake,
registration, heartbeats, message routing) and the bookkeeping every backend keeps are
``endpoint.py``'s ``CoarseGrainedBackend``, which this subclasses.

Start-up listens on an ephemeral loopback port, spawns the executors concurrently with
``asyncio.create_subprocess_exec`` and waits (bounded) until every one has connected
back and authenticated (the per-application secret is passed in its environment, never
on the command line).

A dead executor (process exit or lost connection) is reported to the task scheduler at
once and replaced, at most ``asyncspark.executor.maxReplacementsPerMinute`` times a minute.
A hung one (alive but silent: stuck in C code, SIGSTOPped) is declared lost when it has
sent no heartbeat for ``asyncspark.executor.heartbeatTimeout`` (one timer per executor,
re-armed for the remaining time), then killed and replaced. A process that died of a
crash signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) or exited on its own with an
error code took the task it was running with it: that failure counts against
``spark.task.maxFailures``; an executor killed from outside (SIGKILL, SIGTERM) or by the
driver does not.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ...conf import Config
from ...errors import ConfigError, ExecutorLostError
from ...transport import handshake
from ...transport.messages.control import StopExecutor
from ..task_scheduler import TaskScheduler
from .endpoint import CoarseGrainedBackend

__all__ = ["LocalBackend", "describe_exit"]

log = logging.getLogger("asyncspark.backend")


# Exit codes of an executor that lost its driver (executor.py): not a task's doing.
_CONNECTION_EXITS = frozenset({0, 2, 3})
# Deaths a task can cause by itself (a crash in native code, an abort).
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
                            signal.SIGABRT})


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


_EXIT_GRACE_S = 1.0  # how long a lost connection waits for its process's exit status


def _exited(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie waiting to be reaped, or gone), from
    ``/proc``; False where there is no ``/proc`` to tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2:][:1]
    return state in (b"Z", b"X")


def _app_dir(parent: str | None) -> str:
    """A new private directory (``mkdtemp``: created exclusively, mode 0700) under
    ``parent`` (``spark.local.dir``, made if missing, as Spark does; the system temp
    directory when None)."""
    if parent is not None:
        try:
            os.makedirs(parent, exist_ok=True)  # shared: only a child of ours is used
            return tempfile.mkdtemp(prefix="asyncspark-", dir=parent)
        except OSError as exc:
            raise ConfigError(f"spark.local.dir {parent!r}: cannot make a directory "
                              f"in it: {exc}") from exc
    return tempfile.mkdtemp(prefix="asyncspark-")


class LocalBackend(CoarseGrainedBackend):
    """Executor processes on this machine: spawn, watch, replace, kill, stop. The
    connections and what every backend keeps are ``endpoint.py``'s."""

    def __init__(self, conf: Config, num_executors: int, task_scheduler: TaskScheduler,
                 local_root: str | None = None) -> None:
        super().__init__(conf, task_scheduler)
        self.num_executors = num_executors
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: dict[str, asyncio.Task] = {}
        self._kill_reasons: dict[str, str] = {}
        self._replacements: collections.deque[float] = collections.deque()
        self._next_id = 0
        self.stopping = False
        # A fresh directory of this application's own (mode 0700, made exclusively) under
        # spark.local.dir: other applications sharing that directory (or another user who
        # can write into it) never see, swap or delete this one's files.
        self.local_root = _app_dir(local_root)
        self._launching: set[asyncio.Task] = set()
        self._heartbeat_timers: dict[str, asyncio.TimerHandle] = {}
        self.heartbeat_losses = 0  # executors declared lost for silence

    # -- endpoint hooks ------------------------------------------------------------------

    def _accepts(self, executor_id: str, pid: int) -> bool:
        proc = self.procs.get(executor_id)
        return proc is not None and proc.pid == pid

    def _is_live(self, executor_id: str) -> bool:
        return executor_id in self.procs

    def _on_registered(self, executor_id: str) -> None:
        self._arm_heartbeat_check(executor_id, self.conf.heartbeat_timeout)

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.serve(self.conf.rpc_host)
        results = await asyncio.gather(
            *(self._launch() for _ in range(self.num_executors)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            raise errors[0]

    def executor_log_path(self, executor_id: str) -> str:
        """Where executor ``executor_id`` writes its log (logs.py)."""
        return os.path.join(self.local_root, "logs", f"executor-{executor_id}.log")

    async def _launch(self) -> str:
        loop = asyncio.get_running_loop()
        executor_id = str(self._next_id)
        self._next_id += 1
        fut = loop.create_future()
        self._pending[executor_id] = fut
        local_dir = os.path.join(self.local_root, f"executor-{executor_id}")
        os.mkdir(local_dir, 0o700)  # exclusively: never a directory someone else made
        env = dict(os.environ)
        env[handshake.SECRET_ENV] = self.secret
        env["ASYNCSPARK_UVLOOP"] = "1" if self.conf.use_uvloop else "0"
        # String hashing as PySpark's workers have it: portable_hash partitions keys the
        # same way in every executor and as PySpark does.
        env["PYTHONHASHSEED"] = "0"
        # Executors import what the driver can import: functions defined in the driver's
        # modules are pickled by reference, as cloudpickle does for importable modules.
        env["ASYNCSPARK_DRIVER_PATH"] = os.pathsep.join(
            p or os.getcwd() for p in sys.path)
        from ...logs import LOG_FILE_ENV, LOG_LEVEL_ENV, effective_level

        env[LOG_FILE_ENV] = self.executor_log_path(executor_id)
        env[LOG_LEVEL_ENV] = str(min(effective_level(), logging.INFO))
        host, port = self.address  # type: ignore[misc]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asyncspark.executor", "--driver", f"{host}:{port}",
            "--executor-id", executor_id, "--local-dir", local_dir,
            "--bind-host", self.conf.rpc_host,
            env=env, stdin=subprocess.DEVNULL)
        self.procs[executor_id] = proc
        self._watchers[executor_id] = loop.create_task(
            self._watch(executor_id, proc), name=f"asyncspark-executor-{executor_id}-watch")
        timeout = self.conf.registration_timeout
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(fut)
        except TimeoutError:
            proc.kill()
            raise ExecutorLostError(
                f"executor {executor_id} did not register within {timeout}s "
                f"(asyncspark.executor.registrationTimeout)") from None
        finally:
            self._pending.pop(executor_id, None)
        return executor_id

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
        proc = self.procs.get(executor_id)
        if self.stopping or conn is None or proc is None or proc.returncode is not None:
            return
        timeout = self.conf.heartbeat_timeout
        silent = time.monotonic() - conn.last_heartbeat
        if silent < timeout:
            self._arm_heartbeat_check(executor_id, timeout - silent)
            return
        reason = (f"executor {executor_id} (pid {proc.pid}) sent no heartbeat for "
                  f"{silent:.1f}s (asyncspark.executor.heartbeatTimeout = {timeout:g}s): it "
                  f"is hung or stopped, so it was killed")
        log.warning("%s", reason)
        self.heartbeat_losses += 1
        self._kill_reasons[executor_id] = reason
        self.task_scheduler.executor_lost(executor_id, reason)
        proc.kill()  # SIGKILL reaches a stopped process too

    async def _watch(self, executor_id: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        timer = self._heartbeat_timers.pop(executor_id, None)
        if timer is not None:
            timer.cancel()
        killed = self._kill_reasons.pop(executor_id, None)
        reason = killed or f"executor {executor_id} (pid {proc.pid}) {describe_exit(code)}"
        task_caused = killed is None and task_caused_exit(code)
        fut = self._pending.get(executor_id)
        if fut is not None and not fut.done():
            fut.set_exception(ExecutorLostError(f"{reason} before registering"))
        self.procs.pop(executor_id, None)
        self._watchers.pop(executor_id, None)
        self._forget_executor(executor_id)
        shutil.rmtree(os.path.join(self.local_root, f"executor-{executor_id}"),
                      ignore_errors=True)
        if self.stopping:
            return
        was_registered = executor_id in self.task_scheduler.executors
        self.task_scheduler.executor_lost(executor_id, reason, task_caused)
        if was_registered or fut is None:
            self._replace(reason)

    def _replace(self, reason: str) -> None:
        now = time.monotonic()
        while self._replacements and now - self._replacements[0] > 60.0:
            self._replacements.popleft()
        limit = self.conf.max_replacements_per_minute
        if len(self._replacements) >= limit:
            log.error("not replacing executor: %d replacements in the last minute", limit)
            if not self.procs:
                self.task_scheduler.abort_all(
                    f"all executors died and {limit} replacements in the last minute is the "
                    f"limit (asyncspark.executor.maxReplacementsPerMinute); last: {reason}")
            return
        self._replacements.append(now)
        log.info("Replacing the lost executor (%s)", reason)
        task = asyncio.get_running_loop().create_task(self._launch_replacement())
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def _launch_replacement(self) -> None:
        try:
            await self._launch()
        except Exception as exc:
            if self.stopping:
                return
            log.error("could not start a replacement executor: %s", exc)
            if not self.procs:
                self.task_scheduler.abort_all(f"no executor is left: {exc}")

    def _connection_lost(self, executor_id: str, exc: BaseException | None) -> None:
        if self.stopping:
            return
        proc = self.procs.get(executor_id)
        reason = f"executor {executor_id} lost its connection" + (f": {exc}" if exc else "")
        if proc is None or proc.returncode is not None:
            return  # it has exited: _watch reports the loss, with its exit status
        # Usually the process has just died: give it a moment so that the loss is
        # reported with its exit code or signal (reaping it can take a few hundred ms
        # on a loaded machine), then treat it as hung and kill it.
        task = asyncio.get_running_loop().create_task(
            self._await_exit_or_kill(executor_id, proc, reason))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def _await_exit_or_kill(self, executor_id: str, proc, reason: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), _EXIT_GRACE_S)
        except TimeoutError:
            if _exited(proc.pid):  # dead, not reaped yet: _watch reports it with its status
                return
            self._kill_reasons.setdefault(executor_id, reason)
            self.task_scheduler.executor_lost(executor_id, reason)
            proc.kill()

    def kill_executor(self, executor_id: str, reason: str) -> None:
        """Kill an executor process (it is then reported lost and replaced)."""
        proc = self.procs.get(executor_id)
        if proc is None or proc.returncode is not None:
            return
        log.warning("killing executor %s: %s", executor_id, reason)
        self._kill_reasons[executor_id] = f"executor {executor_id} was killed: {reason}"
        proc.kill()

    # -- stop ----------------------------------------------------------------------------

    async def stop(self) -> None:
        self.stopping = True
        for task in list(self._launching):
            task.cancel()
        for conn in list(self.conns.values()):
            try:
                conn.proto.send(StopExecutor("context stopped"))
            except ConnectionError:
                pass
        procs = list(self.procs.values())
        if procs:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in procs], timeout=3.0)
            for p in procs:
                if p.returncode is None:
                    p.kill()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        for task in list(self._watchers.values()):
            task.cancel()
        for timer in self._heartbeat_timers.values():
            timer.cancel()
        self._heartbeat_timers.clear()
        if self._launching:
            await asyncio.gather(*self._launching, return_exceptions=True)
        await self._close_endpoint()
        shutil.rmtree(self.local_root, ignore_errors=True)  # made by this application

    def release_now(self, on_loop: bool) -> None:
        """Synchronously kill every executor and remove the scratch directory: the last
        step of ``Context.stop()`` (a no-op after an orderly ``stop()``), and all that
        can be done at interpreter exit or on SIGTERM. ``on_loop``: called on the
        loop's thread, so its tasks, timers and connections are dropped too."""
        self.stopping = True
        for proc in list(self.procs.values()):
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except OSError:  # already gone
                    pass
        if on_loop:
            for task in [*self._launching, *self._watchers.values()]:
                task.cancel()
            for timer in self._heartbeat_timers.values():
                timer.cancel()
            self._heartbeat_timers.clear()
            self._abort_endpoint_now()
        shutil.rmtree(self.local_root, ignore_errors=True)  # made by this application
