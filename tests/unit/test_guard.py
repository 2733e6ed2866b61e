"""AuthGuard: the limits on peers that have not authenticated (transport/guard.py)."""

from __future__ import annotations

import asyncio
import logging
import struct

from asyncspark.transport.guard import AUTH_FRAME_LIMIT, LOG_INTERVAL, AuthGuard
from asyncspark.transport.protocol import FramedProtocol


class FakeTransport(asyncio.Transport):
    def __init__(self, peer=("10.0.0.7", 5555)) -> None:
        super().__init__()
        self.peer = peer
        self.aborted = False
        self.written = bytearray()

    def get_extra_info(self, name, default=None):
        return self.peer if name == "peername" else default

    def write(self, data) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def connect(guard: AuthGuard, peer=("10.0.0.7", 5555)):
    proto = FramedProtocol(lambda m: None, None, 1 << 20,
                           on_connect=lambda p: guard.admit(p))
    transport = FakeTransport(peer)
    proto.connection_made(transport)
    return proto, transport


async def test_frames_before_authentication_are_limited_then_lifted():
    guard = AuthGuard("test server", max_frame_size=1 << 20)
    proto, transport = connect(guard)
    assert proto.codec.max_frame_size == AUTH_FRAME_LIMIT
    guard.authenticated(proto)
    assert proto.codec.max_frame_size == 1 << 20
    assert not guard.pending
    assert proto in guard.connections
    assert not transport.aborted


async def test_huge_length_prefix_is_refused_from_the_prefix_alone(caplog):
    guard = AuthGuard("test server", max_frame_size=1 << 30)
    proto, transport = connect(guard)
    proto.data_received(struct.pack(">II", 200 << 20, 0))
    assert transport.aborted
    assert proto.codec.buffered == 8  # nothing more was kept
    proto.data_received(b"x" * 100000)  # late bytes are dropped, not buffered
    assert proto.codec.buffered == 8
    assert guard.drops["frame too big"] == 1
    assert "test server: dropped connection from ('10.0.0.7', 5555): frame too big" \
        in caplog.text


async def test_truncated_frame_is_logged_with_its_reason(caplog):
    guard = AuthGuard("test server", max_frame_size=1 << 20)
    proto, transport = connect(guard)
    proto.data_received(struct.pack(">II", 10, 0) + b"\x91")
    proto.eof_received()
    assert transport.aborted
    assert guard.drops["truncated frame"] == 1
    assert "truncated frame" in caplog.text


async def test_deadline_and_cap():
    guard = AuthGuard("test server", timeout=0.05, max_pending=3, max_frame_size=1 << 20)
    conns = [connect(guard, ("10.0.0.7", 6000 + i)) for i in range(5)]
    # Beyond the cap, refused at once.
    assert [t.aborted for _, t in conns] == [False, False, False, True, True]
    assert guard.drops["too many unauthenticated connections"] == 2
    guard.authenticated(conns[0][0])
    await asyncio.sleep(0.3)
    assert [t.aborted for _, t in conns] == [False, True, True, True, True]
    assert guard.drops["authentication timeout"] == 2
    assert not guard.pending
    guard.abort_all("closing")
    assert conns[0][1].aborted
    assert not guard.connections


async def test_warnings_are_rate_limited_per_peer_and_reason(caplog):
    caplog.set_level(logging.WARNING, logger="asyncspark.transport")
    now = [1000.0]
    guard = AuthGuard("test server", max_pending=1000, max_frame_size=1 << 20,
                      clock=lambda: now[0])
    for i in range(50):
        proto, _ = connect(guard, ("10.0.0.7", 7000 + i))
        guard.refuse(proto, "bad HMAC")
    proto, _ = connect(guard, ("10.0.0.8", 7000))
    guard.refuse(proto, "bad HMAC")
    proto, _ = connect(guard, ("10.0.0.7", 8000))
    guard.refuse(proto, "wrong first message")
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 3, msgs
    assert guard.drops["bad HMAC"] == 51
    now[0] += LOG_INTERVAL + 1
    proto, _ = connect(guard, ("10.0.0.7", 9000))
    guard.refuse(proto, "bad HMAC")
    assert "49 more from 10.0.0.7 not logged" in caplog.records[-1].getMessage()
