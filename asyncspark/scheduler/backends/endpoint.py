"""The driver's endpoint of executor connections, for any backend that runs executors.

Owns ``ExecutorConnection`` (the driver side of one connection of an executor: the
handshake, registration, attaching the task channel, heartbeats, and routing of task
status, block and commit messages to the task scheduler and the block manager master)
and ``CoarseGrainedBackend`` (as Spark's ``CoarseGrainedSchedulerBackend``: the
bookkeeping every backend needs: the application secret, the registered connections,
the registrations awaited, the executor settings, RDD removals). A backend (``local.py``;
a Ray or SLURM one alike) subclasses it, listens with ``serve()``, starts executors its
own way and answers the hooks: ``_accepts`` (is this the executor we started?),
``_is_live``, ``_on_registered`` and ``_connection_lost``.

Registration: the driver sends a random nonce, the executor answers with an HMAC of it
under the per-application secret and a nonce of its own, which the driver answers in
turn (``transport/handshake.py``). Nothing an executor sends is unpickled before that.
Until then the connection is under the server's ``AuthGuard`` (``transport/guard.py``):
frames of 4 KiB at most, ``asyncspark.network.authTimeout`` to authenticate, at most
``asyncspark.network.maxUnauthenticatedConnections`` such connections at once, each drop
logged with the peer and the reason. Every accepted connection is tracked by the guard, so
``_close_endpoint`` aborts them all and never waits on one nobody knows of (Python 3.12's
``Server.wait_closed()`` waits for every connection).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import Any

from ...conf import Config
from ...errors import AuthenticationError
from ...pending import PendingRequests
from ...planner import TASK_MODULES
from ...runtime import ExecutorSettings
from ...transport import handshake
from ...transport.guard import AuthGuard
from ...transport.messages.blocks import (
    BlockLocations,
    BlockQuery,
    BlockUpdates,
    RddRemoved,
    RegisterBlockManager,
    RemoveRdd,
)
from ...transport.messages.control import (
    AskCommit,
    Challenge,
    CommitAnswer,
    Heartbeat,
    Register,
    Registered,
    TaskChannel,
)
from ...transport.messages.tasks import TaskStatuses
from ...transport.protocol import FramedProtocol
from ..stage import ExecutorData
from ..task_scheduler import TaskScheduler

__all__ = ["CoarseGrainedBackend", "ExecutorConnection"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

_CLOSE_BOUND_S = 2.0  # _close_endpoint waits this long at most for the server to close


class ExecutorConnection:
    """Driver side of one connection of an executor (its control connection or its task
    channel): handshake, then dispatch."""

    def __init__(self, backend: CoarseGrainedBackend) -> None:
        self.backend = backend
        self.handshake: handshake.Handshake = handshake.Handshake(backend.secret, handshake.DRIVER,
                                             handshake.EXECUTOR, challenger=True)
        self.executor_id: str | None = None
        self.host: str = ""  # from Register
        self.pid: int = 0
        self.proto: FramedProtocol = FramedProtocol(self._on_message, self._on_close,
                                    backend.conf.max_frame_size, self._on_connect)
        self.last_heartbeat: float = time.monotonic()

    def _on_connect(self, proto: FramedProtocol) -> None:
        guard = self.backend.guard
        if self.backend._endpoint_closed:
            proto.abort(AuthenticationError("the driver is stopping"))
            return
        if guard.admit(proto):  # TLS first when on, then the challenge
            guard.secure(proto, lambda p: p.send(Challenge(self.handshake.nonce)))

    def _on_message(self, msg: Any) -> None:
        if self.executor_id is None:
            self._handshake(msg)
            return
        t = type(msg)
        self.last_heartbeat = time.monotonic()  # any message shows it is alive
        if t is TaskStatuses:
            self.backend.task_scheduler.status_update(self.executor_id, msg.statuses, msg.body)
        elif t is Heartbeat:
            pass
        elif t is BlockUpdates or t is BlockQuery or t is RegisterBlockManager \
                or t is RddRemoved:
            self._on_block_message(msg)
        elif t is AskCommit:
            self.proto.send(CommitAnswer(msg.request_id, self.backend.task_scheduler.ask_commit(
                self.executor_id, msg.stage_id, msg.partition, msg.task_id)))
        else:
            log.warning("executor %s sent unexpected %s", self.executor_id, t.__name__)

    def _on_block_message(self, msg: Any) -> None:
        master = self.backend.task_scheduler.block_master
        eid = self.executor_id
        t = type(msg)
        if master is None or eid is None:
            return
        if t is BlockUpdates:
            master.update(msg.updates, msg.released, reporter=eid)
        elif t is BlockQuery:
            proto, request_id = self.proto, msg.request_id
            master.query(eid, msg.block_id, msg.lease, lambda locations, peers: proto.send(
                BlockLocations(request_id, locations, peers)))
        elif t is RegisterBlockManager:
            if self.backend._is_live(eid):
                master.register_executor(eid, self.host, msg.port)
        else:
            self.backend._removals.resolve(msg.request_id, msg.count, context=eid)

    def _handshake(self, msg: Any) -> None:
        backend = self.backend
        guard = backend.guard
        if type(msg) is not Register and type(msg) is not TaskChannel:
            guard.refuse(self.proto, "wrong first message",
                         f"{type(msg).__name__} before registration")
            return
        if not self.handshake.check(msg.mac):
            guard.refuse(self.proto, "bad HMAC", "the executor failed authentication")
            return
        guard.authenticated(self.proto)
        if type(msg) is TaskChannel:
            self._task_channel(msg)
            return
        fut = backend._pending.get(msg.executor_id)
        if fut is None or fut.done() or not backend._accepts(msg.executor_id, msg.pid):
            guard.refuse(self.proto, "unexpected executor",
                         f"{msg.executor_id!r} (pid {msg.pid}) was not being started")
            return
        self.executor_id = msg.executor_id
        self.host, self.pid = msg.host, msg.pid
        self.proto.send(Registered(self.handshake.proof(msg.nonce),
                                   backend.executor_settings().to_wire()))
        backend.conns[msg.executor_id] = self
        # Registered once its task thread has connected the task channel too.

    def _task_channel(self, msg: TaskChannel) -> None:
        """The second connection of a registered executor: its task thread's."""
        backend = self.backend
        eid = msg.executor_id
        control = backend.conns.get(eid)
        fut = backend._pending.get(eid)
        if control is None or eid in backend.channels or fut is None or fut.done():
            backend.guard.refuse(self.proto, "unexpected task channel", repr(eid))
            return
        self.executor_id = eid
        self.proto.send(Registered(self.handshake.proof(msg.nonce), {}))
        backend.channels[eid] = self
        backend.task_scheduler.executor_added(ExecutorData(
            eid, control.host, self.proto, backend.conf.task_slots, control.pid,
            control=control.proto))
        control.last_heartbeat = time.monotonic()
        backend._on_registered(eid)
        fut.set_result(None)

    def _on_close(self, exc: BaseException | None) -> None:
        if self.executor_id is not None:
            self.backend._connection_lost(self.executor_id, exc)


class CoarseGrainedBackend(abc.ABC):
    """What every executor backend keeps: subclass it (see the module docstring)."""

    def __init__(self, conf: Config, task_scheduler: TaskScheduler) -> None:
        self.conf = conf
        self.task_scheduler = task_scheduler
        self.secret: str = handshake.make_secret()
        self.conns: dict[str, ExecutorConnection] = {}  # control connections
        self.channels: dict[str, ExecutorConnection] = {}  # task channels
        self._pending: dict[str, asyncio.Future] = {}  # executor id -> its registration
        self._removals = PendingRequests()  # RemoveRdd id -> waiter (context: executor id)
        self._server: asyncio.AbstractServer | None = None
        self._endpoint_closed = False
        self.address: tuple[str, int] | None = None
        self.guard: AuthGuard = AuthGuard("driver control port", timeout=conf.auth_timeout,
                               max_pending=conf.max_unauthenticated,
                               max_frame_size=conf.max_frame_size)

    @property
    def ssl(self) -> Any:
        """The server ``ssl.SSLContext`` of the endpoint (TLS on), or None."""
        return self.guard.ssl

    @ssl.setter
    def ssl(self, context: Any) -> None:
        self.guard.ssl = context

    # -- hooks ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _accepts(self, executor_id: str, pid: int) -> bool:
        """Whether a registering ``executor_id`` with process ``pid`` is one we started."""

    @abc.abstractmethod
    def _is_live(self, executor_id: str) -> bool:
        """Whether ``executor_id`` is still one of ours (not exited or being replaced)."""

    def _on_registered(self, executor_id: str) -> None:  # noqa: B027 (optional hook)
        """``executor_id`` has registered both its connections (e.g. watch heartbeats)."""

    def _connection_lost(self, executor_id: str,  # noqa: B027 (optional hook)
                         exc: BaseException | None) -> None:
        """A connection of a registered executor closed."""

    # -- the endpoint --------------------------------------------------------------------

    async def serve(self, host: str) -> None:
        """Listen for executor connections on an ephemeral port of ``host`` (over TLS
        when ``ssl`` is set: the context sets it from ``spark.ssl.*``; ``guard.py``)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ExecutorConnection(self).proto, host=host, port=0)
        self.address = self._server.sockets[0].getsockname()[:2]

    def executor_settings(self) -> ExecutorSettings:
        """What executors are told at registration."""
        master = self.task_scheduler.block_master
        return ExecutorSettings.from_config(
            self.conf, master.offheap_dir if master is not None else None, TASK_MODULES)

    def remove_rdd(self, rdd_id: int) -> list[asyncio.Future[Any]]:
        """Ask every executor to drop the cached blocks of ``rdd_id``; a future per
        executor, done when it has (or is gone)."""
        loop = asyncio.get_running_loop()
        futs = []
        for eid, conn in list(self.conns.items()):
            request_id = self._removals.next_id()
            fut = loop.create_future()
            try:
                conn.proto.send(RemoveRdd(request_id, rdd_id))
            except ConnectionError:
                continue
            self._removals.add(fut, eid, request_id)
            futs.append(fut)
        return futs

    def _removals_of_lost(self, executor_id: str) -> None:
        self._removals.resolve_all(0, lambda eid: eid == executor_id)

    def _forget_executor(self, executor_id: str) -> None:
        """``executor_id`` is gone: drop its connections and answer its removals."""
        self.conns.pop(executor_id, None)
        self.channels.pop(executor_id, None)
        self._removals_of_lost(executor_id)

    def _abort_endpoint_now(self) -> asyncio.AbstractServer | None:
        """Stop listening, answer every removal, abort every connection (authenticated
        or not), at once; the server, if it was listening, to wait for. Idempotent."""
        self._endpoint_closed = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._removals.resolve_all(0)
        for conn in [*self.conns.values(), *self.channels.values()]:
            conn.proto.abort()
        self.guard.abort_all("the driver stopped")
        self.conns.clear()
        self.channels.clear()
        return server

    async def _close_endpoint(self) -> None:
        """``_abort_endpoint_now``, then wait (bounded) until the server has closed."""
        server = self._abort_endpoint_now()
        if server is not None:
            try:
                async with asyncio.timeout(_CLOSE_BOUND_S):
                    await server.wait_closed()
            except TimeoutError:
                log.warning("the driver's control port did not close within %gs",
                            _CLOSE_BOUND_S)
