"""Hostile peers against every listening socket of a live context.

The sockets are discovered from the context: the driver's control port, the driver's
broadcast server and each executor's block server. Against each one: garbage, truncated
frames, huge length prefixes, wrong HMACs, replayed proofs, and a pickle sent before
authenticating that would create a file if it were ever unpickled. Each must be dropped
(the driver's servers also log and count the reason), the file never appears, the driver's
memory does not grow with a 200 MiB length prefix, 300 idle unauthenticated connections
neither block jobs nor outlive their deadline, and jobs stay exact afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import pickle
import socket
import struct
import time

import psutil
import pytest
import pytest_asyncio

import asyncspark
from asyncspark.transport import handshake
from asyncspark.transport.codec import NEED_DATA, FrameCodec
from asyncspark.transport.messages.blocks import BlockAuthResponse, UploadBlock
from asyncspark.transport.messages.control import Register, TaskChannel
from asyncspark.transport.messages.tasks import TaskStatuses

pytestmark = pytest.mark.asyncio(loop_scope="module")

AUTH_TIMEOUT = 1.5  # asyncspark.network.authTimeout of the context under attack
CLOSE_WITHIN = AUTH_TIMEOUT + 8.0  # generous: the machine may be loaded


class _Boom:
    """Unpickling this creates the file ``path``: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def hsc():
    conf = {"asyncspark.network.authTimeout": f"{AUTH_TIMEOUT}s"}
    async with asyncspark.Context("local[2]", app_name="hostile", conf=conf) as ctx:
        # Executors' block servers start just after registration: wait for both.
        for _ in range(200):
            if len(ctx._block_master.executors) == 2:
                break
            await asyncio.sleep(0.05)
        yield ctx


def endpoints(sc) -> dict[str, tuple[str, int]]:
    """Every listening socket of the context, by name."""
    found = {"driver control": tuple(sc._backend.address),
             "driver broadcast": tuple(sc._broadcasts.server.address)}
    for eid, (host, port) in sorted(sc._block_master.executors.items()):
        found[f"executor {eid} block server"] = (host, port)
    assert len(found) == 4, found
    return found


def driver_guards(sc) -> dict[str, object]:
    return {"driver control": sc._backend.guard,
            "driver broadcast": sc._broadcasts.server.guard}


async def exact_job(sc) -> None:
    bc = sc.broadcast({i: i * i for i in range(50)})
    pairs = sc.parallelize(range(2000), 4).map(lambda x: (x % 50, bc.value[x % 50]))
    got = dict(await pairs.reduceByKey(lambda a, b: a + b, 3).collect())
    assert got == {k: 40 * k * k for k in range(50)}


async def read_challenge(reader) -> object:
    """The server's first frame (its challenge), decoded."""
    codec = FrameCodec(4096)
    while True:
        data = await asyncio.wait_for(reader.read(4096), 10)
        assert data, "closed before sending its challenge"
        codec.receive_data(data)
        msg = codec.next_event()
        if msg is not NEED_DATA:
            return msg


async def dropped(reader, within: float = CLOSE_WITHIN) -> float:
    """Seconds until the server closed the connection (reads all it sends)."""
    start = time.monotonic()
    async with asyncio.timeout(within):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return time.monotonic() - start


def frame(msg) -> bytes:
    return FrameCodec().send(msg)


def proof_message(name: str, mac: bytes):
    """The authentication answer the server ``name`` expects, carrying ``mac``."""
    if name == "driver control":
        return Register("0", mac, os.urandom(32), os.getpid(), "127.0.0.1")
    return BlockAuthResponse(mac, os.urandom(32))


def role(name: str) -> bytes:
    return handshake.EXECUTOR if name == "driver control" else handshake.BLOCK_CLIENT


def attacks(name: str, marker: str) -> dict[str, object]:
    """name -> bytes to send right after the challenge (or a callable of the nonce)."""
    boom = pickle.dumps(_Boom(marker))
    if name == "driver control":
        pickled_msg = frame(TaskStatuses([[1, 0, len(boom), 0, None, None]], boom))
    else:
        pickled_msg = frame(UploadBlock(1, "rdd_0_0", [False, True, False, True, 1], boom))
    return {
        "garbage": b"\x00\xff" * 8 + os.urandom(200),
        "truncated frame": struct.pack(">II", 40, 0) + b"\x93\x01",
        "huge length prefix": struct.pack(">II", 0xFFFFFFF0, 0xFFFF) + os.urandom(64),
        "wrong HMAC": frame(proof_message(name, os.urandom(32))),
        "raw pickle": boom,
        "pickled message before auth": pickled_msg,
    }


@pytest.mark.parametrize("attack", ["garbage", "truncated frame", "huge length prefix",
                                    "wrong HMAC", "raw pickle", "pickled message before auth"])
async def test_every_socket_drops_the_attack(hsc, tmp_path, attack, caplog):
    marker = str(tmp_path / "unpickled")
    caplog.set_level(logging.WARNING, logger="asyncspark.transport")
    guards = driver_guards(hsc)
    before = {n: sum(g.drops.values()) for n, g in guards.items()}
    for guard in guards.values():
        guard._logged.clear()  # the rate limit of warnings has its own unit test
    for name, (host, port) in endpoints(hsc).items():
        reader, writer = await asyncio.open_connection(host, port)
        await read_challenge(reader)
        writer.write(attacks(name, marker)[attack])
        if attack == "truncated frame":
            writer.write_eof()
        await writer.drain()
        await dropped(reader)
        writer.close()
    # Every driver server counted and logged its drop, naming the peer.
    for name, guard in guards.items():
        for _ in range(100):
            if sum(guard.drops.values()) > before[name]:
                break
            await asyncio.sleep(0.02)
        assert sum(guard.drops.values()) == before[name] + 1, (name, guard.drops)
    logged = [r.getMessage() for r in caplog.records if "dropped connection" in r.getMessage()]
    for name in guards:
        assert any(m.startswith(name) and "127.0.0.1" in m for m in logged), (name, logged)
    assert not pathlib.Path(marker).exists()  # noqa: ASYNC240 - a test's one stat
    await exact_job(hsc)


async def test_replayed_proof_is_refused(hsc):
    secret = hsc._backend.secret
    for name, (host, port) in endpoints(hsc).items():
        # A proof observed on one connection (here made with the secret) is worthless
        # on the next: every challenge has a fresh nonce.
        r1, w1 = await asyncio.open_connection(host, port)
        old = await read_challenge(r1)
        w1.close()
        stolen = handshake.prove(secret, old.nonce, role(name))
        r2, w2 = await asyncio.open_connection(host, port)
        await read_challenge(r2)
        w2.write(frame(proof_message(name, stolen)))
        await w2.drain()
        await dropped(r2)
        w2.close()
        if name == "driver control":
            # A task channel claiming a registered executor, with a replayed proof.
            r3, w3 = await asyncio.open_connection(host, port)
            await read_challenge(r3)
            w3.write(frame(TaskChannel("0", stolen, os.urandom(32))))
            await w3.drain()
            await dropped(r3)
            w3.close()
    assert hsc._backend.guard.drops["bad HMAC"] >= 2
    await exact_job(hsc)


def _push(host: str, port: int, total: int) -> int:
    """Thread: a 200 MiB length prefix, then bytes until the server hangs up."""
    sent = 0
    chunk = b"\x00" * (1 << 20)
    with socket.create_connection((host, port), timeout=20) as s:
        s.recv(4096)  # the challenge
        s.sendall(struct.pack(">II", 16, total - 16))
        try:
            while sent < total:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
    return sent


async def test_huge_pre_auth_frame_does_not_grow_driver_memory(hsc):
    total = 200 << 20
    me = psutil.Process()
    for name in ("driver control", "driver broadcast"):
        host, port = endpoints(hsc)[name]
        rss = me.memory_info().rss
        results = await asyncio.gather(*(asyncio.to_thread(_push, host, port, total)
                                         for _ in range(4)))
        growth = me.memory_info().rss - rss
        assert growth < 20 << 20, f"{name}: driver RSS grew by {growth >> 20} MiB"
        assert all(sent < total for sent in results), results
    assert hsc._backend.guard.drops["frame too big"] >= 4
    await exact_job(hsc)


@pytest.mark.parametrize("name", ["driver control", "driver broadcast",
                                  "executor 0 block server", "executor 1 block server"])
async def test_idle_unauthenticated_connections(hsc, name):
    host, port = endpoints(hsc)[name]
    cap = hsc.conf.max_unauthenticated
    opened = [await asyncio.open_connection(host, port) for _ in range(300)]
    guard = driver_guards(hsc).get(name)  # the executors' servers are in their processes
    if guard is not None:
        # Beyond the cap, new connections are closed at once.
        refused = "too many unauthenticated connections"
        for _ in range(100):
            if guard.drops[refused] >= 300 - cap:
                break
            await asyncio.sleep(0.02)
        assert guard.drops[refused] >= 300 - cap
        assert len(guard.pending) <= cap
    # Jobs run while they are open.
    start = time.monotonic()
    await exact_job(hsc)
    # None outlives its deadline.
    await asyncio.gather(*(dropped(r, AUTH_TIMEOUT + 10) for r, _ in opened))
    assert time.monotonic() - start < AUTH_TIMEOUT + 10
    if guard is not None:
        assert not guard.pending
        assert guard.drops["authentication timeout"] >= 1
    for _, w in opened:
        w.close()
    await exact_job(hsc)
