"""Challenge-response authentication with the per-application secret.

Each side proves it knows the secret by returning HMAC-SHA256(secret, peer's nonce); nothing
the peer sends is unpickled before that proof checks out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SECRET_ENV", "make_nonce", "make_secret", "prove", "verify"]

SECRET_ENV = "ASYNCSPARK_SECRET"
NONCE_BYTES = 32


def make_secret() -> str:
    return secrets.token_hex(32)


def make_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def prove(secret: str, nonce: bytes, role: bytes) -> bytes:
    """The MAC proving knowledge of ``secret`` for ``nonce``; ``role`` stops reflection."""
    return hmac.new(secret.encode(), role + nonce, hashlib.sha256).digest()


def verify(secret: str, nonce: bytes, role: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(prove(secret, nonce, role), mac)
