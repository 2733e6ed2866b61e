"""The sans-IO handshake (transport/handshake.py): both sides, reflection and replay."""

import pytest

from asyncspark.errors import LocalProtocolError
from asyncspark.transport import handshake
from asyncspark.transport.handshake import BLOCK_CLIENT, BLOCK_SERVER, DRIVER, EXECUTOR, Handshake


def pair(secret_a="s", secret_b="s"):
    a = Handshake(secret_a, DRIVER, EXECUTOR, challenger=True)
    b = Handshake(secret_b, EXECUTOR, DRIVER, challenger=False)
    return a, b


def test_both_sides_prove_themselves():
    a, b = pair()
    answer = b.proof(a.nonce)
    assert not a.proven
    assert a.check(answer)
    assert a.proven
    assert b.check(a.proof(b.nonce))
    assert b.proven
    assert a.state == b.state == "done"


def test_wrong_secret_is_refused_and_stays_refused():
    a, b = pair(secret_b="other")
    assert not a.check(b.proof(a.nonce))
    assert a.state == "failed"
    with pytest.raises(LocalProtocolError):
        a.proof(b.nonce)  # never proves itself to an unproven peer
    assert not a.check(handshake.prove("s", a.nonce, EXECUTOR))


def test_reflection_is_refused():
    # The challenger's own proof over its nonce, sent back at it, has the wrong role.
    a = Handshake("s", BLOCK_SERVER, BLOCK_CLIENT, challenger=True)
    assert not a.check(handshake.prove("s", a.nonce, BLOCK_SERVER))


def test_replay_is_refused():
    a, b = pair()
    answer = b.proof(a.nonce)
    assert a.check(answer)
    assert not a.check(answer)  # a second proof on the same handshake
    fresh = Handshake("s", DRIVER, EXECUTOR, challenger=True)
    assert fresh.nonce != a.nonce
    assert not fresh.check(answer)


def test_responder_checks_only_after_answering():
    a, b = pair()
    assert not b.check(handshake.prove("s", b.nonce, DRIVER))
    with pytest.raises(LocalProtocolError):
        b.proof(a.nonce)
