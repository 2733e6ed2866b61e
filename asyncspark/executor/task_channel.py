"""The executor's task channel: a second connection to the driver that the task thread
serves itself, with blocking socket calls and the sans-IO codec.

Launches (with the task binaries, map output locations and forgotten binaries that go
with them) come in on it and statuses go out on it, with no hop between the task thread
and the event loop: the thread sleeps in ``recv()`` when it has nothing to run and
wakes straight into the next task. The event loop keeps the control connection
(registration, heartbeats, kills, stop) and the block server.

Statuses are batched: while more tasks are queued here or already sent by the driver,
they are sent at most every ``FLUSH_INTERVAL_NS`` (the driver needs them to refill a
short-task pipeline), and all at once before the thread waits for more work.

With TLS on, the socket is an ``ssl.SSLSocket`` (the handshake done in ``connect``, before
the driver's challenge is read); its "anything there?" read is a non-blocking read, as
``SSLSocket.recv`` takes no flags.
"""

from __future__ import annotations

import collections
import socket
import ssl as _ssl
import time
from collections.abc import Callable
from typing import Any

from ..errors import AuthenticationError, RemoteProtocolError
from ..runtime import get_env
from ..shuffle.writer import remove_shuffles
from ..transport import handshake
from ..transport.codec import CLOSED, NEED_DATA, FrameCodec
from ..transport.messages.control import (
    Challenge,
    Registered,
    RemoveBroadcast,
    RemoveShuffle,
    TaskChannel,
)
from ..transport.messages.tasks import (
    ForgetBinaries,
    LaunchTasks,
    MapOutputs,
    TaskBinary,
    TaskStatuses,
)

__all__ = ["FLUSH_INTERVAL_NS", "TaskChannelClient"]

FLUSH_INTERVAL_NS = 500_000  # measured: 50 µs 12k, 200 µs 15k, 500 µs 23-28k empty tasks/s
_RECV_SIZE = 1 << 20
_TLS_RECV_SIZE = 1 << 16  # a TLS read returns one record (16 KiB) at most
_JOIN_LIMIT = 64 * 1024
_FRAME_SLACK = 1024  # room for a TaskStatuses header with one status
_STATUS_BYTES = 32  # header bytes per further status in the same frame (generous)

now_ns: Callable[[], int] = time.monotonic_ns


class TaskChannelClient:
    """One executor's task channel (see the module docstring). Not thread-safe: only
    the task thread uses it."""

    def __init__(self, sock: socket.socket, codec: FrameCodec) -> None:
        self.sock = sock
        self.codec = codec
        self.tls: bool = isinstance(sock, _ssl.SSLSocket)
        # A TLS read allocates its whole buffer: keep it near a record's size.
        self._recv_size = _TLS_RECV_SIZE if self.tls else _RECV_SIZE
        self.tasks: collections.deque[list[Any]] = collections.deque()
        self.raw_binaries: dict[int, bytes] = {}
        self._statuses: list = []
        self._payloads: list = []
        self._size = 0
        self._first_unsent = 0

    @classmethod
    def connect(cls, address: tuple[str, int], executor_id: str, secret: str,
                max_frame_size: int, timeout: float = 30.0,
                ssl: _ssl.SSLContext | None = None) -> TaskChannelClient:
        """Connect (over TLS with the client context ``ssl``) and authenticate both
        ways, as the control connection does."""
        sock = socket.create_connection(address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl is not None:  # the handshake runs now, within the timeout
                sock = ssl.wrap_socket(sock, server_hostname=address[0])
            client = cls(sock, FrameCodec(max_frame_size))
            challenge = client._next_message()
            if type(challenge) is not Challenge:
                raise AuthenticationError(f"driver sent {type(challenge).__name__} first")
            hs = handshake.Handshake(secret, handshake.EXECUTOR, handshake.DRIVER,
                                     challenger=False)
            sock.sendall(client.codec.send(TaskChannel(
                executor_id, hs.proof(challenge.nonce), hs.nonce)))
            reply = client._next_message()
            if type(reply) is not Registered or not hs.check(reply.mac):
                raise AuthenticationError("driver failed authentication on the task channel")
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return client

    def _next_message(self) -> Any:
        """The next message, blocking; ``CLOSED`` at the end of the stream."""
        codec = self.codec
        while True:
            ev = codec.next_event()
            if ev is not NEED_DATA:
                return ev
            codec.receive_data(self.sock.recv(self._recv_size))

    def next_task(self, forget: Callable[[list[int]], None], map_outputs: dict[int, list[Any]],
                  trace: bool) -> list[Any] | None:
        """The next task to run (``[task_id, binary_id, partition, attempt, stage_id]``,
        plus the received stamp when tracing), or None when the driver closed the
        channel. Messages already received are taken in first, in order; pending
        statuses are sent before blocking for more."""
        codec = self.codec
        tasks = self.tasks
        while True:
            ev = codec.next_event()
            if ev is NEED_DATA:
                if tasks:
                    return tasks.popleft()
                # Out of work here: take what the driver has sent meanwhile, if anything,
                # before reporting (the statuses wait for their interval, as while
                # tasks are queued); with nothing to run, report and wait.
                try:
                    data = (self._recv_nowait_tls() if self.tls else
                            self.sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT))
                except BlockingIOError:
                    self.flush()
                    data = self.sock.recv(self._recv_size)
                else:
                    if data and now_ns() - self._first_unsent >= FLUSH_INTERVAL_NS:
                        self.flush()
                codec.receive_data(data)
                continue
            t = type(ev)
            if t is LaunchTasks:
                if trace:
                    received = now_ns()
                    for task in ev.tasks:
                        task.append(received)
                tasks.extend(ev.tasks)
            elif t is TaskBinary:
                self.raw_binaries[ev.binary_id] = ev.body
            elif t is MapOutputs:
                map_outputs[ev.shuffle_id] = ev.statuses
            elif t is ForgetBinaries:
                for bid in ev.binary_ids:
                    self.raw_binaries.pop(bid, None)
                forget(ev.binary_ids)
            elif t is RemoveBroadcast:
                get_env().broadcasts.drop(ev.broadcast_ids)
            elif t is RemoveShuffle:
                remove_shuffles(get_env(), ev.shuffle_ids)
            elif ev is CLOSED:
                return None
            else:
                raise RemoteProtocolError(
                    f"driver sent {t.__name__} on the task channel")

    def _recv_nowait_tls(self) -> bytes:
        """What TLS has decrypted or can decrypt now; ``BlockingIOError`` if nothing
        (a record only partly arrived, or only a TLS message of no data: a session
        ticket)."""
        sock = self.sock
        sock.settimeout(0.0)
        try:
            return sock.recv(_TLS_RECV_SIZE)
        except (_ssl.SSLWantReadError, _ssl.SSLWantWriteError):
            raise BlockingIOError from None
        finally:
            sock.settimeout(None)

    def add_status(self, status: list[Any], payload: bytes, max_frame_size: int) -> None:
        """Queue a finished task's status; send the batch when it is due."""
        if self._statuses and (self._size + len(payload) + _STATUS_BYTES * len(
                self._statuses) > max_frame_size - _FRAME_SLACK):
            self.flush()
        if not self._statuses:
            self._first_unsent = now_ns()
        self._statuses.append(status)
        self._payloads.append(payload)
        self._size += len(payload)
        if self.tasks and now_ns() - self._first_unsent >= FLUSH_INTERVAL_NS:
            self.flush()

    def flush(self) -> None:
        if not self._statuses:
            return
        msg = TaskStatuses(self._statuses, b"".join(self._payloads))
        self._statuses, self._payloads, self._size = [], [], 0
        parts = self.codec.send_parts(msg)
        if len(parts) == 1 or sum(map(len, parts)) <= _JOIN_LIMIT:
            self.sock.sendall(b"".join(parts))
        else:
            for part in parts:
                self.sock.sendall(part)

    def close(self) -> None:
        self.sock.close()
