"""An in-memory transport: two connected ``asyncio.Protocol``s without sockets.

For tests, and for running the transport conformance suite without the kernel. Bytes
written on one side reach the other side's ``data_received`` on a later loop iteration,
as with a socket; each side's unread bytes count against the writer's buffer, so
``pause_writing``/``resume_writing`` flow control and ``pause_reading`` behave as on a
real connection. ``close()`` delivers an end of stream after the written bytes;
``abort()`` drops them and the peer sees ``ConnectionResetError``.

``listen()`` registers a protocol factory under a ``MemoryAddress``; ``open_connection()``
connects to it, as ``loop.create_server``/``loop.create_connection`` do for sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MemoryAddress", "MemoryTransport", "listen", "memory_pair", "open_connection",
           "unlisten"]

_HIGH_WATER = 64 * 1024
_LOW_WATER = 16 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryAddress:
    """Where an in-memory listener is registered."""

    name: str

    def __str__(self) -> str:
        return f"memory:{self.name}"


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol,
                 name: str) -> None:
        super().__init__(extra={"peername": name, "sockname": name})
        self._loop = loop
        self._protocol = protocol
        self._peer: MemoryTransport | None = None
        self._inbox = bytearray()  # written by the peer, not yet given to our protocol
        self._eof_pending = False  # the peer closed: deliver EOF after the inbox
        self._delivery_scheduled = False
        self._reading = True
        self._closing = False
        self._lost = False
        self._writing_paused = False  # our protocol was told pause_writing()
        self._high = _HIGH_WATER
        self._low = _LOW_WATER

    # -- asyncio.BaseTransport ---------------------------------------------------------

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Deliver what was written, then an end of stream; both sides then close."""
        if self._closing or self._lost:
            return
        self._closing = True
        peer = self._peer
        if peer is None or peer._lost:
            self._loop.call_soon(self._connection_lost, None)
            return
        peer._eof_pending = True
        peer._schedule_delivery()

    # -- asyncio.ReadTransport ---------------------------------------------------------

    def is_reading(self) -> bool:
        return self._reading and not self._lost

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._schedule_delivery()

    # -- asyncio.WriteTransport --------------------------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = _HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def get_write_buffer_size(self) -> int:
        peer = self._peer
        return 0 if peer is None or peer._lost else len(peer._inbox)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._lost:
            return  # as a socket transport after close: dropped
        peer = self._peer
        if peer is None or peer._lost:
            return
        peer._inbox += data
        peer._schedule_delivery()
        if not self._writing_paused and len(peer._inbox) > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Drop the connection now: unread bytes are lost, the peer sees a reset."""
        if self._lost:
            return
        self._closing = True
        peer = self._peer
        if peer is not None and not peer._lost:
            peer._closing = True
            peer._inbox.clear()
            peer._eof_pending = False
            self._loop.call_soon(peer._connection_lost,
                                 ConnectionResetError("connection reset by peer"))
        self._loop.call_soon(self._connection_lost, None)

    # -- internals ---------------------------------------------------------------------

    def _schedule_delivery(self) -> None:
        if not self._delivery_scheduled and not self._lost:
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._delivery_scheduled = False
        if self._lost or not self._reading:
            return
        if self._inbox:
            data = bytes(self._inbox)
            self._inbox.clear()
            self._release_peer_writer()
            try:
                self._protocol.data_received(data)
            except BaseException as exc:
                self._fatal(exc, "data_received")
                return
            if self._inbox and not self._lost:
                self._schedule_delivery()  # more arrived meanwhile; next iteration
                return
        if self._eof_pending and not self._lost:
            self._eof_pending = False
            try:
                keep_open = self._protocol.eof_received()
            except BaseException as exc:
                self._fatal(exc, "eof_received")
                return
            if not keep_open:
                # Both directions are done: the peer closed its side, we close ours.
                peer = self._peer
                self._closing = True
                self._connection_lost(None)
                if peer is not None and not peer._lost:
                    peer._connection_lost(None)

    def _release_peer_writer(self) -> None:
        peer = self._peer
        if peer is not None and peer._writing_paused and len(self._inbox) <= peer._low:
            peer._writing_paused = False
            if not peer._lost:
                peer._protocol.resume_writing()

    def _fatal(self, exc: BaseException, where: str) -> None:
        self._loop.call_exception_handler({
            "message": f"exception in {type(self._protocol).__name__}.{where}()",
            "exception": exc, "transport": self, "protocol": self._protocol,
        })
        self.abort()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._inbox.clear()
        self._protocol.connection_lost(exc)


def memory_pair(protocol_a: asyncio.Protocol, protocol_b: asyncio.Protocol,
                name: str = "memory", *, loop: asyncio.AbstractEventLoop | None = None
                ) -> tuple[MemoryTransport, MemoryTransport]:
    """Connect two protocols; ``connection_made`` is called on ``a`` then ``b`` now."""
    loop = loop or asyncio.get_running_loop()
    a = MemoryTransport(loop, protocol_a, name)
    b = MemoryTransport(loop, protocol_b, name)
    a._peer = b
    b._peer = a
    protocol_a.connection_made(a)
    protocol_b.connection_made(b)
    return a, b


_listeners: dict[MemoryAddress, Callable[[], asyncio.Protocol]] = {}
_names = itertools.count(1)


def listen(protocol_factory: Callable[[], asyncio.Protocol],
           name: str | None = None) -> MemoryAddress:
    """Accept in-memory connections at a new address (a fresh name unless given)."""
    address = MemoryAddress(name if name is not None else f"listener-{next(_names)}")
    if address in _listeners:
        raise OSError(f"{address} is already in use")
    _listeners[address] = protocol_factory
    return address


def unlisten(address: MemoryAddress) -> None:
    """Stop accepting connections at ``address`` (existing ones stay open)."""
    _listeners.pop(address, None)


async def open_connection(address: MemoryAddress,
                          protocol_factory: Callable[[], Any]) -> tuple[MemoryTransport, Any]:
    """Connect to the listener at ``address``: ``(transport, protocol)`` as
    ``loop.create_connection`` returns; ``ConnectionRefusedError`` if nobody listens."""
    await asyncio.sleep(0)
    factory = _listeners.get(address)
    if factory is None:
        raise ConnectionRefusedError(f"nothing listens at {address}")
    server_protocol = factory()
    client_protocol = protocol_factory()
    _, client_transport = memory_pair(server_protocol, client_protocol, str(address))
    return client_transport, client_protocol
