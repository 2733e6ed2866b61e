"""The shuffle block transport's conformance suite, run against every transport: real TCP
on 127.0.0.1, TCP with TLS on (throwaway certificates, ``tests/tlscerts.py``), a Unix
socket and the in-memory pair, each on uvloop and asyncio's loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time

import pytest

from asyncspark.errors import AuthenticationError, FetchFailedError, RemoteProtocolError
from asyncspark.tls import TLSConfig
from asyncspark.transport import handshake, memory
from asyncspark.transport.client import (
    TransportClientPool,
    create_connection,
    fetch_blocks_blocking,
)
from asyncspark.transport.handshake import BLOCK_CLIENT, BLOCK_SERVER
from asyncspark.transport.messages.blocks import (
    BlockAuthChallenge,
    BlockAuthConfirmation,
    BlockAuthResponse,
    OpenBlocks,
)
from asyncspark.transport.protocol import FramedProtocol
from asyncspark.transport.server import TransportServer

SECRET = "s3cret"
KINDS = ["tcp", "tls", "unix", "memory"]


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def tls_contexts(tls_files):
    tls = TLSConfig(tls_files.cert, tls_files.key, trust_store=tls_files.ca)
    return tls.server_context(), tls.client_context()


@pytest.fixture
def tls_for(kind, request):
    """``(server, client)`` ssl contexts for the kind ``tls``, else ``(None, None)``."""
    return request.getfixturevalue("tls_contexts") if kind == "tls" else (None, None)


@pytest.fixture(autouse=True)
def _raw_peers_use_tls(tls_for):
    RawPeer.ssl = tls_for[1]
    yield
    RawPeer.ssl = None


@pytest.fixture
def sock_dir():
    """A short directory for Unix sockets (paths are limited to ~107 bytes)."""
    path = tempfile.mkdtemp(prefix="tsock-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def blocks_on_disk(tmp_path):
    """``write(sizes) -> (resolve, {block: bytes})``: blocks (m, 0) of shuffle 7 in one
    data file, block m of ``sizes[m]`` random bytes; ``resolve`` raises KeyError for others."""

    def write(sizes, name="data"):
        path = tmp_path / name
        segments, expected = {}, {}
        offset = 0
        with open(path, "wb") as f:
            for m, size in enumerate(sizes):
                data = os.urandom(size)
                f.write(data)
                segments[(m, 0)] = (str(path), offset, size)
                expected[(m, 0)] = data
                offset += size

        def resolve(shuffle_id, map_id, reduce_id):
            if shuffle_id != 7:
                raise KeyError(f"no shuffle {shuffle_id}")
            return segments[(map_id, reduce_id)]

        return resolve, expected

    return write


@pytest.fixture
async def start_server(kind, sock_dir, tls_for):
    """``await start_server(resolve, **kw)``: a started server of this test's kind."""
    servers = []

    async def start(resolve, secret=SECRET, **kw):
        if kind == "tls":
            kw["ssl"] = tls_for[0]
        elif kind == "unix":
            kw["path"] = os.path.join(sock_dir, f"s{len(servers)}")
        elif kind == "memory":
            kw["in_memory"] = True
        server = TransportServer(secret, resolve, **kw)
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def pools(tls_for):
    """``pools(**kw)``: a client pool with the test secret, closed after the test."""
    made = []

    def make(secret=SECRET, **kw):
        kw.setdefault("ssl", tls_for[1])
        kw.setdefault("io_timeout", 5.0)
        kw.setdefault("connect_timeout", 5.0)
        pool = TransportClientPool(secret, **kw)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        await pool.close()


@pytest.fixture
async def listen(kind, sock_dir, tls_for):
    """``await listen(protocol_factory) -> address``: a bare listener of this test's kind
    (for fake servers); its connections are aborted afterwards."""
    servers, addresses, protocols = [], [], []

    async def start(factory):
        loop = asyncio.get_running_loop()

        def tracked():
            proto = factory()
            protocols.append(proto)
            return proto

        if kind == "memory":
            address = memory.listen(tracked)
            addresses.append(address)
            return address
        if kind == "unix":
            path = os.path.join(sock_dir, f"fake{len(servers)}")
            servers.append(await loop.create_unix_server(tracked, path))
            return path
        server = await loop.create_server(tracked, "127.0.0.1", 0, ssl=tls_for[0])
        servers.append(server)
        return server.sockets[0].getsockname()[:2]

    yield start
    for address in addresses:
        memory.unlisten(address)
    for proto in protocols:
        proto.abort()
    for server in servers:
        server.close()
        await server.wait_closed()
    await asyncio.sleep(0.01)  # let the aborted connections report connection_lost


class RawPeer:
    """A bare framed connection: received messages in a queue, a future for the close
    (over TLS with the client context ``RawPeer.ssl`` when the test's kind is ``tls``)."""

    ssl = None

    def __init__(self) -> None:
        self.messages: asyncio.Queue = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()
        self.proto = FramedProtocol(self.messages.put_nowait, self._on_close)

    def _on_close(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)

    async def connect(self, address) -> RawPeer:
        await create_connection(address, lambda: self.proto, self.ssl)
        return self

    async def next_message(self):
        async with asyncio.timeout(2):
            return await self.messages.get()

    async def wait_closed(self):
        async with asyncio.timeout(2):
            return await self.closed

    async def authenticate(self, secret=SECRET):
        challenge = await self.next_message()
        assert type(challenge) is BlockAuthChallenge
        nonce = handshake.make_nonce()
        self.proto.send(BlockAuthResponse(handshake.prove(secret, challenge.nonce, BLOCK_CLIENT),
                                          nonce))
        confirmation = await self.next_message()
        assert type(confirmation) is BlockAuthConfirmation
        assert handshake.verify(secret, nonce, BLOCK_SERVER, confirmation.mac)


class FakeServer:
    """Authenticates like a TransportServer, then hands messages to ``behaviour``."""

    def __init__(self, behaviour, secret=SECRET) -> None:
        self.behaviour = behaviour
        self.secret = secret
        self.connections: list[FramedProtocol] = []

    def factory(self) -> FramedProtocol:
        nonce = handshake.make_nonce()
        state = {"authenticated": False}

        def on_connect(proto):
            self.connections.append(proto)
            proto.send(BlockAuthChallenge(nonce))

        def on_message(msg):
            if state["authenticated"]:
                self.behaviour(proto, msg)
                return
            assert type(msg) is BlockAuthResponse
            assert handshake.verify(self.secret, nonce, BLOCK_CLIENT, msg.mac)
            state["authenticated"] = True
            proto.send(BlockAuthConfirmation(handshake.prove(self.secret, msg.nonce, BLOCK_SERVER)))

        proto = FramedProtocol(on_message, None, on_connect=on_connect)
        return proto


def native_sendfile_expected(kind) -> bool:
    """asyncio's selector loop sends file segments with sendfile on sockets; uvloop has
    no loop.sendfile, the in-memory transport no file descriptor, and TLS encrypts."""
    return kind not in ("memory", "tls") and type(
        asyncio.get_running_loop()).__module__.startswith("asyncio")


async def eventually(predicate, within=2.0):
    """Wait (bounded) for server-side bookkeeping that trails what the client saw; the
    server has no event for it, so this polls."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def collect(agen) -> tuple[dict, list]:
    """Concatenated data per block, and the block id of every item in order."""
    data: dict = {}
    order = []
    async for block, chunk in agen:
        data[block] = data.get(block, b"") + chunk
        order.append(block)
    return data, order


# -- streaming -------------------------------------------------------------------------


async def test_streams_blocks_in_order_with_empty_and_oversized_ones(
        kind, start_server, pools, blocks_on_disk):
    sizes = [3000, 0, 70_000, 1, 0, 25_000, 12_000]
    resolve, expected = blocks_on_disk(sizes)
    server = await start_server(resolve, chunk_size=64 * 1024)
    pool = pools()
    wanted = list(expected)
    # 70 000 bytes is two chunks, the first bigger than the whole window: asked for alone.
    data, order = await collect(pool.fetch_blocks(server.address, 7, wanted,
                                                  max_bytes_in_flight=20_000))
    assert data == expected
    assert order == [(0, 0), (1, 0), (2, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)]
    await eventually(lambda: server.stats.chunks_sent == 6)
    assert server.stats.chunks_requested == 6
    assert server.stats.bytes_sent == sum(sizes)
    if native_sendfile_expected(kind):
        assert server.stats.sendfile_chunks == 6
    else:
        assert server.stats.sendfile_chunks == 0


async def test_multi_megabyte_blocks(kind, start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([3 << 20, 5 << 20])
    server = await start_server(resolve)  # chunks of 4 MiB
    pool = pools()
    data, order = await collect(pool.fetch_blocks(server.address, 7, list(expected)))
    assert data == expected
    assert order == [(0, 0), (1, 0), (1, 0)]
    await eventually(lambda: server.stats.chunks_sent == 3)
    assert server.stats.sendfile_chunks == (3 if native_sendfile_expected(kind) else 0)


async def test_empty_request_and_all_empty_blocks(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([0, 0])
    server = await start_server(resolve)
    pool = pools()
    assert await collect(pool.fetch_blocks(server.address, 7, [])) == ({}, [])
    assert server.stats.streams_opened == 0  # nothing was asked: no connection either
    data, order = await collect(pool.fetch_blocks(server.address, 7, list(expected)))
    assert data == {(0, 0): b"", (1, 0): b""}
    assert order == [(0, 0), (1, 0)]
    assert server.stats.chunks_requested == 0


async def test_slow_consumer_bounds_bytes_in_flight(start_server, pools, blocks_on_disk):
    window = 40_000
    sizes = [9_000, 20_000, 0, 5_000, 17_000, 30_000, 8_000, 16_000]
    resolve, expected = blocks_on_disk(sizes)
    server = await start_server(resolve, chunk_size=10_000)
    pool = pools()
    consumed = 0
    most_outstanding = 0
    async for _, chunk in pool.fetch_blocks(server.address, 7, list(expected),
                                            max_bytes_in_flight=window):
        await asyncio.sleep(0.005)  # a slow consumer: an eager client would run ahead now
        # The chunk in hand still counts: it is not consumed until we ask for the next.
        outstanding = server.stats.bytes_requested - consumed
        assert outstanding <= window, (outstanding, window)
        most_outstanding = max(most_outstanding, outstanding)
        consumed += len(chunk)
    assert consumed == sum(sizes)
    # ... and the window is actually used: requests are pipelined, not one at a time.
    assert most_outstanding > 10_000


# -- failures --------------------------------------------------------------------------


async def test_bad_secret_fails_authentication(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([100])
    server = await start_server(resolve)
    pool = pools(secret="wrong")
    with pytest.raises(AuthenticationError):
        await pool.connect(server.address)
    with pytest.raises(FetchFailedError) as info:
        await collect(pool.fetch_blocks(server.address, 7, list(expected)))
    err = info.value
    assert isinstance(err.__cause__, AuthenticationError)
    assert (err.shuffle_id, err.map_id, err.reduce_id, err.address) == (
        7, 0, 0, server.address)
    await eventually(lambda: server.stats.open_connections == 0)
    assert server.stats.streams_opened == 0


async def test_server_with_wrong_secret_is_not_trusted(listen, pools):
    """The server must prove the secret too: a confirmation with a wrong MAC fails."""

    def impostor():
        nonce = handshake.make_nonce()

        def on_message(msg):
            proto.send(BlockAuthConfirmation(handshake.prove("other", msg.nonce, BLOCK_SERVER)))

        proto = FramedProtocol(on_message, None,
                               on_connect=lambda p: p.send(BlockAuthChallenge(nonce)))
        return proto

    address = await listen(impostor)
    pool = pools()
    with pytest.raises(FetchFailedError) as info:
        await collect(pool.fetch_blocks(address, 7, [(0, 0)]))
    assert isinstance(info.value.__cause__, AuthenticationError)
    assert "did not prove" in str(info.value)


async def test_missing_block_names_it_and_keeps_the_connection(
        start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([100, 200])
    server = await start_server(resolve)
    pool = pools()
    with pytest.raises(FetchFailedError) as info:
        await collect(pool.fetch_blocks(server.address, 7, [(0, 0), (5, 0), (1, 0)]))
    err = info.value
    assert (err.shuffle_id, err.map_id, err.reduce_id, err.address) == (
        7, 5, 0, server.address)
    assert "KeyError" in str(err)
    with pytest.raises(FetchFailedError, match="no shuffle 8") as info:
        await collect(pool.fetch_blocks(server.address, 8, [(1, 0)]))
    assert (info.value.shuffle_id, info.value.map_id) == (8, 1)
    client = await pool.connect(server.address)
    assert (await collect(pool.fetch_blocks(server.address, 7, list(expected))))[0] == expected
    assert await pool.connect(server.address) is client
    assert server.stats.open_failures == 2


async def test_missing_data_file(start_server, pools, tmp_path):
    gone = str(tmp_path / "gone")
    server = await start_server(lambda s, m, r: (gone, 0, 10))
    pool = pools()
    with pytest.raises(FetchFailedError, match="FileNotFoundError") as info:
        await collect(pool.fetch_blocks(server.address, 3, [(4, 2)]))
    assert (info.value.map_id, info.value.reduce_id) == (4, 2)


async def test_connection_refused(kind, pools, sock_dir):
    if kind in ("tcp", "tls"):
        loop = asyncio.get_running_loop()
        probe = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        address = probe.sockets[0].getsockname()[:2]
        probe.close()
        await probe.wait_closed()
    elif kind == "unix":
        address = os.path.join(sock_dir, "nobody")
    else:
        address = memory.MemoryAddress("nobody-listens-here")
    pool = pools()
    start = time.monotonic()
    with pytest.raises(FetchFailedError) as info:
        await collect(pool.fetch_blocks(address, 1, [(2, 3)]))
    assert time.monotonic() - start < 2
    err = info.value
    assert (err.shuffle_id, err.map_id, err.reduce_id, err.address) == (1, 2, 3, address)
    assert isinstance(err.__cause__, ConnectionError)


async def test_server_closed_mid_stream_fails_fast(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([50_000] * 6)
    server = await start_server(resolve, chunk_size=10_000)
    pool = pools(io_timeout=30.0)  # the failure must come from the close, not a timeout
    fetch = pool.fetch_blocks(server.address, 7, list(expected), max_bytes_in_flight=20_000)
    first = await anext(fetch)
    assert first[0] == (0, 0)
    await server.close()
    start = time.monotonic()
    with pytest.raises(FetchFailedError) as info:
        async with asyncio.timeout(2):
            await collect(fetch)
    assert time.monotonic() - start < 2
    assert info.value.address == server.address
    assert info.value.shuffle_id == 7
    assert (info.value.map_id, info.value.reduce_id) in expected


async def test_stalled_server_times_out(listen, pools):
    fake = FakeServer(lambda proto, msg: None)  # authenticates, then never answers
    address = await listen(fake.factory)
    pool = pools(io_timeout=0.1)
    start = time.monotonic()
    with pytest.raises(FetchFailedError, match="no stream handle within") as info:
        await collect(pool.fetch_blocks(address, 1, [(0, 0)]))
    assert 0.08 < time.monotonic() - start < 2
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_stalled_chunk_times_out_and_drops_the_connection(listen, pools):
    from asyncspark.transport.messages.blocks import StreamHandle

    def behaviour(proto, msg):
        if type(msg) is OpenBlocks:  # a handle, and then silence
            proto.send(StreamHandle(msg.request_id, 1, 1000, [10]))

    address = await listen(FakeServer(behaviour).factory)
    pool = pools(io_timeout=0.25)
    client = await pool.connect(address)
    with pytest.raises(FetchFailedError, match="no response within") as info:
        await collect(pool.fetch_blocks(address, 1, [(3, 4)]))
    assert (info.value.map_id, info.value.reduce_id) == (3, 4)
    await client.wait_closed()
    assert not client.alive
    assert await pool.connect(address) is not client


async def test_malformed_frame_from_server(listen, pools):
    def behaviour(proto, msg):
        proto.transport.write(b"\x00\x00\x00\x03\x00\x00\x00\x00\xc1\xc1\xc1")

    address = await listen(FakeServer(behaviour).factory)
    pool = pools()
    with pytest.raises(FetchFailedError) as info:
        await collect(pool.fetch_blocks(address, 1, [(0, 0)]))
    assert isinstance(info.value.__cause__, RemoteProtocolError)


async def test_malformed_frame_closes_only_that_connection(
        start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([1000, 2000])
    server = await start_server(resolve)
    pool = pools()
    client = await pool.connect(server.address)
    # Garbage before authenticating.
    peer = await RawPeer().connect(server.address)
    peer.proto.transport.write(b"\xff" * 64)
    assert isinstance(await peer.wait_closed(), (ConnectionError, type(None)))
    # A valid frame of the wrong kind before authenticating.
    peer = await RawPeer().connect(server.address)
    await peer.next_message()
    peer.proto.send(OpenBlocks(1, 7, [[0, 0]]))
    await peer.wait_closed()
    # Garbage after authenticating.
    peer = await RawPeer().connect(server.address)
    await peer.authenticate()
    peer.proto.transport.write(b"\x00\x00\x00\x02\x00\x00\x00\x00\x91\x63")  # code 99
    await peer.wait_closed()
    # The pooled connection did not notice.
    assert client.alive
    assert (await collect(pool.fetch_blocks(server.address, 7, list(expected))))[0] == expected
    assert await pool.connect(server.address) is client
    assert server.stats.open_connections == 1


# -- pooling ---------------------------------------------------------------------------


async def test_connections_are_pooled_and_broken_ones_replaced(
        start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([5000, 0, 7000])
    server = await start_server(resolve, chunk_size=2000)
    pool = pools()
    wanted = list(expected)
    for _ in range(3):
        assert (await collect(pool.fetch_blocks(server.address, 7, wanted)))[0] == expected
    client = await pool.connect(server.address)
    assert server.stats.open_connections == 1
    # Concurrent fetches share the one connection.
    results = await asyncio.gather(*[collect(pool.fetch_blocks(server.address, 7, wanted,
                                                               max_bytes_in_flight=3000))
                                     for _ in range(4)])
    assert all(data == expected for data, _ in results)
    assert await pool.connect(server.address) is client
    assert server.stats.open_connections == 1
    # A broken connection is dropped; the next fetch opens a new one.
    client.abort()
    await client.wait_closed()
    assert (await collect(pool.fetch_blocks(server.address, 7, wanted)))[0] == expected
    assert await pool.connect(server.address) is not client
    await eventually(lambda: server.stats.open_connections == 1)


async def test_consumer_stopping_early_frees_the_stream(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([30_000] * 4)
    server = await start_server(resolve, chunk_size=10_000)
    pool = pools()
    fetch = pool.fetch_blocks(server.address, 7, list(expected), max_bytes_in_flight=20_000)
    assert (await anext(fetch))[0] == (0, 0)
    await fetch.aclose()
    (conn,) = server._connections
    await eventually(lambda: not conn.streams)
    # The connection stays in use for the next fetch, late chunks are dropped.
    client = await pool.connect(server.address)
    assert (await collect(pool.fetch_blocks(server.address, 7, list(expected))))[0] == expected
    assert await pool.connect(server.address) is client


async def test_pool_close_fails_fetches_in_flight(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([40_000] * 3)
    server = await start_server(resolve, chunk_size=10_000)
    pool = pools()
    fetch = pool.fetch_blocks(server.address, 7, list(expected), max_bytes_in_flight=10_000)
    await anext(fetch)
    await pool.close()
    with pytest.raises(FetchFailedError):
        async with asyncio.timeout(2):
            await collect(fetch)
    with pytest.raises(FetchFailedError, match="closed"):
        await collect(pool.fetch_blocks(server.address, 7, list(expected)))


# -- the thread bridge -----------------------------------------------------------------


async def test_blocking_bridge_from_a_thread(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([25_000, 0, 3, 60_000])
    server = await start_server(resolve, chunk_size=16_000)
    pool = pools()
    loop = asyncio.get_running_loop()

    def consume(window):
        out: dict = {}
        for block, chunk in fetch_blocks_blocking(loop, pool, server.address, 7,
                                                  list(expected), window):
            time.sleep(0.001)
            out[block] = out.get(block, b"") + chunk
        return out

    assert await asyncio.to_thread(consume, 20_000) == expected
    assert await asyncio.to_thread(consume, 1) == expected  # one chunk at a time


async def test_blocking_bridge_window_counts_what_the_thread_holds(
        start_server, pools, blocks_on_disk):
    window = 30_000
    resolve, expected = blocks_on_disk([10_000] * 12)
    server = await start_server(resolve, chunk_size=10_000)
    pool = pools()
    loop = asyncio.get_running_loop()

    def consume():
        consumed = 0
        for _, chunk in fetch_blocks_blocking(loop, pool, server.address, 7,
                                              list(expected), window):
            time.sleep(0.005)
            assert server.stats.bytes_requested - consumed <= window
            consumed += len(chunk)
        return consumed

    assert await asyncio.to_thread(consume) == 120_000


async def test_blocking_bridge_errors_and_early_close(start_server, pools, blocks_on_disk):
    resolve, expected = blocks_on_disk([30_000] * 4)
    server = await start_server(resolve, chunk_size=10_000)
    pool = pools()
    loop = asyncio.get_running_loop()

    def missing():
        with pytest.raises(FetchFailedError) as info:
            list(fetch_blocks_blocking(loop, pool, server.address, 7, [(0, 0), (9, 0)]))
        return info.value

    err = await asyncio.to_thread(missing)
    assert (err.shuffle_id, err.map_id, err.address) == (7, 9, server.address)

    def stop_early():
        gen = fetch_blocks_blocking(loop, pool, server.address, 7, list(expected), 20_000)
        first = next(gen)
        gen.close()  # cancels the fetch on the loop and waits for its cleanup
        return first[0]

    assert await asyncio.to_thread(stop_early) == (0, 0)
    (conn,) = server._connections
    await eventually(lambda: not conn.streams)

    def raise_inside():
        for _ in fetch_blocks_blocking(loop, pool, server.address, 7, list(expected), 10_000):
            raise ValueError("the task failed")

    with pytest.raises(ValueError, match="the task failed"):
        await asyncio.to_thread(raise_inside)
    assert (await collect(pool.fetch_blocks(server.address, 7, list(expected))))[0] == expected
    assert threading.active_count() < 50


async def test_blocking_bridge_refuses_the_loop_thread(pools):
    gen = fetch_blocks_blocking(asyncio.get_running_loop(), pools(), ("127.0.0.1", 1), 1,
                                [(0, 0)])
    with pytest.raises(RuntimeError, match="deadlock"):
        next(gen)
