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
import time
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
                 clock: Any = time.monotonic) -> None:
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
        conns = list(self.connections)
        self.connections.clear()
        for proto in conns:
            proto.abort(TransportError(reason))
