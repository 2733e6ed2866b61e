"""LocalBackend: ``local[N]`` — executor subprocesses on this machine.

A ``ClusterBackend`` (``cluster.py``): process management only. The driver's side (the
connections, registration, loss, replacement limits, heartbeats) is ``manager.py``'s
``ExecutorManager``; reconciliation and start retries are ``ProcessAllocator``'s.

Each executor is ``python -m asyncspark.executor`` with everything it needs in its
environment (the driver's address, its id, bind host, scratch directory and the
per-application secret; never on its command line), in a session of its own so that a
Ctrl-C at the driver's terminal never reaches it, and tied to the driver by a parent-death
signal (see ``asyncspark/executor/__main__.py``). Its scratch directory
(``<root>/executor-N``) is removed when it has exited.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from ...conf import Config
from ...errors import ConfigError
from .cluster import ExecutorSpec, ProcessAllocator, executor_environment
from .manager import describe_exit

__all__ = ["LocalBackend"]

_STOP_GRACE_S = 3.0  # how long a closing backend waits for executors told to stop


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


class LocalBackend(ProcessAllocator):
    """Executor processes on this machine (see the module docstring)."""

    def __init__(self, conf: Config, local_root: str | None = None) -> None:
        super().__init__(start_backoff=conf.start_backoff,
                         max_start_backoff=conf.max_start_backoff)
        self.conf = conf
        # A fresh directory of this application's own (mode 0700, made exclusively) under
        # spark.local.dir: other applications sharing that directory (or another user who
        # can write into it) never see, swap or delete this one's files.
        self.local_root = _app_dir(local_root)
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._closing = False

    def advertise_host(self) -> str:
        return self.conf.rpc_host

    def has_exited(self, executor_id: str) -> bool:
        proc = self.procs.get(executor_id)
        return proc is None or proc.returncode is not None or _exited(proc.pid)

    def executor_log_path(self, executor_id: str) -> str:
        """Where executor ``executor_id`` writes its log (logs.py)."""
        return os.path.join(self.local_root, "logs", f"executor-{executor_id}.log")

    def _dir(self, executor_id: str) -> str:
        return os.path.join(self.local_root, f"executor-{executor_id}")

    async def _spawn(self, executor_id: str, spec: ExecutorSpec):
        assert self.driver is not None, "start() first"
        from ...logs import LOG_FILE_ENV, LOG_LEVEL_ENV, effective_level

        extra = {
            LOG_FILE_ENV: self.executor_log_path(executor_id),
            LOG_LEVEL_ENV: str(min(effective_level(), logging.INFO)),
            "ASYNCSPARK_UVLOOP": "1" if self.conf.use_uvloop else "0",
            # Executors import what the driver can import: functions defined in the
            # driver's modules are pickled by reference, as cloudpickle does.
            "ASYNCSPARK_DRIVER_PATH": os.pathsep.join(p or os.getcwd() for p in sys.path),
            **spec.env,
        }
        local_dir = self._dir(executor_id)
        os.mkdir(local_dir, 0o700)  # exclusively: never a directory someone else made
        env = executor_environment(
            os.environ, driver=self.driver, secret=self.secret, executor_id=executor_id,
            bind_host=self.conf.rpc_host, local_dir=local_dir,
            parent_pid=os.getpid(), extra=extra)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "asyncspark.executor", env=env, stdin=subprocess.DEVNULL,
            start_new_session=True)
        self.procs[executor_id] = proc
        return (executor_id, proc), self.conf.rpc_host, proc.pid

    async def _wait(self, handle) -> tuple[int | None, bool, str]:
        executor_id, proc = handle
        try:
            code = await proc.wait()
        finally:
            self.procs.pop(executor_id, None)
            await asyncio.to_thread(shutil.rmtree, self._dir(executor_id), True)
        return code, False, describe_exit(code)

    async def _terminate(self, handle) -> None:
        _, proc = handle
        if proc.returncode is not None:
            return
        if self._closing:  # told to stop by the driver: give it a moment
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), _STOP_GRACE_S)
                return
            except TimeoutError:
                pass
        try:
            proc.kill()  # SIGKILL reaches a stopped process too
        except ProcessLookupError:
            pass

    async def close(self) -> None:
        self._closing = True
        await super().close()

    async def _release(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.local_root, True)  # made by us

    def release_now(self) -> None:
        """Synchronously kill every executor and remove the scratch directory (at
        interpreter exit, on SIGTERM, or as ``stop()``'s last step)."""
        self._closed = True
        for proc in list(self.procs.values()):
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except OSError:  # already gone
                    pass
        shutil.rmtree(self.local_root, ignore_errors=True)
