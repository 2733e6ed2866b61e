"""The floor a trivial job is compared with: a loopback msgpack request/reply round trip.

``measure_rtt(n)`` starts an echo server in a fresh interpreter (``serve()``: an asyncio
protocol on uvloop when it is installed, as an executor's), connects to it over TCP on
127.0.0.1 from the running loop, and times ``n`` round trips of a small request (a
msgpack map, length-prefixed) that the server decodes and answers with a msgpack reply,
the client decoding that: the least any driver-to-executor request/reply can cost on
this machine, measured in the same run as the trivial jobs. The same again with the
reply sent from a worker thread (the hand-off an executor's task pays). The server is
killed (by its pid) before ``measure_rtt`` returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import struct
import sys
import time
from typing import Any

import msgpack

from .stats import percentiles

__all__ = ["measure_rtt"]

_LEN = struct.Struct("!I")
_clock_ns = time.perf_counter_ns


class _Framer:
    """Length-prefixed msgpack frames from a byte stream."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(msgpack.unpackb(bytes(self.buf[4:4 + n])))
            del self.buf[:4 + n]
        return out


def _frame(obj: Any) -> bytes:
    body = msgpack.packb(obj)
    return _LEN.pack(len(body)) + body


class _EchoServer(asyncio.Protocol):
    def __init__(self, done: asyncio.Event) -> None:
        self.done = done

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.framer = _Framer()
        self.loop = asyncio.get_running_loop()
        self.pool = concurrent.futures.ThreadPoolExecutor(1)

    def data_received(self, data: bytes) -> None:
        for req in self.framer.feed(data):
            if req.get("hop"):  # answer from a worker thread, as a task's status is
                self.pool.submit(self._reply_later, req["id"])
            else:
                self.transport.write(_frame({"id": req["id"], "ok": True}))

    def _reply_later(self, request_id: int) -> None:
        self.loop.call_soon_threadsafe(self.transport.write,
                                       _frame({"id": request_id, "ok": True}))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.done.set()  # one client per server: it is done


class _Client(asyncio.Protocol):
    def __init__(self) -> None:
        self.framer = _Framer()
        self.waiter: asyncio.Future | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for reply in self.framer.feed(data):
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(reply)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the echo server went away"))


async def measure_rtt(n: int, warmup: int = 50) -> dict[str, float]:
    """``p50_us``/``p90_us``/``p99_us``/``max_us`` of ``n`` loopback msgpack round trips
    (after ``warmup`` untimed ones), from the running loop; ``thread_hop_p50_us`` and
    ``thread_hop_p99_us``: the same when the server answers from a worker thread (the
    hand-off every task pays: an executor runs tasks on a thread)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from asyncspark.bench.rtt import serve; serve()",
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)
    try:
        loop = asyncio.get_running_loop()
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        if not line.strip().isdigit():
            raise RuntimeError(f"the echo server did not start (it said {line!r})")
        transport, client = await loop.create_connection(_Client, "127.0.0.1", int(line))
        try:
            plain = await _round_trips(loop, transport, client, n, warmup, hop=False)
            hop = await _round_trips(loop, transport, client, n, warmup, hop=True)
        finally:
            transport.close()
        hop_pct = percentiles(hop, 1e-3, "us")
        return {**percentiles(plain, 1e-3, "us"), "round_trips": len(plain),
                "thread_hop_p50_us": hop_pct["p50_us"], "thread_hop_p99_us": hop_pct["p99_us"]}
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _round_trips(loop: asyncio.AbstractEventLoop, transport: Any, client: _Client,
                       n: int, warmup: int, hop: bool) -> list[int]:
    request = {"id": 0, "op": "ping", "hop": hop, "body": b"x" * 64}
    samples = []
    for i in range(warmup + n):
        request["id"] = i
        client.waiter = loop.create_future()
        t = _clock_ns()
        transport.write(_frame(request))
        reply = await client.waiter
        if i >= warmup:
            samples.append(_clock_ns() - t)
        if reply["id"] != i:
            raise AssertionError(f"echo reply {reply!r} to request {i}")
    return samples


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    server = await loop.create_server(lambda: _EchoServer(done), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()


def serve() -> None:
    """The echo server's process: prints its port, answers one client, exits."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve())
    else:
        uvloop.run(_serve())

