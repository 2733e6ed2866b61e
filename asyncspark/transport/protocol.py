"""The thin asyncio layer around the sans-IO codec: it only moves bytes.

``FramedProtocol`` feeds received bytes to a ``FrameCodec`` and hands each decoded message
to ``on_message``; ``send``/``send_many`` write frames. A peer that sends a malformed frame
has its connection aborted (only that one); ``on_close(exc)`` is called once, whatever
the reason. A server's connections carry its ``AuthGuard`` (``transport/guard.py``) as
``guard``: a malformed frame is then reported to it (logged with the reason, counted
when the peer had not authenticated yet), and it forgets the connection when it closes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import RemoteProtocolError, TransportError
from .codec import CLOSED, DEFAULT_MAX_FRAME_SIZE, NEED_DATA, FrameCodec, Message

__all__ = ["FramedProtocol"]

log: logging.Logger = logging.getLogger("asyncspark.transport")

_JOIN_LIMIT = 64 * 1024  # frames up to this size are written as one buffer


class FramedProtocol(asyncio.Protocol):
    def __init__(self, on_message: Callable[[Message], Any] | None = None,
                 on_close: Callable[[BaseException | None], Any] | None = None,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 on_connect: Callable[[FramedProtocol], Any] | None = None) -> None:
        self.codec: FrameCodec = FrameCodec(max_frame_size)
        self.on_message = on_message
        self.on_close = on_close
        self.on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.closed: bool = False
        self.close_reason: BaseException | None = None
        self._paused = False
        self._drain_waiters: list[asyncio.Future] = []
        self.guard: Any = None  # the server's AuthGuard (set by AuthGuard.admit)

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.peer = transport.get_extra_info("peername")
        if self.on_connect is not None:
            self.on_connect(self)

    def data_received(self, data: bytes) -> None:
        codec = self.codec
        codec.receive_data(data)
        try:
            while True:
                msg = codec.next_event()
                if msg is NEED_DATA:
                    return
                if self.closed:
                    return
                self.on_message(msg)  # type: ignore[misc]
        except RemoteProtocolError as exc:
            self._protocol_error(exc)

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        if self.guard is not None:
            self.guard.protocol_error(self, exc)
        else:
            log.warning("closing connection from %s: %s", self.peer, exc)
        self.abort(exc)

    def eof_received(self) -> bool:
        self.codec.receive_data(b"")
        try:
            # Whole frames still buffered are delivered; a partial one is an error.
            while (msg := self.codec.next_event()) is not CLOSED:
                if self.closed:
                    break
                self.on_message(msg)  # type: ignore[misc]
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed_with(exc)
        for w in self._drain_waiters:
            if not w.done():
                w.set_exception(TransportError(f"connection to {self.peer} lost"))
        self._drain_waiters.clear()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    # -- API -----------------------------------------------------------------------------

    def _closed_with(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = exc
        if self.guard is not None:
            self.guard.forget(self)
        if self.on_close is not None:
            self.on_close(exc)

    def send(self, msg: Message) -> None:
        if self.closed or self.transport is None:
            raise TransportError(f"connection to {self.peer} is closed")
        self._write(self.codec.send_parts(msg))

    def send_many(self, msgs: Iterable[Message]) -> None:
        """Write several frames with one system call."""
        if self.closed or self.transport is None:
            raise TransportError(f"connection to {self.peer} is closed")
        parts: list = []
        send_parts = self.codec.send_parts
        for m in msgs:
            parts.extend(send_parts(m))
        self._write(parts)

    def _write(self, parts: list) -> None:
        # Small frames are joined into one buffer: one write costs less than
        # writelines() of several (a launch or status frame is a few hundred bytes);
        # large bodies are not copied.
        if len(parts) == 1:
            self.transport.write(parts[0])  # type: ignore[union-attr]
        elif sum(map(len, parts)) <= _JOIN_LIMIT:
            self.transport.write(b"".join(parts))  # type: ignore[union-attr]
        else:
            self.transport.writelines(parts)  # type: ignore[union-attr]

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self.closed:
            raise TransportError(f"connection to {self.peer} is closed")
        if not self._paused:
            return
        fut = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(fut)
        await fut

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop the connection at once (no flush)."""
        self._closed_with(exc)
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Flush what is written, then close."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
