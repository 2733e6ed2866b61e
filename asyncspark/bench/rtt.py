"""The floors a trivial job is compared with: loopback msgpack request/reply round trips.

``measure_rtt(n)`` starts an echo server in a fresh interpreter (``serve()``: an asyncio
protocol on uvloop when it is installed, as an executor's), connects to it over TCP on
127.0.0.1 from the running loop, and times ``n`` round trips of a small request (a
msgpack map, length-prefixed) that the server decodes and answers with a msgpack reply,
the client decoding that: the least any driver-to-executor request/reply can cost on
this machine, measured in the same run as the trivial jobs. The same again with the
reply sent from a worker thread (the hand-off an executor's task pays). The server is
killed (by its pid) before ``measure_rtt`` returns.

Beside that raw-protocol floor, ``measure_rtt`` also times the request/reply a plain
application would write (``streams``, issue #16's "loopback msgpack request/reply"): a
separate Python process started with ``asyncio.run`` (the default event loop, no uvloop)
serving ``asyncio.start_server`` with StreamReader/StreamWriter, answering a task-sized
msgpack request (shaped like a one-task ``LaunchTasks`` frame) with a task-sized msgpack
reply (shaped like a one-task ``TaskStatuses`` frame: a status with its metrics list
and a pickled small result), the client on the running loop writing with
``write()``/``await drain()`` and reading with ``readexactly()``. It is measured once and
not tuned: it stands for what one request/reply between two Python processes costs when
written the ordinary way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pickle
import struct
import sys
import time
from typing import Any

import msgpack

from .stats import percentiles

__all__ = ["measure_rtt", "measure_streams_rtt"]

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
    hand-off every task pays: an executor runs tasks on a thread); ``streams_p50_us``,
    ``streams_p90_us``, ``streams_p99_us``, ``streams_max_us``: the plain asyncio-streams
    request/reply (see the module docstring)."""
    raw = await _measure_raw(n, warmup)
    streams = await measure_streams_rtt(n, warmup)
    return {**raw, **{f"streams_{k}": v for k, v in streams.items()}}


async def _start_server(entry: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"from asyncspark.bench.rtt import {entry}; {entry}()",
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)


async def _port(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if not line.strip().isdigit():
        raise RuntimeError(f"the echo server did not start (it said {line!r})")
    return int(line)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def _measure_raw(n: int, warmup: int) -> dict[str, float]:
    proc = await _start_server("serve")
    try:
        loop = asyncio.get_running_loop()
        port = await _port(proc)
        transport, client = await loop.create_connection(_Client, "127.0.0.1", port)
        try:
            plain = await _round_trips(loop, transport, client, n, warmup, hop=False)
            hop = await _round_trips(loop, transport, client, n, warmup, hop=True)
        finally:
            transport.close()
        hop_pct = percentiles(hop, 1e-3, "us")
        return {**percentiles(plain, 1e-3, "us"), "round_trips": len(plain),
                "thread_hop_p50_us": hop_pct["p50_us"], "thread_hop_p99_us": hop_pct["p99_us"]}
    finally:
        await _stop(proc)


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



# -- the plain asyncio-streams request/reply ---------------------------------------------

def _task_request(i: int) -> dict[str, Any]:
    """Shaped like a one-task LaunchTasks frame (type code, one task's five ints)."""
    return {"type": 5, "tasks": [[i, 7, 0, 0, 3]]}


def _task_reply(request: dict[str, Any]) -> dict[str, Any]:
    """Shaped like a one-task TaskStatuses frame: ``[task_id, state, nbytes, run_us,
    metrics, stamps]`` with the task-times metrics list, and a pickled small int."""
    task_id = request["tasks"][0][0]
    body = pickle.dumps(1, protocol=pickle.HIGHEST_PROTOCOL)
    return {"type": 9, "statuses": [[task_id, 0, len(body), 12,
                                     {"asyncspark.task_times": [12, 11_000, 5, 80_000_000]},
                                     None]],
            "body": body}


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _LEN.unpack(await reader.readexactly(4))
    return msgpack.unpackb(await reader.readexactly(size))


async def _write_frame(writer: asyncio.StreamWriter, obj: Any) -> None:
    writer.write(_frame(obj))
    await writer.drain()


async def measure_streams_rtt(n: int, warmup: int = 50) -> dict[str, float]:
    """``p50_us``/``p90_us``/``p99_us``/``max_us`` of ``n`` task-sized msgpack
    request/replies (after ``warmup`` untimed ones) with a plain asyncio-streams server
    in another process (``serve_streams``), from the running loop."""
    proc = await _start_server("serve_streams")
    try:
        port = await _port(proc)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        samples = []
        try:
            for i in range(warmup + n):
                t = _clock_ns()
                await _write_frame(writer, _task_request(i))
                reply = await _read_frame(reader)
                if i >= warmup:
                    samples.append(_clock_ns() - t)
                if reply["statuses"][0][0] != i:
                    raise AssertionError(f"streams reply {reply!r} to request {i}")
        finally:
            writer.close()
        return percentiles(samples, 1e-3, "us")
    finally:
        await _stop(proc)


async def _serve_streams() -> None:
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await _write_frame(writer, _task_reply(await _read_frame(reader)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            done.set()  # one client per server: it is done

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()


def serve_streams() -> None:
    """The plain streams server's process: default asyncio loop, prints its port,
    answers one client, exits."""
    asyncio.run(_serve_streams())
