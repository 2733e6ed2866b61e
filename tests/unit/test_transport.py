"""The shuffle block transport without sockets: the in-memory transport pair, the chunk
plan, the server and client protocol logic over in-memory connections (hypothesis for
block sizes, chunking and windows), and the thread bridge when its loop goes away.

The conformance suite over TCP, Unix sockets and memory is
``tests/integration/test_transport_tcp.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark.errors import (
    AuthenticationError,
    FetchFailedError,
    LocalProtocolError,
    RemoteProtocolError,
)
from asyncspark.transport import handshake, memory
from asyncspark.transport.client import (
    TransportClientPool,
    _chunk_plan,
    create_connection,
    fetch_blocks_blocking,
)
from asyncspark.transport.codec import NEED_DATA, FrameCodec
from asyncspark.transport.handshake import BLOCK_CLIENT, BLOCK_SERVER
from asyncspark.transport.messages.blocks import (
    BlockAuthChallenge,
    BlockAuthConfirmation,
    BlockAuthResponse,
    ChunkFetchFailure,
    ChunkFetchRequest,
    ChunkFetchSuccess,
    CloseStream,
    OpenBlocks,
    OpenBlocksFailure,
    StreamHandle,
)
from asyncspark.transport.messages.control import Heartbeat
from asyncspark.transport.protocol import FramedProtocol
from asyncspark.transport.server import TransportServer

SECRET = "unit-secret"
FAST = settings(max_examples=20, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


# -- the in-memory transport -----------------------------------------------------------


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list = []
        self.data = bytearray()
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        self.data += data
        self.events.append(("data", bytes(data)))

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


async def test_memory_pair_delivers_later_and_in_order():
    a, b = Recorder(), Recorder()
    ta, tb = memory.memory_pair(a, b)
    assert a.events == b.events == ["made"]
    ta.write(b"one")
    ta.writelines([b"two", b"three"])
    assert b.data == b""  # like a socket: on a later loop iteration
    tb.write(b"back")
    await asyncio.sleep(0)
    assert bytes(b.data) == b"onetwothree"
    assert bytes(a.data) == b"back"
    assert ta.get_extra_info("peername") == "memory"


async def test_memory_close_delivers_data_then_eof():
    a, b = Recorder(), Recorder()
    ta, _ = memory.memory_pair(a, b)
    ta.write(b"last words")
    ta.close()
    assert ta.is_closing()
    ta.write(b"dropped")
    async with asyncio.timeout(1):
        await asyncio.gather(a.lost, b.lost)
    assert b.events == ["made", ("data", b"last words"), "eof", ("lost", None)]
    assert a.events[-1] == ("lost", None)


async def test_memory_abort_resets_the_peer():
    a, b = Recorder(), Recorder()
    ta, _ = memory.memory_pair(a, b)
    ta.write(b"never seen")
    ta.abort()
    async with asyncio.timeout(1):
        assert await a.lost is None
        assert isinstance(await b.lost, ConnectionResetError)
    assert b.data == b""


async def test_memory_flow_control_follows_the_reader():
    a, b = Recorder(), Recorder()
    ta, tb = memory.memory_pair(a, b)
    ta.set_write_buffer_limits(high=100, low=10)
    tb.pause_reading()
    ta.write(b"x" * 150)
    assert a.events[-1] == "pause"
    assert ta.get_write_buffer_size() == 150
    await asyncio.sleep(0)
    assert b.data == b""  # the reader is paused: nothing delivered, still paused
    tb.resume_reading()
    await asyncio.sleep(0)
    assert len(b.data) == 150
    assert a.events[-1] == "resume"
    assert ta.get_write_buffer_size() == 0
    ta.close()
    async with asyncio.timeout(1):
        await asyncio.gather(a.lost, b.lost)


async def test_memory_listen_and_connect():
    accepted = []

    def factory():
        accepted.append(Recorder())
        return accepted[-1]

    address = memory.listen(factory)
    try:
        with pytest.raises(OSError, match="in use"):
            memory.listen(factory, name=address.name)
        transport, proto = await create_connection(address, Recorder)
        transport.write(b"hi")
        await asyncio.sleep(0)
        assert bytes(accepted[0].data) == b"hi"
        transport.close()
        async with asyncio.timeout(1):
            await asyncio.gather(proto.lost, accepted[0].lost)
    finally:
        memory.unlisten(address)
    with pytest.raises(ConnectionRefusedError):
        await memory.open_connection(address, Recorder)


# -- sans-IO pieces --------------------------------------------------------------------


@FAST
@given(sizes=st.lists(st.integers(0, 5000), max_size=12), chunk_size=st.integers(1, 3000))
def test_chunk_plan_covers_every_block(sizes, chunk_size):
    blocks = [(m, m % 3) for m in range(len(sizes))]
    plan = _chunk_plan(blocks, StreamHandle(1, 1, chunk_size, sizes), 1 << 20)
    indices = [i for _, i, _ in plan if i >= 0]
    assert indices == list(range(len(indices)))
    pieces: dict = {}
    for block, index, length in plan:
        pieces.setdefault(block, []).append((index, length))
    # Every block, in request order, its chunks contiguous.
    assert [block for block, _ in itertools.groupby(b for b, _, _ in plan)] == blocks
    assert len(plan) == sum(len(p) for p in pieces.values())
    for block, size in zip(blocks, sizes, strict=True):
        if size:
            assert sum(n for _, n in pieces[block]) == size
            assert all(0 < n <= chunk_size for _, n in pieces[block])
        else:
            assert pieces[block] == [(-1, 0)]


def test_chunk_plan_rejects_a_handle_that_does_not_fit():
    blocks = [(0, 0), (1, 0)]
    with pytest.raises(RemoteProtocolError, match="2 blocks"):
        _chunk_plan(blocks, StreamHandle(1, 1, 100, [5]), 1 << 20)
    with pytest.raises(RemoteProtocolError):
        _chunk_plan(blocks, StreamHandle(1, 1, 100, [5, -1]), 1 << 20)
    with pytest.raises(RemoteProtocolError, match="maxFrameSize"):
        _chunk_plan(blocks, StreamHandle(1, 1, 1 << 20, [5, 5]), 1 << 20)


@FAST
@given(body=st.binary(max_size=300), stream_id=st.integers(0, 2**40),
       index=st.integers(0, 2**20))
def test_send_header_plus_raw_body_is_the_same_frame(body, stream_id, index):
    codec = FrameCodec()
    msg = ChunkFetchSuccess(stream_id, index, body)
    assert codec.send_header(ChunkFetchSuccess(stream_id, index, b""), len(body)) + body \
        == codec.send(msg)
    rx = FrameCodec()
    rx.receive_data(codec.send(msg))
    assert rx.next_event() == msg
    assert rx.next_event() is NEED_DATA


def test_send_header_checks():
    codec = FrameCodec(max_frame_size=100)
    with pytest.raises(LocalProtocolError, match="no body"):
        codec.send_header(Heartbeat([]), 10)
    with pytest.raises(LocalProtocolError, match="exceeds"):
        codec.send_header(ChunkFetchSuccess(1, 1, b""), 100)


# -- server and client over in-memory connections --------------------------------------


class DataFile(tuple):
    """``(path, content)``, with a repr short enough for hypothesis reports."""

    def __repr__(self) -> str:
        return f"DataFile({self[0]!r}, <{len(self[1])} bytes>)"


@pytest.fixture(scope="module")
def data_file():
    """64 KiB of random bytes in a file; blocks are segments of it."""
    directory = tempfile.mkdtemp(prefix="transport-unit-")
    path = os.path.join(directory, "data")
    content = os.urandom(64 * 1024)
    with open(path, "wb") as f:
        f.write(content)
    yield DataFile((path, content))
    shutil.rmtree(directory, ignore_errors=True)


def segment_resolver(path, segments):
    """resolve() over ``{(map_id, reduce_id): (offset, length)}`` of ``path``."""

    def resolve(shuffle_id, map_id, reduce_id):
        offset, length = segments[(map_id, reduce_id)]
        return path, offset, length

    return resolve


async def collect(agen) -> dict:
    out: dict = {}
    async for block, chunk in agen:
        out[block] = out.get(block, b"") + chunk
    return out


@FAST
@given(data=st.data(), chunk_size=st.integers(1, 9000), window=st.integers(1, 20_000))
async def test_random_blocks_chunks_and_windows(data_file, data, chunk_size, window):
    path, content = data_file
    count = data.draw(st.integers(1, 10), label="blocks")
    segments = {}
    for m in range(count):
        # At most ~16 chunks a block: each chunk is a thread hop on the server.
        length = data.draw(st.sampled_from([0, 1, chunk_size, chunk_size + 1]) |
                           st.integers(0, min(12_000, 16 * chunk_size)), label="length")
        offset = data.draw(st.integers(0, len(content) - length), label="offset")
        segments[(m, m % 2)] = (offset, length)
    server = TransportServer(SECRET, segment_resolver(path, segments), in_memory=True,
                             chunk_size=chunk_size)
    await server.start()
    pool = TransportClientPool(SECRET, io_timeout=5)
    try:
        got: dict = {}
        consumed = 0
        async for block, chunk in pool.fetch_blocks(server.address, 1, list(segments),
                                                    max_bytes_in_flight=window):
            await asyncio.sleep(0)
            await asyncio.sleep(0)  # let an over-eager client's requests reach the server
            # A chunk bigger than the window is requested alone.
            assert server.stats.bytes_requested - consumed <= max(window, chunk_size)
            consumed += len(chunk)
            got[block] = got.get(block, b"") + chunk
        assert got == {b: content[o:o + n] for b, (o, n) in segments.items()}
    finally:
        await pool.close()
        await server.close()


class Peer:
    """A bare framed connection to an in-memory server."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()
        self.proto = FramedProtocol(self.messages.put_nowait, self._on_close)

    def _on_close(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)

    @classmethod
    async def connect(cls, address, secret=SECRET, role=BLOCK_CLIENT) -> Peer:
        """Connected and, unless ``secret`` is None, authenticated."""
        peer = cls()
        await create_connection(address, lambda: peer.proto)
        if secret is not None:
            challenge = await peer.next_message()
            nonce = handshake.make_nonce()
            peer.proto.send(BlockAuthResponse(handshake.prove(secret, challenge.nonce, role),
                                              nonce))
            if role == BLOCK_CLIENT:
                confirmation = await peer.next_message()
                assert handshake.verify(secret, nonce, BLOCK_SERVER, confirmation.mac)
        return peer

    async def next_message(self):
        async with asyncio.timeout(2):
            return await self.messages.get()

    async def wait_closed(self):
        async with asyncio.timeout(2):
            return await self.closed


@pytest.fixture
async def server(data_file):
    """An in-memory server with blocks (m, 0) = 1000 * m bytes, chunks of 1000 bytes."""
    path, _ = data_file
    segments = {(m, 0): (100 * m, 1000 * m) for m in range(5)}
    srv = TransportServer(SECRET, segment_resolver(path, segments), in_memory=True,
                          chunk_size=1000, io_timeout=5)
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def pool():
    p = TransportClientPool(SECRET, io_timeout=2, connect_timeout=2)
    yield p
    await p.close()


async def test_server_auth_rejects_wrong_role_and_early_requests(server):
    # A client proving with the server's role (a reflected proof) is refused.
    peer = await Peer.connect(server.address, role=BLOCK_SERVER)
    await peer.wait_closed()
    assert peer.messages.empty()  # no confirmation
    # Before authenticating, frames are limited to 4 KiB (AUTH_FRAME_LIMIT): a right
    # proof in a big frame is not even read.
    peer = await Peer.connect(server.address, secret=None)
    challenge = await peer.next_message()
    peer.proto.send(BlockAuthResponse(handshake.prove(SECRET, challenge.nonce, BLOCK_CLIENT),
                                      b"n" * 5000))
    await peer.wait_closed()
    assert peer.messages.empty()
    # Requests before authenticating close the connection, unanswered.
    peer = await Peer.connect(server.address, secret=None)
    assert type(await peer.next_message()) is BlockAuthChallenge
    peer.proto.send(ChunkFetchRequest(1, 0))
    await peer.wait_closed()
    assert peer.messages.empty()
    assert server.stats.open_connections == 0


async def test_server_drops_a_client_that_never_authenticates():
    async with TransportServer(SECRET, segment_resolver("", {}), in_memory=True,
                               io_timeout=0.1) as srv:
        peer = await Peer.connect(srv.address, secret=None)
        start = time.monotonic()
        await peer.wait_closed()
        assert 0.08 < time.monotonic() - start < 2
        assert srv.stats.open_connections == 0


async def test_server_stream_lifecycle(server, data_file):
    _, content = data_file
    peer = await Peer.connect(server.address)
    send, receive = peer.proto.send, peer.next_message
    send(OpenBlocks(5, 1, [[2, 0], [0, 0], [1, 0]]))
    handle = await receive()
    assert handle == StreamHandle(5, handle.stream_id, 1000, [2000, 0, 1000])
    (conn,) = server._connections
    stream = handle.stream_id
    send(ChunkFetchRequest(stream, 2))
    assert await receive() == ChunkFetchSuccess(stream, 2, content[100:1100])
    send(ChunkFetchRequest(stream, 3))
    failure = await receive()
    assert type(failure) is ChunkFetchFailure
    assert "no chunk 3" in failure.error
    send(ChunkFetchRequest(stream, 0))
    send(ChunkFetchRequest(stream, 1))
    assert (await receive()).body == content[200:1200]
    assert (await receive()).body == content[1200:2200]
    assert stream not in conn.streams  # every chunk sent once: freed
    send(ChunkFetchRequest(stream, 0))
    assert type(await receive()) is ChunkFetchFailure
    # CloseStream frees a stream early.
    send(OpenBlocks(6, 1, [[3, 0]]))
    handle = await receive()
    assert handle.stream_id in conn.streams
    send(CloseStream(handle.stream_id))
    send(ChunkFetchRequest(handle.stream_id, 0))
    assert type(await receive()) is ChunkFetchFailure
    assert not conn.streams
    # Malformed block lists are refused, the connection stays.
    send(OpenBlocks(7, 1, [[1, "x"]]))
    assert await receive() == OpenBlocksFailure(
        7, -1, -1, "blocks must be [map_id, reduce_id] integer pairs")
    send(OpenBlocks(8, 1, [[9, 9]]))
    failure = await receive()
    assert (failure.request_id, failure.map_id, failure.reduce_id) == (8, 9, 9)
    assert failure.error.startswith("KeyError")
    assert not peer.closed.done()
    peer.proto.close()
    await peer.wait_closed()


async def test_segment_past_the_end_of_its_file(tmp_path, pool):
    path = tmp_path / "short"
    path.write_bytes(b"x" * 100)

    def resolve(shuffle_id, map_id, reduce_id):
        if map_id == 2:
            return str(path), 10, -5  # a corrupt index
        return str(path), 50, 60

    async with TransportServer(SECRET, resolve, in_memory=True) as srv:
        with pytest.raises(FetchFailedError, match="has 100 bytes") as info:
            await collect(pool.fetch_blocks(srv.address, 1, [(1, 0)]))
        assert info.value.map_id == 1
        with pytest.raises(FetchFailedError, match="invalid segment"):
            await collect(pool.fetch_blocks(srv.address, 1, [(2, 0)]))


async def test_file_shrinking_after_open_fails_the_chunk(tmp_path, pool):
    path = tmp_path / "shrinks"
    path.write_bytes(b"y" * 5000)
    async with TransportServer(SECRET, lambda s, m, r: (str(path), 0, 5000), in_memory=True,
                               chunk_size=1000) as srv:
        fetch = pool.fetch_blocks(srv.address, 1, [(0, 0)], max_bytes_in_flight=1000)
        assert await anext(fetch) == ((0, 0), b"y" * 1000)
        os.truncate(path, 1500)
        with pytest.raises(FetchFailedError, match="server reported: EOFError") as info:
            await collect(fetch)
        assert (info.value.shuffle_id, info.value.map_id) == (1, 0)


def fake_server(behaviour, secret=SECRET):
    """An in-memory listener that authenticates, then calls ``behaviour(proto, msg)``."""

    def factory():
        nonce = handshake.make_nonce()
        authenticated = []

        def on_message(msg):
            if authenticated:
                behaviour(proto, msg)
            else:
                authenticated.append(True)
                proto.send(BlockAuthConfirmation(handshake.prove(secret, msg.nonce, BLOCK_SERVER)))

        proto = FramedProtocol(on_message, None,
                               on_connect=lambda p: p.send(BlockAuthChallenge(nonce)))
        return proto

    return memory.listen(factory)


@pytest.mark.parametrize(("handle", "chunk", "match"), [
    ([10], ChunkFetchSuccess(1, 0, b"short"), "has 5 bytes, the stream handle said 10"),
    ([10], ChunkFetchFailure(1, 0, "disk on fire"), "server reported: disk on fire"),
    ([10], Heartbeat([]), "unexpected Heartbeat"),
    ([10, 10], None, "2 sizes for 1 blocks"),
    (None, None, "server reported: gone"),
], ids=["short-chunk", "chunk-failure", "unexpected", "sizes", "open-failure"])
async def test_client_rejects_bad_answers(pool, handle, chunk, match):
    def behaviour(proto, msg):
        if type(msg) is OpenBlocks:
            proto.send(OpenBlocksFailure(msg.request_id, 42, 42, "gone") if handle is None
                       else StreamHandle(msg.request_id, 1, 100, handle))
        elif type(msg) is ChunkFetchRequest:
            proto.send(chunk)

    address = fake_server(behaviour)
    try:
        with pytest.raises(FetchFailedError, match=match) as info:
            await collect(pool.fetch_blocks(address, 3, [(1, 2)]))
        # A block the server names that was not asked for is not blamed on it.
        assert (info.value.shuffle_id, info.value.map_id, info.value.reduce_id) == (3, 1, 2)
    finally:
        memory.unlisten(address)


async def test_client_side_argument_errors(pool):
    with pytest.raises(ValueError, match="max_bytes_in_flight"):
        await anext(pool.fetch_blocks(("127.0.0.1", 1), 1, [(0, 0)], max_bytes_in_flight=0))
    with pytest.raises(TypeError, match="not a block server address"):
        await anext(pool.fetch_blocks(42, 1, [(0, 0)]))
    with pytest.raises(ValueError, match="chunk_size"):
        TransportServer(SECRET, lambda *a: None, chunk_size=0)
    with pytest.raises(RuntimeError, match="start"):
        _ = TransportServer(SECRET, lambda *a: None).address


async def test_auth_failure_is_an_authentication_error(server):
    pool = TransportClientPool("not-the-secret", connect_timeout=2)
    try:
        with pytest.raises(AuthenticationError, match="secrets differ"):
            await pool.connect(server.address)
    finally:
        await pool.close()


# -- the thread bridge when its loop goes away -----------------------------------------


def test_blocking_bridge_fails_when_the_loop_stops(data_file):
    """A task thread waiting on a loop that stopped gets FetchFailedError, bounded."""
    path, content = data_file
    errors: list = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    def run_loop():
        loop.run_forever()

    def call(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(5)

    async def setup():
        srv = TransportServer(SECRET, segment_resolver(path, {(0, 0): (0, 30_000)}),
                              in_memory=True, chunk_size=10_000)
        await srv.start()
        return srv, TransportClientPool(SECRET, io_timeout=5)

    async def cleanup(srv, p):
        await p.close()
        await srv.close()
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    thread = threading.Thread(target=run_loop, name="transport-test-loop")
    thread.start()
    srv, p = call(setup())
    try:
        gen = fetch_blocks_blocking(loop, p, srv.address, 0, [(0, 0)], 10_000)
        assert next(gen) == ((0, 0), content[:10_000])
        loop.call_soon_threadsafe(loop.stop)
        thread.join(2)
        start = time.monotonic()
        with pytest.raises(FetchFailedError, match="event loop stopped") as info:
            next(gen)
        assert time.monotonic() - start < 2
        assert (info.value.shuffle_id, info.value.map_id) == (0, 0)
    finally:
        thread = threading.Thread(target=run_loop, name="transport-test-loop")
        thread.start()
        call(cleanup(srv, p))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(2)
        loop.close()
    assert not errors
