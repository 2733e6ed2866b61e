"""What a listening server allows a peer that has not authenticated yet.

Owns ``AuthGuard``, one per server (the driver's control port, every block server, the
broadcast server): until a connection's peer has proven the application secret

- its frames are limited to ``AUTH_FRAME_LIMIT`` bytes (the codec refuses a larger length
  prefix as soon as it has read it, before buffering the frame);
- it has ``timeout`` seconds to authenticate (``asyncspark.network.authTimeout``);
- at most ``max_pending`` such connections are open at once
  (``asyncspark.network.maxUnauthenticatedConnections``); a new one beyond that is closed
  at once.

Every connection the server accepted is tracked, authenticated or not, so ``abort_all``
drops them all (a server's ``close()`` then never waits on a connection nobody tracks).

With TLS on (``ssl``, a server ``ssl.SSLContext``; ``asyncspark/tls.py``) the server
accepts plain TCP: the connection is ``admit``ted first (so the deadline and the cap above
cover its TLS handshake too, and ``abort_all`` reaches it), then ``secure`` hands it to
``loop.start_tls``; only once that handshake has succeeded does the server send its
challenge, so the secret handshake runs inside TLS. A peer that fails it (a plaintext
client, a certificate the trust store does not vouch for, none when one is required) is
dropped with reason "TLS handshake failed", before a byte of it reached the codec: the
bytes a client sends before ``start_tls`` takes the connection over (its ClientHello;
uvloop starts reading as soon as ``connection_made`` returns) are held aside and given
to the TLS layer first.

Each drop is logged at WARNING with the peer and the reason (frame too big, truncated
frame, malformed frame, wrong first message, bad HMAC, authentication timeout, too many
unauthenticated connections), once per peer host and reason in ``LOG_INTERVAL`` seconds;
the next warning says how many were not logged in between. ``drops`` counts every drop
by reason.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl as _ssl
import time
from collections.abc import Callable
from typing import Any

from ..errors import AuthenticationError, TransportError
from .protocol import FramedProtocol

__all__ = ["AUTH_FRAME_LIMIT", "DEFAULT_AUTH_TIMEOUT", "DEFAULT_MAX_PENDING", "AuthGuard"]

log: logging.Logger = logging.getLogger("asyncspark.transport")

AUTH_FRAME_LIMIT = 4096  # bytes: more than any handshake message takes
DEFAULT_AUTH_TIMEOUT = 10.0
DEFAULT_MAX_PENDING = 64
LOG_INTERVAL = 60.0


class AuthGuard:
    """The pre-authentication limits of one server (see the module docstring).

    The server calls ``admit(proto)`` when a connection is made (False: it was refused
    and aborted), ``authenticated(proto)`` once the peer's proof checked out,
    ``refuse(proto, reason)`` to drop a peer that failed, and ``forget(proto)`` when the
    connection closed. ``clock`` is injectable for the rate limit's tests.
    """

    def __init__(self, name: str, *, timeout: float = DEFAULT_AUTH_TIMEOUT,
                 max_pending: int = DEFAULT_MAX_PENDING, max_frame_size: int,
                 clock: Any = time.monotonic, ssl: _ssl.SSLContext | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"{name}: the authentication timeout must be positive, "
                             f"got {timeout}")
        if max_pending < 1:
            raise ValueError(f"{name}: max_pending must be at least 1, got {max_pending}")
        self.name = name
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_frame_size = max_frame_size
        self.pending: dict[FramedProtocol, asyncio.TimerHandle | None] = {}
        self.connections: set[FramedProtocol] = set()
        self.drops: collections.Counter[str] = collections.Counter()
        self._clock = clock
        self.ssl = ssl  # TLS first on every connection when set
        self._tls_pending: set[FramedProtocol] = set()  # in their TLS handshake
        self._tls_tasks: set[asyncio.Task] = set()
        # (peer host, reason) -> (time of the last warning, drops not logged since)
        self._logged: dict[tuple[Any, str], list] = {}

    # -- the connection's life ---------------------------------------------------------

    def admit(self, proto: FramedProtocol) -> bool:
        """A new connection: limit its frames and start its deadline; False (and the
        connection aborted) when too many are unauthenticated already."""
        proto.guard = self
        proto.codec.max_frame_size = AUTH_FRAME_LIMIT
        proto.codec.limit_name = "the limit before authentication"
        if len(self.pending) >= self.max_pending:
            self.refuse(proto, "too many unauthenticated connections",
                        f"{self.max_pending} are open "
                        "(asyncspark.network.maxUnauthenticatedConnections)")
            return False
        self.connections.add(proto)
        loop = asyncio.get_running_loop()
        self.pending[proto] = loop.call_later(self.timeout, self._expire, proto)
        return True

    def secure(self, proto: FramedProtocol, on_ready: Callable[[FramedProtocol], Any]
               ) -> None:
        """After ``admit``: ``on_ready(proto)`` now without TLS; with TLS once the TLS
        handshake has succeeded (``proto.transport`` is then the TLS transport), or the
        peer is dropped. Called from ``connection_made``."""
        if self.ssl is None:
            on_ready(proto)
            return
        raw = proto.transport
        early = _EarlyBytes(proto)
        raw.set_protocol(early)  # type: ignore[union-attr]
        self._tls_pending.add(proto)
        task = asyncio.get_running_loop().create_task(
            self._start_tls(proto, raw, early, on_ready))
        self._tls_tasks.add(task)
        task.add_done_callback(self._tls_tasks.discard)

    async def _start_tls(self, proto: FramedProtocol, raw: Any, early: _EarlyBytes,
                         on_ready: Callable[[FramedProtocol], Any]) -> None:
        loop = asyncio.get_running_loop()
        if proto.closed or proto not in self._tls_pending:
            self._tls_pending.discard(proto)
            return
        # start_tls pauses reading, swaps in its TLS protocol and schedules that
        # protocol's connection_made, then the resumption of reading, all before its first
        # await. This runs after that and before both: the bytes held aside go into the
        # TLS layer's buffer first (it only buffers them until connection_made starts
        # the handshake), before anything more is read.
        loop.call_soon(early.hand_over, raw)
        try:
            # The guard's own deadline fires first; this one is a backstop.
            secured = await loop.start_tls(raw, proto, self.ssl, server_side=True,
                                           ssl_handshake_timeout=self.timeout + 1.0)
        except asyncio.CancelledError:
            self._tls_pending.discard(proto)
            proto.abort(TransportError("server closed"))
            raise
        except Exception as exc:
            self._tls_failed(proto, _tls_reason(exc))
            return
        if secured is None:  # asyncio: the connection closed during the handshake
            self._tls_failed(proto, "the connection closed during the TLS handshake")
            return
        self._tls_pending.discard(proto)
        if proto.closed:
            secured.abort()
            return
        proto.transport = secured  # type: ignore[assignment]
        on_ready(proto)

    def _tls_failed(self, proto: FramedProtocol, reason: str) -> None:
        if proto in self._tls_pending:  # not dropped by the guard meanwhile
            self._tls_pending.discard(proto)
            self.drops["TLS handshake failed"] += 1
            self._log(proto.peer, "TLS handshake failed", reason)
            self.forget(proto)
            proto.abort(AuthenticationError(f"TLS handshake failed: {reason}"))

    def authenticated(self, proto: FramedProtocol) -> None:
        """The peer proved the secret: lift the limits."""
        timer = self.pending.pop(proto, None)
        if timer is not None:
            timer.cancel()
        proto.codec.max_frame_size = self.max_frame_size
        proto.codec.limit_name = "asyncspark.rpc.maxFrameSize"

    def is_pending(self, proto: FramedProtocol) -> bool:
        return proto in self.pending

    def forget(self, proto: FramedProtocol) -> None:
        """The connection closed (for whatever reason)."""
        self.connections.discard(proto)
        timer = self.pending.pop(proto, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, proto: FramedProtocol) -> None:
        if proto in self.pending:
            self.pending[proto] = None
            self.refuse(proto, "authentication timeout",
                        f"no proof of the secret within {self.timeout:g}s "
                        "(asyncspark.network.authTimeout)")

    # -- dropping ----------------------------------------------------------------------

    def refuse(self, proto: FramedProtocol, reason: str, detail: str = "") -> None:
        """Drop an unauthenticated (or misbehaving) peer: log it (rate-limited), count
        it, abort the connection."""
        self.drops[reason] += 1
        self._log(proto.peer, reason, detail)
        self._tls_pending.discard(proto)
        self.forget(proto)
        proto.abort(AuthenticationError(f"{reason}: {detail}" if detail else reason))

    def protocol_error(self, proto: FramedProtocol, exc: Exception) -> None:
        """The codec refused a frame (FramedProtocol calls this; it aborts after)."""
        reason = getattr(exc, "reason", "malformed frame")
        if proto in self.pending:
            self.drops[reason] += 1
            self._log(proto.peer, reason, str(exc))
        else:
            log.warning("%s: closing connection from %s: %s", self.name, proto.peer, exc)

    def _log(self, peer: Any, reason: str, detail: str) -> None:
        host = peer[0] if isinstance(peer, tuple) and peer else peer
        key = (host, reason)
        now = self._clock()
        entry = self._logged.get(key)
        if entry is not None and now - entry[0] < LOG_INTERVAL:
            entry[1] += 1
            return
        suppressed = entry[1] if entry is not None else 0
        self._logged[key] = [now, 0]
        if len(self._logged) > 1024:  # forget the oldest peers
            for old in list(self._logged)[:512]:
                del self._logged[old]
        more = (f"; {suppressed} more from {host} not logged in the last "
                f"{LOG_INTERVAL:g}s" if suppressed else "")
        log.warning("%s: dropped connection from %s: %s%s%s", self.name, peer, reason,
                    f" ({detail})" if detail else "", more)

    # -- closing -----------------------------------------------------------------------

    def abort_all(self, reason: str) -> None:
        """Drop every connection, authenticated or not."""
        for timer in self.pending.values():
            if timer is not None:
                timer.cancel()
        self.pending.clear()
        self._tls_pending.clear()
        for task in self._tls_tasks:
            task.cancel()
        conns = list(self.connections)
        self.connections.clear()
        for proto in conns:
            proto.abort(TransportError(reason))


class _EarlyBytes(asyncio.Protocol):
    """The raw connection's protocol from ``connection_made`` until ``start_tls`` takes
    it over: holds what the client sent meanwhile (its ClientHello), for the TLS layer."""

    def __init__(self, proto: FramedProtocol) -> None:
        self.proto = proto
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        return False  # closed before the TLS handshake could complete

    def connection_lost(self, exc: BaseException | None) -> None:
        self.proto.connection_lost(exc)

    def hand_over(self, raw: Any) -> None:
        """Give the held bytes to the TLS protocol ``start_tls`` installed (a buffered
        protocol); nothing if it did not install one (it raised at once)."""
        tls = raw.get_protocol()
        data, self.data = bytes(self.data), bytearray()
        if tls is self or not data or raw.is_closing():
            return
        view = memoryview(data)
        while view:
            buf = tls.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            tls.buffer_updated(n)
            view = view[n:]


def _tls_reason(exc: BaseException) -> str:
    """What a failed TLS handshake says, short: OpenSSL's reason where there is one."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, _ssl.SSLError) and reason:
        return f"{reason} ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
