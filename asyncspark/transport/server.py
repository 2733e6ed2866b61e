"""The shuffle block server every executor runs: it streams file segments to reducers.

One connection, in order:

1. Authentication, both ways, before anything else is read: the server sends
   ``BlockAuthChallenge(nonce)``; the client answers ``BlockAuthResponse(mac, nonce)``
   with HMAC(secret, role ``block-client`` + nonce) and a nonce of its own; the server
   checks it and answers ``BlockAuthConfirmation(mac)`` (role ``block-server``; see
   ``transport/handshake.py``). A wrong
   MAC, any other message first, a frame over 4 KiB, or no answer within ``auth_timeout``
   closes the connection; at most ``max_unauthenticated`` connections wait for their
   answer at once (``transport/guard.py``).
2. ``OpenBlocks(request_id, shuffle_id, blocks)``: the server resolves every block with
   ``resolve(shuffle_id, map_id, reduce_id) -> (path, offset, length)`` in a worker thread
   (it may read index files), checks the data files are long enough, and answers
   ``StreamHandle(request_id, stream_id, chunk_size, sizes)`` or
   ``OpenBlocksFailure(request_id, map_id, reduce_id, error)`` naming the first block that
   cannot be served (``resolve`` raised, e.g. ``KeyError``/``FileNotFoundError``).
3. ``ChunkFetchRequest(stream_id, chunk_index)`` -> ``ChunkFetchSuccess`` (the segment as
   the raw body) or ``ChunkFetchFailure``. Block ``i`` is cut into chunks of at most
   ``chunk_size`` bytes (``ceil(size / chunk_size)`` chunks, none for an empty block);
   chunk indices count them across the stream in block order. A stream is freed when each
   of its chunks was sent once, on ``CloseStream``, or when its connection closes.

4. Cached RDD blocks (``blocks``, a ``storage.BlockManager``): ``FetchBlock`` and
   ``UploadBlock`` (a replica) are answered with ``BlockReply``; a replica too big for one
   frame arrives as ``UploadBlockChunk`` pieces, in order, and is stored once complete.

Responses leave through one writer per connection, in request order, respecting flow
control. A chunk goes out as the frame's prefix and header followed by
``loop.sendfile(transport, file, offset, length)`` where the loop can do that natively
(asyncio's selector loop on TCP and Unix sockets: no copy through Python); elsewhere
(uvloop has no ``loop.sendfile``, the in-memory transport, TLS) the segment is read with
``os.pread`` in a worker thread and written. File reads never run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import stat
from collections.abc import Callable
from typing import Any

from ..errors import TransportError
from . import handshake, memory
from .codec import DEFAULT_MAX_FRAME_SIZE, Message
from .guard import DEFAULT_AUTH_TIMEOUT, DEFAULT_MAX_PENDING, AuthGuard
from .messages.blocks import (
    BlockAuthChallenge,
    BlockAuthConfirmation,
    BlockAuthResponse,
    BlockReply,
    ChunkFetchFailure,
    ChunkFetchRequest,
    ChunkFetchSuccess,
    CloseStream,
    FetchBlock,
    OpenBlocks,
    OpenBlocksFailure,
    StreamHandle,
    UploadBlock,
    UploadBlockChunk,
)
from .protocol import FramedProtocol

__all__ = ["DEFAULT_CHUNK_SIZE", "Resolver", "ServerStats", "TransportServer"]

log: logging.Logger = logging.getLogger("asyncspark.transport")

DEFAULT_CHUNK_SIZE = 4 << 20
FRAME_HEADER_SLACK = 64  # more than a ChunkFetchSuccess header can take

MAX_UPLOAD_SIZE = 1 << 36  # a replica uploaded in pieces; the bytes arrive before use
_CLOSE_BOUND_S = 2.0  # close() waits this long at most for connections to unwind

Resolver = Callable[[int, int, int], tuple[Any, int, int]]


@dataclasses.dataclass
class ServerStats:
    """Counters of a ``TransportServer`` since it started (for metrics and tests)."""

    open_connections: int = 0
    streams_opened: int = 0
    open_failures: int = 0
    chunks_requested: int = 0
    bytes_requested: int = 0  # sizes of the chunks asked for, counted on receipt
    chunks_sent: int = 0
    bytes_sent: int = 0
    sendfile_chunks: int = 0  # of chunks_sent, written with loop.sendfile


@dataclasses.dataclass(slots=True)
class _Stream:
    shuffle_id: int
    # Per chunk: (path, file offset, length, map_id, reduce_id)
    chunks: list[tuple[Any, int, int, int, int]]
    unsent: set[int]


class _BlockUnavailable(Exception):
    def __init__(self, map_id: int, reduce_id: int, reason: str) -> None:
        super().__init__(reason)
        self.map_id = map_id
        self.reduce_id = reduce_id


class TransportServer:
    """Serves shuffle blocks over TCP (``host``/``port``), a Unix socket (``path``) or, for
    tests, an in-memory listener (``in_memory=True``).

    ``resolve(shuffle_id, map_id, reduce_id) -> (path, offset, length)`` locates a block in
    a data file and raises ``KeyError``/``FileNotFoundError`` (or anything) when it cannot;
    it runs in a worker thread. Blocks bigger than ``chunk_size`` are sent in pieces;
    ``chunk_size`` is capped so a chunk fits in a frame of ``max_frame_size`` bytes.
    ``io_timeout`` (``spark.network.timeout``) bounds every write to a slow reader, past
    it the connection is dropped; ``auth_timeout`` (``asyncspark.network.authTimeout``;
    default: 10 s or ``io_timeout`` if shorter) bounds authentication, and at most
    ``max_unauthenticated`` connections may be waiting for it. ``ssl`` (a server-side
    ``ssl.SSLContext``): TLS on every TCP connection, before the handshake (``guard.py``).
    """

    def __init__(self, secret: str, resolve: Resolver, host: str = "127.0.0.1",
                 port: int = 0, path: str | None = None, *,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, io_timeout: float = 120.0,
                 auth_timeout: float | None = None,
                 max_unauthenticated: int = DEFAULT_MAX_PENDING,
                 in_memory: bool = False, blocks: Any = None,
                 name: str = "block server", ssl: Any = None) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if max_frame_size <= FRAME_HEADER_SLACK:
            raise ValueError(f"max_frame_size of {max_frame_size} bytes is too small")
        if io_timeout <= 0:
            raise ValueError(f"io_timeout must be positive, got {io_timeout}")
        if ssl is not None and (path is not None or in_memory):
            raise ValueError("TLS (ssl=) is for TCP servers: Unix sockets and the in-memory "
                             "transport never leave the host")
        self.secret = secret
        self.resolve = resolve
        self.host = host
        self.port = port
        self.path = path
        self.in_memory = in_memory
        self.max_frame_size = max_frame_size
        self.chunk_size: int = min(chunk_size, max_frame_size - FRAME_HEADER_SLACK)
        self.io_timeout = io_timeout
        self.guard: AuthGuard = AuthGuard(
            name, timeout=min(DEFAULT_AUTH_TIMEOUT, io_timeout) if auth_timeout is None
            else auth_timeout, max_pending=max_unauthenticated, max_frame_size=max_frame_size,
            ssl=ssl)
        # Cached RDD blocks (storage.BlockManager): get_block_bytes(block_id) -> bytes or
        # None, put_block_bytes(block_id, level, data); called in worker threads.
        self.blocks = blocks
        self.stats: ServerStats = ServerStats()
        self._server: asyncio.AbstractServer | None = None
        self._address: Any = None
        self._connections: set[_Connection] = set()
        self._stream_ids = itertools.count(1)
        self._closed = False

    @property
    def ssl(self) -> Any:
        """The server ``ssl.SSLContext`` of its connections (TLS on), or None."""
        return self.guard.ssl

    @property
    def address(self) -> Any:
        """``(host, port)`` for TCP, the socket path for Unix, a ``MemoryAddress``."""
        if self._address is None:
            raise RuntimeError("TransportServer.start() has not been awaited")
        return self._address

    async def start(self) -> None:
        if self._address is not None or self._closed:
            raise RuntimeError("TransportServer can be started once")
        loop = asyncio.get_running_loop()
        if self.in_memory:
            self._address = memory.listen(self._new_connection)
        elif self.path is not None:
            self._server = await loop.create_unix_server(self._new_connection, self.path)
            self._address = self.path
        else:
            self._server = await loop.create_server(self._new_connection, self.host,
                                                    self.port)
            self._address = tuple(self._server.sockets[0].getsockname()[:2])
        log.debug("block transport server listening at %s", self._address)

    async def close(self) -> None:
        """Stop listening and drop every connection (fetches in flight fail)."""
        if self._closed:
            return
        self._closed = True
        if self.in_memory and self._address is not None:
            memory.unlisten(self._address)
        if self._server is not None:
            self._server.close()
        conns = list(self._connections)
        self.guard.abort_all("block transport server closed")
        for conn in conns:
            conn.proto.abort(TransportError("block transport server closed"))
        # Bounded: every connection was aborted above, so both finish at once unless a
        # worker thread (a file read) is slow to return.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_BOUND_S):
                for conn in conns:
                    await conn.wait_closed()
                if self._server is not None:
                    await self._server.wait_closed()
        self._server = None
        if self.path is not None and self._address is not None:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.stat(self.path).st_mode):
                    os.unlink(self.path)

    async def __aenter__(self) -> TransportServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _new_connection(self) -> FramedProtocol:
        conn = _Connection(self)
        return conn.proto

    def _resolve_blocks(self, shuffle_id: int, blocks: list) -> list:
        """Worker thread: every block's segment, or ``_BlockUnavailable`` for the first
        one that cannot be served."""
        segments = []
        file_sizes: dict[Any, int] = {}
        for map_id, reduce_id in blocks:
            try:
                where = self.resolve(shuffle_id, map_id, reduce_id)
                path, offset, length = where
                if not (isinstance(offset, int) and isinstance(length, int)
                        and offset >= 0 and length >= 0):
                    raise ValueError(f"resolve() returned an invalid segment {where!r}")
                if length:
                    size = file_sizes.get(path)
                    if size is None:
                        size = file_sizes[path] = os.stat(path).st_size
                    if offset + length > size:
                        raise ValueError(
                            f"data file {os.fspath(path)!r} has {size} bytes, the block "
                            f"needs bytes {offset}..{offset + length}")
            except Exception as exc:
                raise _BlockUnavailable(map_id, reduce_id,
                                        f"{type(exc).__name__}: {exc}") from exc
            segments.append((path, offset, length))
        return segments


class _Connection:
    """One client connection: authentication, its streams, and its writer."""

    def __init__(self, server: TransportServer) -> None:
        self.server = server
        self.proto = FramedProtocol(self._on_message, self._on_close, server.max_frame_size,
                                    on_connect=self._on_connect)
        self.handshake = handshake.Handshake(server.secret, handshake.BLOCK_SERVER,
                                             handshake.BLOCK_CLIENT, challenger=True)
        self.streams: dict[int, _Stream] = {}
        # UploadBlockChunk request id -> (block id, bytes so far)
        self.uploads: dict[int, tuple[str, bytearray]] = {}
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()
        self._writer: asyncio.Task | None = None
        self._closed: asyncio.Future | None = None
        # None: not tried yet; False after the loop or transport refused once.
        self._native_sendfile: bool | None = None

    # -- connection life ---------------------------------------------------------------

    def _on_connect(self, proto: FramedProtocol) -> None:
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        server = self.server
        if server._closed:
            proto.abort(TransportError("block transport server closed"))
            return
        if not server.guard.admit(proto):
            return
        server._connections.add(self)
        server.stats.open_connections += 1
        if (type(loop).sendfile is asyncio.AbstractEventLoop.sendfile  # uvloop
                or isinstance(proto.transport, memory.MemoryTransport)
                or server.ssl is not None):  # TLS: the bytes go through OpenSSL
            self._native_sendfile = False
        self._writer = loop.create_task(self._write_loop())
        server.guard.secure(proto, self._challenge)  # TLS first when on

    def _challenge(self, proto: FramedProtocol) -> None:
        proto.send(BlockAuthChallenge(self.handshake.nonce))

    def _on_close(self, exc: BaseException | None) -> None:
        server = self.server
        if self in server._connections:
            server._connections.discard(self)
            server.stats.open_connections -= 1
        self.streams.clear()
        self.uploads.clear()
        if self._writer is not None:
            self._writer.cancel()
        for task in self._tasks:
            task.cancel()
        if exc is not None:
            log.debug("block connection from %s closed: %r", self.proto.peer, exc)
        pending = [t for t in (self._writer, *self._tasks) if t is not None]
        if self._closed is not None and not self._closed.done():
            if pending:
                # Done once the tasks have unwound, so close() leaves nothing running.
                gather = asyncio.gather(*pending, return_exceptions=True)
                gather.add_done_callback(lambda _: self._set_closed())
            else:
                self._set_closed()

    def _set_closed(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)

    # -- messages ----------------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        if not self.handshake.proven:
            self._handle_auth_response(msg)
        elif type(msg) is ChunkFetchRequest:
            self._handle_chunk_fetch_request(msg)
        elif type(msg) is OpenBlocks:
            self._handle_open_blocks(msg)
        elif type(msg) is CloseStream:
            self.streams.pop(msg.stream_id, None)
        elif type(msg) is FetchBlock or type(msg) is UploadBlock:
            self._start_cached_block(msg)
        elif type(msg) is UploadBlockChunk:
            self._handle_upload_chunk(msg)
        else:
            log.warning("closing block connection from %s: unexpected %s",
                        self.proto.peer, type(msg).__name__)
            self.proto.abort(TransportError(f"unexpected {type(msg).__name__}"))

    def _handle_auth_response(self, msg: Message) -> None:
        guard = self.server.guard
        if type(msg) is not BlockAuthResponse:
            guard.refuse(self.proto, "wrong first message",
                         f"{type(msg).__name__} instead of BlockAuthResponse")
            return
        if not self.handshake.check(msg.mac):
            guard.refuse(self.proto, "bad HMAC", "the block client failed authentication")
            return
        guard.authenticated(self.proto)
        self._queue.put_nowait(BlockAuthConfirmation(self.handshake.proof(msg.nonce)))

    def _handle_open_blocks(self, msg: OpenBlocks) -> None:
        blocks = msg.blocks
        if not all(isinstance(b, list) and len(b) == 2 and type(b[0]) is int
                   and type(b[1]) is int for b in blocks):
            self.server.stats.open_failures += 1
            self._queue.put_nowait(OpenBlocksFailure(
                msg.request_id, -1, -1, "blocks must be [map_id, reduce_id] integer pairs"))
            return
        task = asyncio.get_running_loop().create_task(self._open_stream(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_stream(self, msg: OpenBlocks) -> None:
        server = self.server
        try:
            segments = await asyncio.to_thread(server._resolve_blocks, msg.shuffle_id,
                                               msg.blocks)
        except _BlockUnavailable as exc:
            server.stats.open_failures += 1
            log.info("cannot serve shuffle %d block (map %d, reduce %d) to %s: %s",
                     msg.shuffle_id, exc.map_id, exc.reduce_id, self.proto.peer, exc)
            self._queue.put_nowait(OpenBlocksFailure(msg.request_id, exc.map_id,
                                                     exc.reduce_id, str(exc)))
            return
        chunk_size = server.chunk_size
        chunks = [
            (path, offset + start, min(chunk_size, length - start), map_id, reduce_id)
            for (map_id, reduce_id), (path, offset, length) in zip(msg.blocks, segments,
                                                                   strict=True)
            for start in range(0, length, chunk_size)
        ]
        stream_id = next(server._stream_ids)
        if chunks:
            self.streams[stream_id] = _Stream(msg.shuffle_id, chunks, set(range(len(chunks))))
        server.stats.streams_opened += 1
        self._queue.put_nowait(StreamHandle(msg.request_id, stream_id, chunk_size,
                                            [seg[2] for seg in segments]))

    def _start_cached_block(self, msg: FetchBlock | UploadBlock) -> None:
        task = asyncio.get_running_loop().create_task(self._serve_cached_block(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _handle_upload_chunk(self, msg: UploadBlockChunk) -> None:
        """Collect the pieces of a replica too big for a frame, in order; store it (as an
        ``UploadBlock``) once complete. A piece out of order fails that upload."""
        uploads = self.uploads
        entry = uploads.get(msg.request_id)
        if entry is None:
            if msg.offset != 0 or not 0 < msg.total <= MAX_UPLOAD_SIZE:
                self._queue.put_nowait(BlockReply(
                    msg.request_id, f"bad upload of {msg.block_id}: piece at {msg.offset} "
                    f"of {msg.total} bytes first", b""))
                return
            entry = uploads[msg.request_id] = (msg.block_id, bytearray())
        block_id, data = entry
        if (msg.block_id != block_id or msg.offset != len(data)
                or len(data) + len(msg.body) > msg.total):
            del uploads[msg.request_id]
            self._queue.put_nowait(BlockReply(
                msg.request_id, f"bad upload of {block_id}: piece at {msg.offset} "
                f"({len(msg.body)} bytes) after {len(data)} of {msg.total} bytes", b""))
            return
        data += msg.body
        if len(data) == msg.total:
            del uploads[msg.request_id]
            self._start_cached_block(UploadBlock(msg.request_id, block_id, msg.level,
                                                 data))  # type: ignore[arg-type]

    async def _serve_cached_block(self, msg: FetchBlock | UploadBlock) -> None:
        """Read (``FetchBlock``) or store (``UploadBlock``) a cached RDD block, in a
        worker thread; answer ``BlockReply``."""
        blocks = self.server.blocks
        if blocks is None:
            self._queue.put_nowait(BlockReply(msg.request_id, "this server has no block store",
                                              b""))
            return
        try:
            if type(msg) is FetchBlock:
                data = await asyncio.to_thread(blocks.get_block_bytes, msg.block_id)
                reply = (BlockReply(msg.request_id, None, data) if data is not None else
                         BlockReply(msg.request_id, f"not found: {msg.block_id}", b""))
            else:
                await asyncio.to_thread(blocks.put_block_bytes, msg.block_id, msg.level,
                                        msg.body)
                reply = BlockReply(msg.request_id, None, b"")
        except Exception as exc:
            log.warning("cannot serve cached block %s to %s: %r", msg.block_id,
                        self.proto.peer, exc)
            reply = BlockReply(msg.request_id, f"{type(exc).__name__}: {exc}", b"")
        self._queue.put_nowait(reply)

    def _handle_chunk_fetch_request(self, msg: ChunkFetchRequest) -> None:
        stream = self.streams.get(msg.stream_id)
        if stream is not None and 0 <= msg.chunk_index < len(stream.chunks):
            stats = self.server.stats
            stats.chunks_requested += 1
            stats.bytes_requested += stream.chunks[msg.chunk_index][2]
        self._queue.put_nowait(msg)

    # -- writing -----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        proto = self.proto
        timeout = self.server.io_timeout
        try:
            while True:
                item = await self._queue.get()
                async with asyncio.timeout(timeout):
                    if type(item) is ChunkFetchRequest:
                        await self._send_chunk(item.stream_id, item.chunk_index)
                    else:
                        proto.send(item)
                    await proto.drain()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("block client %s stopped reading for %.1fs; dropping it",
                        proto.peer, timeout)
            proto.abort(TransportError("write timed out"))
        except Exception as exc:
            if not proto.closed:
                log.warning("dropping block connection from %s: %r", proto.peer, exc)
            proto.abort(exc)

    async def _send_chunk(self, stream_id: int, index: int) -> None:
        stream = self.streams.get(stream_id)
        proto = self.proto
        if stream is None or not 0 <= index < len(stream.chunks):
            proto.send(ChunkFetchFailure(
                stream_id, index, f"no chunk {index} in stream {stream_id} on this connection"))
            return
        path, offset, length, map_id, reduce_id = stream.chunks[index]
        file = data = None
        try:
            if self._native_sendfile is not False:
                file = await _open_in_thread(path, offset, length)
            else:
                data = await asyncio.to_thread(_read_segment, path, offset, length)
        except (OSError, EOFError) as exc:
            log.warning("cannot read shuffle %d block (map %d, reduce %d) from %s: %r",
                        stream.shuffle_id, map_id, reduce_id, os.fspath(path), exc)
            proto.send(ChunkFetchFailure(stream_id, index, f"{type(exc).__name__}: {exc}"))
            return
        if file is not None:
            try:
                await self._sendfile_chunk(stream_id, index, file, offset, length)
            finally:
                file.close()
        else:
            proto.send(ChunkFetchSuccess(stream_id, index, data))  # type: ignore[arg-type]
        stats = self.server.stats
        stats.chunks_sent += 1
        stats.bytes_sent += length
        stream.unsent.discard(index)
        if not stream.unsent:
            self.streams.pop(stream_id, None)

    async def _sendfile_chunk(self, stream_id: int, index: int, file, offset: int,
                              length: int) -> None:
        """Frame prefix and header, then the body with ``loop.sendfile``; where the loop or
        transport cannot do that (nothing of the body is sent then), the body is read in a
        worker thread and written, and this connection reads in a thread from then on.
        Errors here leave a partial frame behind: the caller drops the connection."""
        proto = self.proto
        transport = proto.transport
        if proto.closed or transport is None:
            raise TransportError(f"connection to {proto.peer} is closed")
        loop = asyncio.get_running_loop()
        transport.write(proto.codec.send_header(ChunkFetchSuccess(stream_id, index, b""),
                                                length))
        try:
            sent = await loop.sendfile(transport, file, offset, length, fallback=False)
        except RuntimeError as exc:  # NotImplementedError and SendfileNotAvailableError too
            if self._native_sendfile or proto.closed or transport.is_closing():
                raise TransportError(f"sendfile to {proto.peer} failed: {exc}") from exc
            log.debug("no native sendfile on %s for %s: %s; reading in a thread",
                      type(loop).__name__, type(transport).__name__, exc)
            self._native_sendfile = False
            transport.write(await asyncio.to_thread(_pread_exact, file.fileno(), offset,
                                                    length, file.name))
            return
        if sent != length:
            raise TransportError(f"sendfile sent {sent} of {length} bytes (file truncated?)")
        self._native_sendfile = True
        self.server.stats.sendfile_chunks += 1


def _read_segment(path: Any, offset: int, length: int) -> bytes:
    """Worker thread: ``length`` bytes at ``offset`` of ``path``, all of them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _pread_exact(fd, offset, length, path)
    finally:
        os.close(fd)


def _pread_exact(fd: int, offset: int, length: int, name: Any) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise EOFError(f"{os.fspath(name)!r} ends before byte {offset + length}")
        data += more
    return data


def _open_checked(path: Any, offset: int, length: int):
    """Worker thread: the file open for reading, checked to hold the segment."""
    file = open(path, "rb")  # closed by the caller
    try:
        size = os.fstat(file.fileno()).st_size
        if offset + length > size:
            raise EOFError(f"{os.fspath(path)!r} has {size} bytes, the chunk needs "
                           f"bytes {offset}..{offset + length}")
    except BaseException:
        file.close()
        raise
    return file


async def _open_in_thread(path: Any, offset: int, length: int):
    """``_open_checked`` in a worker thread; a file opened after we were cancelled is
    closed rather than leaked."""
    task = asyncio.ensure_future(asyncio.to_thread(_open_checked, path, offset, length))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_close_result)
        raise


def _close_result(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()
