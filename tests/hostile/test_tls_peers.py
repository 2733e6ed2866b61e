"""Hostile peers against every listening socket of a live context with TLS on, mutual
(``spark.ssl.needClientAuth``): the driver's control port, its broadcast server and each
executor's block server.

A plaintext client, a client presenting a self-signed certificate, one whose certificate
another CA signed, and one presenting none each send a pickle that would create a file if
it were ever unpickled: each is refused during the TLS handshake (the server never sends
its challenge, so never reads a frame; the driver's servers count and log the drop as
"TLS handshake failed"), the file never appears. A client that never starts its handshake
is dropped at the authentication deadline. A client with the right certificate but a
wrong HMAC is refused by the secret handshake, which still runs inside TLS. A client
whose ClientHello arrives in pieces gets through. Jobs stay exact afterwards. The same
attacks without TLS are ``test_hostile_peers.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import pickle
import ssl
import struct

import pytest
import pytest_asyncio

import asyncspark
from asyncspark.transport.codec import NEED_DATA, FrameCodec
from asyncspark.transport.messages.blocks import (
    BlockAuthChallenge,
    BlockAuthResponse,
    UploadBlock,
)
from asyncspark.transport.messages.control import Challenge, Register
from asyncspark.transport.messages.tasks import TaskStatuses

pytestmark = pytest.mark.asyncio(loop_scope="module")

AUTH_TIMEOUT = 1.5
CLOSE_WITHIN = AUTH_TIMEOUT + 8.0


class _Boom:
    """Unpickling this creates the file ``path``: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def tsc(tls_files):
    conf = tls_files.conf(**{"spark.ssl.needClientAuth": "true",
                             "asyncspark.network.authTimeout": f"{AUTH_TIMEOUT}s"})
    async with asyncspark.Context("local[2]", app_name="hostile-tls", conf=conf) as ctx:
        for _ in range(200):  # block servers start just after registration
            if len(ctx._block_master.executors) == 2:
                break
            await asyncio.sleep(0.05)
        yield ctx


def endpoints(sc) -> dict[str, tuple[str, int]]:
    found = {"driver control": tuple(sc._backend.address),
             "driver broadcast": tuple(sc._broadcasts.server.address)}
    for eid, (host, port) in sorted(sc._block_master.executors.items()):
        found[f"executor {eid} block server"] = (host, port)
    assert len(found) == 4, found
    return found


def client_context(tls_files, cert: str | None, key: str | None) -> ssl.SSLContext:
    """Trusts the application's CA (so the server is accepted) and presents ``cert``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(tls_files.ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def pickled_frame(name: str, marker: str) -> bytes:
    boom = pickle.dumps(_Boom(marker))
    if name == "driver control":
        msg = TaskStatuses([[1, 0, len(boom), 0, None, None]], boom)
    else:
        msg = UploadBlock(1, "rdd_0_0", [False, True, False, True, 1], boom)
    return FrameCodec().send(msg) + boom


async def read_all(reader, within: float = CLOSE_WITHIN) -> bytes:
    """Everything the server sends until it closes the connection."""
    got = b""
    async with asyncio.timeout(within):
        try:
            while data := await reader.read(65536):
                got += data
        except (ConnectionError, ssl.SSLError):
            pass
    return got


def decodes_to_a_challenge(data: bytes) -> bool:
    codec = FrameCodec(4096)
    codec.receive_data(data)
    try:
        msg = codec.next_event()
    except Exception:
        return False
    return msg is not NEED_DATA and type(msg) in (Challenge, BlockAuthChallenge)


def driver_guards(sc) -> dict:
    return {"driver control": sc._backend.guard,
            "driver broadcast": sc._broadcasts.server.guard}


async def counted(guards: dict, before: dict, reason: str) -> None:
    """Each driver server counted one more drop for ``reason``."""
    for _ in range(100):
        if all(g.drops[reason] > before[n] for n, g in guards.items()):
            break
        await asyncio.sleep(0.02)
    for name, guard in guards.items():
        assert guard.drops[reason] == before[name] + 1, (name, guard.drops)


async def test_plaintext_client_is_refused_before_anything_is_read(tsc, tmp_path, caplog):
    marker = str(tmp_path / "unpickled")
    caplog.set_level(logging.WARNING, logger="asyncspark.transport")
    guards = driver_guards(tsc)
    before = {n: g.drops["TLS handshake failed"] for n, g in guards.items()}
    for guard in guards.values():
        guard._logged.clear()
    for name, (host, port) in endpoints(tsc).items():
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(pickled_frame(name, marker))
        await writer.drain()
        got = await read_all(reader)
        writer.close()
        # A TLS alert at most: never the challenge of the secret handshake.
        assert not decodes_to_a_challenge(got), name
        assert got[:1] in (b"", b"\x15"), (name, got[:16])  # 0x15: a TLS alert record
    assert not pathlib.Path(marker).exists()  # noqa: ASYNC240
    await counted(guards, before, "TLS handshake failed")
    logged = [r.getMessage() for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    for name in guards:
        assert any(m.startswith(name) and "127.0.0.1" in m for m in logged), (name, logged)


@pytest.mark.parametrize("who", ["self-signed", "other CA", "no certificate"])
async def test_untrusted_client_certificate_is_refused(tsc, tls_files, tmp_path, who):
    marker = str(tmp_path / "unpickled")
    cert, key = {"self-signed": (tls_files.self_signed_cert, tls_files.self_signed_key),
                 "other CA": (tls_files.other_cert, tls_files.other_key),
                 "no certificate": (None, None)}[who]
    ctx = client_context(tls_files, cert, key)
    guards = driver_guards(tsc)
    before = {n: g.drops["TLS handshake failed"] for n, g in guards.items()}
    for name, (host, port) in endpoints(tsc).items():
        try:
            # TLS 1.3: the client's handshake may finish before the server has checked
            # the certificate; the refusal then arrives as an alert on the first read.
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        except (ssl.SSLError, ConnectionError):
            continue
        try:
            writer.write(pickled_frame(name, marker))
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass
        got = await read_all(reader)
        writer.close()
        assert got == b"", (name, got[:32])  # not even the challenge
    assert not pathlib.Path(marker).exists()  # noqa: ASYNC240
    await counted(guards, before, "TLS handshake failed")
    await exact_job(tsc)


async def test_client_that_never_starts_tls_is_dropped_at_the_deadline(tsc):
    guards = driver_guards(tsc)
    before = {n: g.drops["authentication timeout"] for n, g in guards.items()}
    conns = [await asyncio.open_connection(host, port)
             for host, port in endpoints(tsc).values()]
    got = await asyncio.gather(*(read_all(reader) for reader, _ in conns))
    assert got == [b""] * len(conns)  # each closed, having sent nothing
    for _, writer in conns:
        writer.close()
    await counted(guards, before, "authentication timeout")


async def test_client_hello_in_pieces_gets_the_challenge(tsc, tls_files):
    """A TLS client whose first flight arrives in pieces, the first at once (held aside
    until the TLS layer takes the connection over) and the rest later."""
    ctx = client_context(tls_files, tls_files.cert, tls_files.key)
    for name, (host, port) in endpoints(tsc).items():
        reader, writer = await asyncio.open_connection(host, port)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        writer.write(hello[:7])
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(hello[7:])
        plain = b""
        async with asyncio.timeout(10):
            while not decodes_to_a_challenge(plain):
                data = await reader.read(65536)
                assert data, f"{name} closed the connection"
                incoming.write(data)
                try:
                    tls.do_handshake()
                    plain += tls.read(65536)
                except ssl.SSLWantReadError:
                    pass
                writer.write(outgoing.read())
        writer.close()


async def test_trusted_certificate_without_the_secret_is_refused(tsc, tls_files, tmp_path):
    """TLS proves the certificate, not the application: the secret handshake still runs
    inside it and a wrong HMAC is dropped before any pickle is read."""
    marker = str(tmp_path / "unpickled")
    ctx = client_context(tls_files, tls_files.cert, tls_files.key)
    guards = {"driver control": tsc._backend.guard,
              "driver broadcast": tsc._broadcasts.server.guard}
    before = {n: g.drops["bad HMAC"] for n, g in guards.items()}
    for name, (host, port) in endpoints(tsc).items():
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        codec = FrameCodec(4096)
        while (challenge := codec.next_event()) is NEED_DATA:
            data = await asyncio.wait_for(reader.read(4096), 10)
            assert data, name
            codec.receive_data(data)
        assert type(challenge) in (Challenge, BlockAuthChallenge), name
        wrong = os.urandom(32)
        answer = (Register("0", wrong, os.urandom(32), os.getpid(), "127.0.0.1")
                  if name == "driver control" else BlockAuthResponse(wrong, os.urandom(32)))
        writer.write(FrameCodec().send(answer) + pickled_frame(name, marker))
        await writer.drain()
        assert decodes_to_a_challenge(await read_all(reader)) is False
        writer.close()
    for name, guard in guards.items():
        assert guard.drops["bad HMAC"] == before[name] + 1, (name, guard.drops)
    assert not pathlib.Path(marker).exists()  # noqa: ASYNC240
    await exact_job(tsc)


async def test_huge_length_prefix_in_plaintext_is_a_bad_tls_record(tsc):
    """The TLS layer refuses the bytes before the codec could buffer a frame."""
    for host, port in endpoints(tsc).values():
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(struct.pack(">II", 0xFFFFFFF0, 0xFFFF) + os.urandom(64))
        await writer.drain()
        await read_all(reader)
        writer.close()
    await exact_job(tsc)


async def exact_job(sc) -> None:
    bc = sc.broadcast({i: i * i for i in range(50)})
    pairs = sc.parallelize(range(2000), 4).map(lambda x: (x % 50, bc.value[x % 50]))
    got = dict(await pairs.reduceByKey(lambda a, b: a + b, 3).collect())
    assert got == {k: 40 * k * k for k in range(50)}
