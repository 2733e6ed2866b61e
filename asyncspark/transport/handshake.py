"""Challenge-response authentication with the per-application secret, sans-IO.

Owns every handshake of asyncspark: the driver's control connection and task channel
with an executor (``Challenge`` -> ``Register``/``TaskChannel`` -> ``Registered``) and a
block client with a block server (``BlockAuthChallenge`` -> ``BlockAuthResponse`` ->
``BlockAuthConfirmation``). No sockets here: the connections feed it the nonces and MACs
of those messages and send what it returns.

The side that speaks first (the *challenger*: driver, block server) sends a fresh nonce;
the *responder* (executor, block client) answers with HMAC-SHA256(secret, its role + that
nonce) and a nonce of its own; the challenger checks the proof and only then proves
itself the same way over the responder's nonce, which the responder checks. So:

- nothing the peer sends is unpickled before its proof checks out (the connections
  accept no other message until ``proven``);
- the role bytes in each MAC stop reflection (a proof made for one direction is refused
  in the other);
- a replayed proof is refused: every handshake has its own random nonce, and a side
  checks a proof once (a second one fails).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..errors import LocalProtocolError

__all__ = [
    "BLOCK_CLIENT",
    "BLOCK_SERVER",
    "DRIVER",
    "EXECUTOR",
    "SECRET_ENV",
    "Handshake",
    "make_nonce",
    "make_secret",
    "prove",
    "verify",
]

SECRET_ENV = "ASYNCSPARK_SECRET"  # how the driver hands an executor the secret
NONCE_BYTES = 32

# Roles: what the MAC of each side is bound to.
DRIVER = b"driver"
EXECUTOR = b"executor"
BLOCK_CLIENT = b"block-client"
BLOCK_SERVER = b"block-server"


def make_secret() -> str:
    return secrets.token_hex(32)


def make_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def prove(secret: str, nonce: bytes, role: bytes) -> bytes:
    """The MAC proving knowledge of ``secret`` for ``nonce``; ``role`` stops reflection."""
    return hmac.new(secret.encode(), role + nonce, hashlib.sha256).digest()


def verify(secret: str, nonce: bytes, role: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(prove(secret, nonce, role), mac)


class Handshake:
    """One side of one handshake. ``challenger`` is the side that sends its nonce first.

    Challenger: send ``nonce``; on the answer, ``check(mac)`` then, if it passed,
    ``proof(peer_nonce)`` to send back. Responder: on the challenge, ``proof(peer_nonce)``
    to send with ``nonce``; on the confirmation, ``check(mac)``. ``proven`` is True once
    the peer's proof passed; a failed or repeated ``check`` leaves the handshake failed.
    """

    __slots__ = ("_proved", "_secret", "challenger", "nonce", "peer_role", "role", "state")

    # States: "start" -> (challenger) "proven" -> "done"; (responder) "answered" ->
    # "done". Any refused proof: "failed" for good.

    def __init__(self, secret: str, role: bytes, peer_role: bytes, *,
                 challenger: bool) -> None:
        self._secret = secret
        self.role: bytes = role
        self.peer_role: bytes = peer_role
        self.challenger: bool = challenger
        self.nonce: bytes = make_nonce()
        self.state: str = "start"
        self._proved = False

    @property
    def proven(self) -> bool:
        """The peer has proven it knows the secret."""
        return self.state in ("proven", "done")

    def check(self, mac: bytes) -> bool:
        """Check the peer's MAC over our nonce; True if it proves the secret. A check
        out of turn (a responder that has not answered yet, a second check) fails."""
        expected = "start" if self.challenger else "answered"
        if self.state != expected:
            self.state = "failed"
            return False
        if not verify(self._secret, self.nonce, self.peer_role, mac):
            self.state = "failed"
            return False
        self.state = "proven" if self.challenger else "done"
        return True

    def proof(self, peer_nonce: bytes) -> bytes:
        """Our MAC over the peer's nonce: a responder's answer to the challenge, or a
        challenger's confirmation once the peer is proven (never before)."""
        if self.challenger:
            if self.state != "proven":
                raise LocalProtocolError("challenger cannot prove itself before the peer")
            self.state = "done"
        else:
            if self.state != "start":
                raise LocalProtocolError(f"responder asked to answer in state {self.state}")
            self.state = "answered"
        return prove(self._secret, peer_nonce, self.role)
