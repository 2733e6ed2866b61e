"""The executor process: a control connection served by the event loop, and a task
thread serving its own task channel.

With TLS on (``ASYNCSPARK_SSL_*`` in its environment, ``asyncspark/tls.py``) every
connection it makes or serves is TLS first. The event loop registers (HMAC both ways),
sends heartbeats, takes kills and the stop
order, and runs the block server. The task thread connects the task channel
(``task_channel.py``) once the executor is registered: launches come in and batched
``TaskStatuses`` go out on it, with blocking socket calls and no hop through the loop.
It deserializes each stage's binary once and runs tasks one after another. A killed task
gets ``TaskKilledError`` raised in the task thread; a task stuck in C code does not
notice, and the driver kills the whole process after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from resource import RUSAGE_SELF, getrusage
from time import thread_time_ns
from typing import TYPE_CHECKING, Any

from ..errors import AuthenticationError, ProtocolError, TaskKilledError
from ..listener import TASK_TIMES_KEY
from ..runtime import ExecutorEnv, ExecutorSettings, set_env
from ..scheduler.results import direct_limit, too_large_for_executor, write_result_file
from ..taskcontext import TaskContext
from ..transport import handshake
from ..transport.codec import DEFAULT_MAX_FRAME_SIZE
from ..transport.messages.blocks import (
    BlockLocations,
    RddRemoved,
    RegisterBlockManager,
    RemoveRdd,
)
from ..transport.messages.control import (
    Challenge,
    CommitAnswer,
    Heartbeat,
    Register,
    Registered,
    StopExecutor,
)
from ..transport.messages.tasks import (
    FAILED,
    FINISHED,
    INDIRECT,
    KILLED,
    UPDATES_KEY,
    KillTask,
    encode_failure,
    encode_updates,
)
from ..transport.protocol import FramedProtocol
from .broadcasts import BroadcastCache
from .task_channel import TaskChannelClient

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

# Task stamps for tracing: CLOCK_MONOTONIC on Linux, one clock for every process of the
# host, so the driver can compare them with its own (see scheduler/trace.py).
now_ns: Callable[[], int] = time.monotonic_ns

__all__ = ["Executor", "new_client_pool", "preload"]

log: logging.Logger = logging.getLogger("asyncspark.executor")

_FRAME_SLACK = 1024  # room for a TaskStatuses header with one status


class Executor:
    def __init__(self, executor_id: str, host: str, port: int, secret: str,
                 local_dir: str, bind_host: str = "127.0.0.1", tls: Any = None) -> None:
        self.executor_id = executor_id
        # TLS (a tls.TLSConfig): the block server's context, and the client one of the
        # connections to the driver and of the block client pool.
        self.server_ssl: ssl.SSLContext | None = tls.server_context() if tls is not None else None
        self.client_ssl: ssl.SSLContext | None = tls.client_context() if tls is not None else None
        self.driver: tuple[str, int] = (host, port)
        self.secret = secret
        self.local_dir = local_dir
        self.conn: FramedProtocol | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._registered = threading.Event()  # the control connection is authenticated
        self._lock = threading.Lock()
        self._current: int | None = None
        self._killed: set[int] = set()
        self._thread_id: int | None = None
        self._handshake = handshake.Handshake(secret, handshake.EXECUTOR, handshake.DRIVER,
                                              challenger=False)
        self._done: asyncio.Future | None = None
        self.heartbeat_interval: float = 1.0
        self.trace: bool = False  # stamp tasks (asyncspark.trace.tasks): see scheduler/trace.py
        self.max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
        self.env: ExecutorEnv = ExecutorEnv(executor_id, bind_host, local_dir, secret=secret,
                               new_client_pool=new_client_pool, tls_client=self.client_ssl)
        self.env.broadcasts = BroadcastCache(self.env)
        set_env(self.env)
        self.block_server: Any = None
        self._block_server_task: asyncio.Task | None = None
        # Set once the block server listens (tasks wait for it: map outputs name its port).
        self._serving = threading.Event()

    # -- connection ----------------------------------------------------------------------

    async def run(self) -> int:
        self.loop = loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.env.loop = loop
        # Registration comes first (the driver's start-up waits for it): the control
        # connection, then the task thread's own task channel. The thread imports what
        # tasks need after that, and the block server starts once we are registered
        # (tasks wait for it: map outputs name its port).
        threading.Thread(target=self._task_thread, name="asyncspark-task", daemon=True).start()
        tls = {} if self.client_ssl is None else {"ssl": self.client_ssl,
                                                  "server_hostname": self.driver[0]}
        await loop.create_connection(
            lambda: FramedProtocol(self._on_message, self._on_close,
                                   on_connect=self._on_connect), *self.driver, **tls)
        ppid = os.getppid()
        loop.call_later(1.0, self._watch_parent, ppid)
        return await self._done

    async def _start_block_server(self) -> None:
        from ..transport.server import TransportServer

        try:
            settings = self.env.settings
            server = TransportServer(self.secret, self._resolve_block, self.env.host, 0,
                                     max_frame_size=self.max_frame_size,
                                     io_timeout=settings.network_timeout,
                                     auth_timeout=settings.auth_timeout,
                                     max_unauthenticated=settings.max_unauthenticated,
                                     blocks=self.env.block_manager,
                                     name=f"executor {self.executor_id} block server",
                                     ssl=self.server_ssl)
            await server.start()
        except Exception:
            log.exception("executor %s: cannot start the block server", self.executor_id)
            self._finish(2)
            return
        self.block_server = server
        self.env.block_port = server.address[1]
        with contextlib.suppress(ConnectionError):
            self.conn.send(RegisterBlockManager(server.address[1]))  # type: ignore[union-attr]
        self._serving.set()

    def _resolve_block(self, shuffle_id: int, map_id: int, reduce_id: int):
        """Where block (shuffle, map, reduce) of a map output written here is."""
        data_path, offsets = self.env.outputs[(shuffle_id, map_id)]
        start = offsets[reduce_id]
        return data_path, start, offsets[reduce_id + 1] - start

    def _on_connect(self, conn: FramedProtocol) -> None:
        self.conn = conn

    def _finish(self, code: int) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(code)

    def _watch_parent(self, ppid: int) -> None:
        if os.getppid() != ppid:
            log.error("executor %s: driver process went away; exiting", self.executor_id)
            self._finish(3)
            return
        self.loop.call_later(1.0, self._watch_parent, ppid)  # type: ignore[union-attr]

    def _heartbeat(self) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            return
        with self._lock:
            running = [] if self._current is None else [self._current]
        try:
            conn.send(Heartbeat(running))
        except ConnectionError:
            return
        self.loop.call_later(self.heartbeat_interval, self._heartbeat)  # type: ignore[union-attr]

    def _on_close(self, exc: BaseException | None) -> None:
        self._finish(0 if exc is None else 2)

    def _on_message(self, msg: Any) -> None:
        t = type(msg)
        if not self._handshake.proven and t is not Challenge and t is not Registered:
            self.conn.abort(AuthenticationError(  # type: ignore[union-attr]
                f"driver sent {t.__name__} before authenticating"))
            return
        if t is KillTask:
            self._kill(msg.task_id)
        elif t is Challenge:
            if self._handshake.state != "start":
                self.conn.abort(AuthenticationError(  # type: ignore[union-attr]
                    "driver sent a second Challenge"))
                return
            self.conn.send(Register(  # type: ignore[union-attr]
                self.executor_id, self._handshake.proof(msg.nonce),
                # The address it binds and advertises (its node's): what locality, the
                # block master's peers and same-host reads compare, never a hostname.
                self._handshake.nonce, os.getpid(), self.env.host))
        elif t is Registered:
            if not self._handshake.check(msg.mac):
                self.conn.abort(AuthenticationError("driver failed authentication"))  # type: ignore[union-attr]
                return
            settings = ExecutorSettings.from_wire(msg.conf)
            self.heartbeat_interval = settings.heartbeat_interval
            self.max_frame_size = settings.max_frame_size
            self.trace = settings.trace_tasks
            self.env.settings = settings
            self.env.loop = self.loop
            self._start_block_manager(settings)
            from .commit import CommitClient

            self.env.commits = CommitClient(self.loop, self.conn)  # type: ignore[arg-type]
            self.conn.codec.max_frame_size = self.max_frame_size  # type: ignore[union-attr]
            self.loop.call_later(self.heartbeat_interval, self._heartbeat)  # type: ignore[union-attr]
            self._block_server_task = self.loop.create_task(  # type: ignore[union-attr]
                self._start_block_server())
            self._registered.set()
        elif t is BlockLocations:
            self.env.block_manager.link.on_locations(msg)
        elif t is CommitAnswer:
            self.env.commits.on_answer(msg)
        elif t is RemoveRdd:
            self.loop.create_task(self._remove_rdd(msg))  # type: ignore[union-attr]
        elif t is StopExecutor:
            self._finish(0)
        else:
            log.warning("executor %s: unexpected message %s", self.executor_id, t.__name__)

    # -- cached blocks -------------------------------------------------------------------

    def _start_block_manager(self, settings: ExecutorSettings) -> None:
        from ..storage.block_manager import BlockManager, DriverLink

        self.env.block_manager = BlockManager(
            self.executor_id, self.env.host, self.local_dir,
            settings.storage_memory, settings.offheap_dir,
            DriverLink(self.loop, self.conn), self.env.client_pool)  # type: ignore[arg-type]

    async def _remove_rdd(self, msg: RemoveRdd) -> None:
        try:
            count = await asyncio.to_thread(self.env.block_manager.remove_rdd, msg.rdd_id)
        except OSError as exc:
            log.warning("executor %s: cannot remove the blocks of RDD %d: %r",
                        self.executor_id, msg.rdd_id, exc)
            count = -1
        with contextlib.suppress(ConnectionError):
            self.conn.send(RddRemoved(msg.request_id, count))  # type: ignore[union-attr]

    # -- killing -------------------------------------------------------------------------

    def _kill(self, task_id: int) -> None:
        import ctypes

        with self._lock:
            if self._current == task_id and self._thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread_id), ctypes.py_object(TaskKilledError))
            else:
                self._killed.add(task_id)

    # -- task thread ---------------------------------------------------------------------

    def _task_thread(self) -> None:
        self._thread_id = threading.get_ident()
        code = 0
        try:
            self._registered.wait()
            channel = TaskChannelClient.connect(self.driver, self.executor_id, self.secret,
                                                self.max_frame_size, ssl=self.client_ssl)
            from .. import serializers  # the heavy import, once registered

            self._loads, self._dumps_result = serializers.loads, serializers.dumps_result
            preload(self.env.settings.preload, self.executor_id)
            self._serving.wait()
            binaries: dict[int, tuple] = {}
            while True:
                try:
                    self._task_loop(channel, binaries)
                    return  # the driver closed the channel
                except TaskKilledError:
                    continue  # a kill that landed between tasks: nothing to interrupt
        except (OSError, ProtocolError, AuthenticationError) as exc:
            log.error("executor %s: task channel failed: %s", self.executor_id, exc)
            code = 2
        finally:
            try:
                self.loop.call_soon_threadsafe(self._finish, code)  # type: ignore[union-attr]
            except RuntimeError:
                pass  # the loop has ended already

    def _task_loop(self, channel: TaskChannelClient, binaries: dict[int, tuple]) -> None:
        trace = self.trace
        limit = self.max_frame_size
        direct = direct_limit(self.env.settings.max_direct_result_size, limit)

        def forget(binary_ids: list) -> None:
            for bid in binary_ids:
                binaries.pop(bid, None)

        while True:
            item = channel.next_task(forget, self.env.map_outputs, trace)
            if item is None:
                return
            task_id, binary_id, partition, attempt, stage_id = item[:5]
            stamps = [item[5], now_ns()] if len(item) > 5 else None
            with self._lock:
                if task_id in self._killed:
                    self._killed.discard(task_id)
                    killed = True
                else:
                    self._current = task_id
                    killed = False
            if killed:
                channel.add_status([task_id, KILLED, 0, 0, None, None], b"", limit)
                continue
            start = time.perf_counter()
            cpu_start = thread_time_ns()
            gc_start = _gc_ns[0]
            ctx = TaskContext(stage_id, partition, attempt, task_id, self.local_dir)
            try:
                state, payload = FINISHED, self._run_task(
                    binaries, channel.raw_binaries, binary_id, partition, ctx)
            except TaskKilledError:
                state, payload = KILLED, b""
            except BaseException as exc:
                # Cut to fit a frame: a huge report keeps its type (messages/tasks.py).
                state, payload = FAILED, encode_failure(exc, limit - _FRAME_SLACK)
            finally:
                TaskContext._set(None)
            # Out of the task before writing its result: a kill arriving now (the driver
            # failed the job meanwhile) must not interrupt the result file half-written.
            self._leave_task()
            run_us = int((time.perf_counter() - start) * 1e6)
            # A failed or killed attempt reports its metrics too (Spark's onTaskEnd does).
            _task_metrics(ctx._metrics, run_us, thread_time_ns() - cpu_start,
                          len(payload) if state == FINISHED else 0, _gc_ns[0] - gc_start)
            if state == FINISHED and len(payload) > direct:
                state, payload = self._indirect_result(task_id, payload)
            if (state == FINISHED or state == INDIRECT) and ctx._accumulators:
                state, payload = self._attach_accumulator_updates(ctx, state, payload)
            if stamps is not None:
                stamps.append(now_ns())
            channel.add_status([task_id, state, len(payload), run_us, ctx._metrics or None,
                                stamps], payload, limit)

    def _indirect_result(self, task_id: int, payload: bytes) -> tuple[int, bytes]:
        """A result too big for the status frame: refused if over
        ``spark.driver.maxResultSize`` (0: unlimited), else written to a file the driver
        reads (``scheduler/results.py``)."""
        max_result = self.env.settings.max_result_size
        if max_result and len(payload) > max_result:
            return FAILED, encode_failure(too_large_for_executor(task_id, len(payload),
                                                                 max_result))
        try:
            return INDIRECT, write_result_file(self.local_dir, task_id, payload)
        except OSError as exc:
            return FAILED, encode_failure(OSError(
                exc.errno, f"cannot write the result of task {task_id} "
                f"({len(payload)} bytes) to {self.local_dir}: {exc.strerror}"))

    def _attach_accumulator_updates(self, ctx: TaskContext, state: int,
                                    payload: bytes) -> tuple[int, bytes]:
        """A finished task's accumulator updates go with its metrics (only a successful
        attempt's count: see accumulators.py); updates that cannot be pickled fail it."""
        try:
            ctx._metrics[UPDATES_KEY] = encode_updates(ctx._accumulators, self._dumps_result)
        except Exception as exc:
            return FAILED, encode_failure(TypeError(
                f"cannot pickle the accumulator updates of task {ctx._task_id} "
                f"(accumulators {sorted(ctx._accumulators)}): {exc}"))
        return state, payload

    def _leave_task(self) -> None:
        # A kill may land while we leave the task; retry until we are out of it.
        while True:
            try:
                with self._lock:
                    self._current = None
                break
            except TaskKilledError:
                continue

    def _run_task(self, binaries: dict, raw_binaries: dict, binary_id: int, partition: int,
                  ctx: TaskContext) -> bytes:
        entry = binaries.get(binary_id)
        if entry is None:
            raw = raw_binaries.get(binary_id)
            if raw is None:
                raise RuntimeError(f"task binary {binary_id} was never received")
            t0, c0 = time.perf_counter_ns(), thread_time_ns()
            entry = binaries[binary_id] = self._loads(raw)
            # Deserialized once per executor (then cached), so later tasks report 0.
            ctx._metrics["executorDeserializeTime"] = (time.perf_counter_ns() - t0) // 1_000_000
            ctx._metrics["executorDeserializeCpuTime"] = thread_time_ns() - c0
        rdd, func = entry
        TaskContext._set(ctx)
        result = func(rdd.iterator(partition, ctx))
        t0 = time.perf_counter_ns()
        payload = self._dumps_result(result)
        ms = (time.perf_counter_ns() - t0) // 1_000_000
        if ms:
            ctx._metrics["resultSerializationTime"] = ms
        return payload


_rss = [0.0, 0]  # [perf_counter() of the last getrusage, its peak RSS in bytes]
_RSS_PERIOD = 0.1


def _task_metrics(m: dict, run_us: int, cpu_ns: int, result_size: int, gc_ns: int) -> None:
    """A finished task's own metrics, measured once per task, never per record, sent as
    one list (``listener.TASK_TIMES_KEY``: run time in us, CPU time in ns, result bytes,
    the executor's peak RSS so far from ``getrusage`` at most every 100 ms; the time in
    the cyclic garbage collector as ``jvmGcTime`` when at least 1 ms); the driver
    gives them Spark's names only when someone listens (``listener.task_metrics``)."""
    now = time.perf_counter()
    if now - _rss[0] >= _RSS_PERIOD:
        _rss[0], _rss[1] = now, getrusage(RUSAGE_SELF).ru_maxrss * 1024
    m[TASK_TIMES_KEY] = [run_us, cpu_ns, result_size, _rss[1]]
    if gc_ns >= 1_000_000:
        m["jvmGcTime"] = gc_ns // 1_000_000  # ms, Spark's name


def preload(modules: tuple[str, ...], executor_id: str) -> list[str]:
    """Import ``modules`` (``ExecutorSettings.preload``: what unpickling task binaries
    imports, named by the driver), in the task thread once registered. Otherwise that
    import runs inside the first task of each executor, which for the second executor of
    a machine lands in the middle of a job, its CPU taken from the driver and the other
    executors. A module that fails to import is logged and skipped (the task needing it
    fails with its own error); the names of those are returned."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            log.warning("executor %s: cannot preload %s: %r", executor_id, name, exc)
            failed.append(name)
    return failed


def new_client_pool(env: ExecutorEnv) -> Any:
    """The executor's block client pool (installed in its ``ExecutorEnv``), with bounded
    waits: spark.network.timeout for every answer, asyncspark.shuffle.connectTimeout to
    connect and authenticate."""
    from ..transport.client import TransportClientPool

    s = env.settings
    return TransportClientPool(env.secret, max_frame_size=s.max_frame_size,
                               connect_timeout=s.shuffle_connect_timeout,
                               io_timeout=s.network_timeout, ssl=env.tls_client)


# Records are mostly tuples, lists and dicts: container objects the cyclic collector
# tracks. With the default thresholds (700, 10, 10) a shuffle task that holds millions of
# them spends 10-13% of its instructions in collections (callgrind, groupByKey and
# sortByKey reduce tasks) that find nothing, records being acyclic. Collections 140x
# rarer remove that; cyclic garbage still goes, reference counting frees the rest.
_GC_THRESHOLDS = (100_000, 50, 100)


def _tune_gc() -> None:
    import gc

    gc.set_threshold(*_GC_THRESHOLDS)
    if _gc_timer not in gc.callbacks:
        gc.callbacks.append(_gc_timer)


# [ns spent in the cyclic collector so far, when the running collection started]: a
# task's jvmGcTime is what the first grew by while it ran (the process's collections, as
# the JVM's GC time is; one collection runs at a time, under the GIL).
_gc_ns = [0, 0]


def _gc_timer(phase: str, _info: dict) -> None:
    if phase == "start":
        _gc_ns[1] = time.perf_counter_ns()
    else:
        _gc_ns[0] += time.perf_counter_ns() - _gc_ns[1]


def _private_dir_problem(path: str) -> str | None:
    """Why ``path`` is not a directory private to this user (its backend makes it
    exclusively, mode 0700), or None: files in it are trusted (unpickled)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot stat it: {exc.strerror}"
    import stat

    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_uid != os.getuid():
        return f"owned by uid {st.st_uid}, not {os.getuid()}"
    if st.st_mode & 0o077:
        return f"mode {stat.S_IMODE(st.st_mode):o} lets other users in (0700 expected)"
    return None


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m asyncspark.executor")
    p.add_argument("--driver", required=True, help="host:port of the driver")
    p.add_argument("--executor-id", required=True)
    p.add_argument("--local-dir", required=True)
    p.add_argument("--bind-host", default="127.0.0.1",
                   help="address of this executor's shuffle block server")
    args = p.parse_args(argv)
    secret = os.environ.pop(handshake.SECRET_ENV, None)
    if not secret:
        print(f"executor: {handshake.SECRET_ENV} is not set", file=sys.stderr)
        return 2
    from ..errors import ConfigError
    from ..tls import TLSConfig

    try:  # ASYNCSPARK_SSL_* (its key password leaves the environment here)
        tls = TLSConfig.from_environment(os.environ)
        if tls is not None:
            tls.check()
    except (ConfigError, TypeError) as exc:
        print(f"executor {args.executor_id}: TLS settings refused: {exc}", file=sys.stderr)
        return 2
    driver_path = os.environ.get("ASYNCSPARK_DRIVER_PATH")
    if driver_path:
        sys.path[:0] = [p for p in driver_path.split(os.pathsep) if p not in sys.path]
    host, _, port = args.driver.rpartition(":")
    _tune_gc()
    from ..logs import configure_executor_logging

    configure_executor_logging(args.executor_id)
    problem = _private_dir_problem(args.local_dir)
    if problem:
        print(f"executor {args.executor_id}: refusing --local-dir {args.local_dir}: "
              f"{problem}", file=sys.stderr)
        return 2
    executor = Executor(args.executor_id, host, int(port), secret, args.local_dir,
                        args.bind_host, tls)
    use_uvloop = os.environ.get("ASYNCSPARK_UVLOOP", "1") != "0"
    runner = None
    if use_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = None
    try:
        code = (runner or asyncio.run)(executor.run())
    except OSError as exc:  # refused, reset, or (TLS) the driver's certificate untrusted
        print(f"executor {args.executor_id}: cannot reach the driver at {args.driver}: {exc}",
              file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the task thread may be stuck in user code: do not wait for it
