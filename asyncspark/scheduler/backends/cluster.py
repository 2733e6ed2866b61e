"""The cluster-manager interface: where executor processes come from.

As in Spark on YARN or Kubernetes, a cluster manager only provides processes; the
driver's endpoint (``endpoint.py``), the scheduler, the executors and the shuffle are the
same whatever provides them. A ``ClusterBackend`` is declarative, like Spark's
``ExecutorPodsAllocator``: the driver says how many executors it wants
(``set_target``), kills the ones it chose (``kill``) and reads what happened from an
async stream of ``Launched`` and ``Lost`` events.

``ProcessAllocator`` is the reconciliation every process-launching backend shares
(``LocalBackend``, ``RayBackend``): it launches while fewer executors are alive than
wanted, stops the newest beyond that, gives every executor a new id (a lost executor is
replaced, never restarted), and retries executors that fail to start (exit or vanish
before they register) after an exponential backoff, reset by the next registration. A
subclass implements ``_spawn`` (start one executor, return a handle once it runs),
``_wait`` (its exit: code and whether its whole host went with it) and ``_terminate``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClusterBackend", "ExecutorSpec", "Launched", "Lost", "ProcessAllocator",
           "StartBackoff", "executor_environment"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

# The environment of an executor process (``python -m asyncspark.executor``): how it
# finds its driver. Never its arguments: they are visible to every local user.
DRIVER_ENV = "ASYNCSPARK_DRIVER"            # host:port of the driver's endpoint
EXECUTOR_ID_ENV = "ASYNCSPARK_EXECUTOR_ID"
BIND_HOST_ENV = "ASYNCSPARK_BIND_HOST"      # the address its servers bind and advertise
LOCAL_DIR_ENV = "ASYNCSPARK_LOCAL_DIR"      # its scratch directory (created by it)
PARENT_PID_ENV = "ASYNCSPARK_PARENT_PID"    # the process it must die with


@dataclass(frozen=True)
class ExecutorSpec:
    """What one executor gets: cores, memory in bytes (None: no limit), custom
    resources (name -> amount) and extra environment variables."""

    cores: int = 1
    memory: int | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Launched:
    """Executor ``executor_id`` runs (process ``pid`` on ``host``) and will register."""

    executor_id: str
    host: str
    pid: int


@dataclass(frozen=True)
class Lost:
    """Executor ``executor_id`` is gone. ``exit_code`` as ``Popen.returncode`` (None:
    unknown); ``host_lost``: its whole node went with it (its shuffle files too);
    ``stopped``: the backend stopped it on purpose (``kill``, or beyond the target), so
    an executor that had not registered yet did not fail to start."""

    executor_id: str
    reason: str
    exit_code: int | None = None
    host_lost: bool = False
    stopped: bool = False


Event = Launched | Lost


class ClusterBackend(abc.ABC):
    """Where executors come from. Every method but ``start`` and ``close`` is called on
    the event loop and returns at once; blocking cluster calls run off the loop."""

    local_root: str  # the driver's scratch directory, owned (and removed) by the backend

    async def connect(self) -> None:  # noqa: B027 - a hook: nothing to reach by default
        """Reach the cluster (idempotent); ``advertise_host`` may need it first."""

    @abc.abstractmethod
    async def start(self, driver_address: tuple[str, int], secret: str) -> None:
        """Connect to the cluster; executors will reach the driver at ``driver_address``
        and prove themselves with ``secret``."""

    @abc.abstractmethod
    def set_target(self, n: int, spec: ExecutorSpec) -> None:
        """Keep ``n`` executors of ``spec`` (idempotent): launch while fewer are alive or
        starting, stop the newest beyond ``n``."""

    @abc.abstractmethod
    def kill(self, executor_ids: Iterable[str]) -> None:
        """Stop these executors (each then gets a ``Lost``); replaced while the target
        asks for more (lower the target in the same step to scale down by choice)."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[Event]:
        """``Launched`` and ``Lost`` events in order; ends after ``close()``."""

    def registered(self, executor_id: str) -> None:  # noqa: B027 - an optional notice
        """The driver tells: ``executor_id`` connected and authenticated (it has
        started: resets the start backoff)."""

    @abc.abstractmethod
    def advertise_host(self) -> str:
        """The address the driver listens on and gives executors, reachable from where
        this backend runs them."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every executor and release everything (idempotent)."""


class StartBackoff:
    """Exponential backoff of executor starts: ``delay()`` is 0 until a start fails,
    then ``initial`` doubling up to ``maximum``; ``succeeded()`` resets it."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial: float = initial
        self.maximum: float = max(initial, maximum)
        self.failures: int = 0

    def failed(self) -> None:
        self.failures += 1

    def succeeded(self) -> None:
        self.failures = 0

    def delay(self) -> float:
        if self.failures == 0:
            return 0.0
        return min(self.maximum, self.initial * 2 ** (self.failures - 1))


def executor_environment(base: Mapping[str, str], *, driver: tuple[str, int], secret: str,
                         executor_id: str, bind_host: str, local_dir: str,
                         parent_pid: int | None, extra: Mapping[str, str] = {}) -> dict[str, str]:
    """The environment of an executor process (see the ``*_ENV`` names above)."""
    from ...transport import handshake

    env = dict(base)
    env.update(extra)
    env[handshake.SECRET_ENV] = secret
    env[DRIVER_ENV] = f"{driver[0]}:{driver[1]}"
    env[EXECUTOR_ID_ENV] = executor_id
    env[BIND_HOST_ENV] = bind_host
    env[LOCAL_DIR_ENV] = local_dir
    if parent_pid is not None:
        env[PARENT_PID_ENV] = str(parent_pid)
    else:
        env.pop(PARENT_PID_ENV, None)
    # String hashing as PySpark's workers have it: portable_hash partitions keys the same
    # way in every executor and as PySpark does.
    env["PYTHONHASHSEED"] = "0"
    return env


class _Executor:
    __slots__ = ("executor_id", "handle", "host", "killing", "pid", "registered", "started",
                 "task")

    def __init__(self, executor_id: str) -> None:
        self.executor_id = executor_id
        self.handle: Any = None
        self.host, self.pid = "", 0
        self.started = time.monotonic()
        self.registered = False
        self.killing: str | None = None  # why we stop it
        self.task: asyncio.Task | None = None


class ProcessAllocator(ClusterBackend):
    """Reconciliation shared by process-launching backends (see the module docstring)."""

    def __init__(self, *, start_backoff: float = 0.5, max_start_backoff: float = 30.0) -> None:
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._executors: dict[str, _Executor] = {}
        self._target = 0
        self._spec = ExecutorSpec()
        self._next_id = 0
        self.backoff: StartBackoff = StartBackoff(start_backoff, max_start_backoff)
        self.start_failures: int = 0  # executors that exited or vanished before registering
        self.driver: tuple[str, int] | None = None
        self.secret: str = ""
        self._closed = False
        self._reconcile_handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._reconcile_at = 0.0
        self._last_end = 0.0  # when the last executor ended (the backoff counts from it)
        self._terminating: set[asyncio.Task] = set()

    # -- subclass hooks ------------------------------------------------------------------

    @abc.abstractmethod
    async def _spawn(self, executor_id: str, spec: ExecutorSpec) -> tuple[Any, str, int]:
        """Start one executor; return (handle, host, pid) once it runs. May raise."""

    @abc.abstractmethod
    async def _wait(self, handle: Any) -> tuple[int | None, bool, str]:
        """Wait until the executor has exited: (exit code, host lost, how it ended)."""

    @abc.abstractmethod
    async def _terminate(self, handle: Any) -> None:
        """Stop the executor (it then exits: ``_wait`` returns)."""

    async def _release(self) -> None:
        """After every executor has ended on ``close()``: release the cluster."""

    # -- the interface -------------------------------------------------------------------

    async def start(self, driver_address: tuple[str, int], secret: str) -> None:
        self.driver, self.secret = driver_address, secret

    def set_target(self, n: int, spec: ExecutorSpec | None = None) -> None:
        if n < 0:
            raise ValueError(f"executor target must be >= 0, got {n}")
        self._target = n
        if spec is not None:
            self._spec = spec
        self._schedule_reconcile(0.0)

    @property
    def target(self) -> int:
        return self._target

    def kill(self, executor_ids: Iterable[str], reason: str = "killed by the driver") -> None:
        for eid in executor_ids:
            ex = self._executors.get(eid)
            if ex is not None and ex.killing is None:
                self._stop(ex, reason)
        self._schedule_reconcile(0.0)

    def registered(self, executor_id: str) -> None:
        ex = self._executors.get(executor_id)
        if ex is not None:
            ex.registered = True
            self.backoff.succeeded()

    async def events(self) -> AsyncIterator[Event]:  # type: ignore[override]
        while True:
            ev = await self._events.get()
            if ev is None:
                return
            yield ev

    def alive(self) -> list[str]:
        """Executors starting or running, not being stopped."""
        return [e.executor_id for e in self._executors.values() if e.killing is None]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reconcile_handle is not None:
            self._reconcile_handle.cancel()
        for ex in list(self._executors.values()):
            if ex.killing is None:
                self._stop(ex, "the backend was closed")
        tasks = [ex.task for ex in self._executors.values() if ex.task is not None]
        tasks += self._terminating
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._release()
        self._events.put_nowait(None)

    # -- reconciliation ------------------------------------------------------------------

    def _schedule_reconcile(self, delay: float) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._reconcile_handle is not None:
            if self._reconcile_at <= at:
                return  # one is due sooner
            self._reconcile_handle.cancel()
        self._reconcile_at = at
        if delay <= 0:
            self._reconcile_handle = loop.call_soon(self._reconcile)
        else:
            self._reconcile_handle = loop.call_later(delay, self._reconcile)

    def _reconcile(self) -> None:
        self._reconcile_handle = None
        if self._closed:
            return
        alive = [e for e in self._executors.values() if e.killing is None]
        excess = len(alive) - self._target
        if excess > 0:
            # Stop the newest first, those not registered yet before those that are.
            alive.sort(key=lambda e: (e.registered, -e.started))
            for ex in alive[:excess]:
                self._stop(ex, f"the executor target is {self._target}")
            return
        missing = -excess
        if missing <= 0:
            return
        delay = self.backoff.delay()
        if delay > 0:
            wait = self._last_end + delay - time.monotonic()
            if wait > 0:
                self._schedule_reconcile(wait)
                return
            missing = 1  # after a failure, one start at a time until one registers
        for _ in range(missing):
            self._launch()

    def _launch(self) -> None:
        eid = str(self._next_id)
        self._next_id += 1
        ex = _Executor(eid)
        self._executors[eid] = ex
        ex.task = asyncio.get_running_loop().create_task(
            self._run(ex), name=f"asyncspark-executor-{eid}")

    def _stop(self, ex: _Executor, reason: str) -> None:
        ex.killing = reason
        if ex.handle is not None:
            task = asyncio.get_running_loop().create_task(self._terminate_quietly(ex))
            self._terminating.add(task)
            task.add_done_callback(self._terminating.discard)
        elif ex.task is not None:
            ex.task.cancel()  # still spawning: _run ends it

    async def _terminate_quietly(self, ex: _Executor) -> None:
        try:
            await self._terminate(ex.handle)
        except Exception as exc:  # it may be gone already
            log.debug("stopping executor %s: %s", ex.executor_id, exc)

    async def _run(self, ex: _Executor) -> None:
        eid = ex.executor_id
        code: int | None = None
        host_lost = False
        how = ""
        try:
            try:
                ex.handle, ex.host, ex.pid = await self._spawn(eid, self._spec)
            except asyncio.CancelledError:
                how = ex.killing or "cancelled"
                raise
            except Exception as exc:
                how = f"could not be started: {exc}"
                log.warning("executor %s %s", eid, how)
                return
            if ex.killing is not None:  # stopped while it was starting
                await self._terminate_quietly(ex)
            else:
                self._events.put_nowait(Launched(eid, ex.host, ex.pid))
            code, host_lost, how = await self._wait(ex.handle)
        except asyncio.CancelledError:
            if ex.handle is not None:
                await self._terminate_quietly(ex)
        finally:
            self._executors.pop(eid, None)
            self._last_end = time.monotonic()
            if not ex.registered and ex.killing is None:
                self.start_failures += 1
                self.backoff.failed()
            reason = (f"executor {eid} was stopped: {ex.killing}" if ex.killing
                      else f"executor {eid}{f' (pid {ex.pid})' if ex.pid else ''} {how}")
            self._events.put_nowait(Lost(eid, reason, code, host_lost,
                                         stopped=ex.killing is not None))
            self._schedule_reconcile(0.0)
