"""Fetching shuffle blocks from other executors' ``TransportServer``s.

``TransportClientPool`` keeps one authenticated connection per address, shared by every
fetch to that address (requests are told apart by id) and reused across fetches; a
connection that breaks is dropped and the next fetch opens a new one.

``pool.fetch_blocks(address, shuffle_id, blocks)`` is an async iterator of
``((map_id, reduce_id), data)``: each block's chunks in order, blocks in request order,
one ``b""`` item for an empty block. At most ``max_bytes_in_flight`` bytes are requested
from the server but not yet taken by the consumer; a chunk bigger than that is requested
alone. Every failure (refused or lost connection, bad secret, missing block, malformed
frame, timeout) raises ``FetchFailedError`` naming the address, the shuffle, the block
and, as ``__cause__`` or in the message, why.

``fetch_blocks_blocking(loop, pool, ...)`` (``bridge.py``, re-exported here) is the same
as a plain generator for a task thread, driving the fetch on the executor's event loop.

``pool.cached_block(address, block_id, level, data)`` fetches a cached RDD block or
uploads a replica; a replica bigger than a frame goes as ``UploadBlockChunk`` pieces.

The wire protocol is described in ``server.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from ..errors import (
    AuthenticationError,
    FetchFailedError,
    ProtocolError,
    RemoteProtocolError,
    TransportError,
)
from ..pending import PendingRequests
from . import handshake, memory
from .bridge import DEFAULT_MAX_BYTES_IN_FLIGHT, fetch_blocks_blocking
from .codec import DEFAULT_MAX_FRAME_SIZE, Message
from .guard import AUTH_FRAME_LIMIT
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
from .server import FRAME_HEADER_SLACK

__all__ = [
    "DEFAULT_MAX_BYTES_IN_FLIGHT",
    "TransportClient",
    "TransportClientPool",
    "create_connection",
    "fetch_blocks_blocking",
]

log: logging.Logger = logging.getLogger("asyncspark.transport")

_UPLOAD_HEADER_SLACK = 256  # more than an UploadBlockChunk header takes, but its block id

BlockId = tuple[int, int]


async def create_connection(address: Any, protocol_factory: Callable[[], Any],
                            ssl: Any = None) -> tuple[asyncio.BaseTransport, Any]:
    """Connect to ``address``: ``(host, port)`` over TCP, a ``str`` path over a Unix
    socket, or a ``MemoryAddress`` in memory. ``ssl`` (a client ``ssl.SSLContext``):
    TLS over TCP, the protocol connected once the TLS handshake is done (the server's
    certificate checked); Unix sockets and memory stay plaintext (local only)."""
    loop = asyncio.get_running_loop()
    if isinstance(address, memory.MemoryAddress):
        return await memory.open_connection(address, protocol_factory)
    if isinstance(address, str):
        return await loop.create_unix_connection(protocol_factory, address)
    host, port = address
    if ssl is not None:
        return await loop.create_connection(protocol_factory, host, port, ssl=ssl,
                                            server_hostname=host)
    return await loop.create_connection(protocol_factory, host, port)


def _address_key(address: Any) -> Any:
    if isinstance(address, (str, memory.MemoryAddress)):
        return address
    if isinstance(address, (tuple, list)) and len(address) == 2:
        return (address[0], address[1])
    raise TypeError(f"not a block server address: {address!r} "
                    f"(expected (host, port), a Unix socket path or a MemoryAddress)")


class TransportClient:
    """One authenticated connection to a ``TransportServer``, shared by many fetches.

    Request results come back as the result of a future, never as its exception: a
    response message, ``bytes`` for a chunk, or the exception that closed the connection.
    So an abandoned request can never log "exception was never retrieved".
    """

    def __init__(self, address: Any, secret: str, max_frame_size: int,
                 ssl: Any = None) -> None:
        self.address = address
        self.ssl = ssl
        self.secret = secret
        self.max_frame_size = max_frame_size
        self.proto = FramedProtocol(self._on_message, self._on_close, AUTH_FRAME_LIMIT,
                                    on_connect=self._on_connect)
        self.error: BaseException | None = None
        self._handshake = handshake.Handshake(secret, handshake.BLOCK_CLIENT,
                                              handshake.BLOCK_SERVER, challenger=False)
        self._lost = False  # the connection closed
        self._ready: asyncio.Future | None = None
        self._closed: asyncio.Future | None = None
        # OpenBlocks / FetchBlock / UploadBlock id -> waiter
        self._opens = PendingRequests()
        self._chunks: dict[tuple[int, int], tuple[asyncio.Future, int]] = {}
        self.on_close: Callable[[TransportClient], Any] | None = None

    @classmethod
    async def connect(cls, address: Any, secret: str, *,
                      max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                      connect_timeout: float = 30.0, ssl: Any = None) -> TransportClient:
        """Connect (over TLS with the client context ``ssl``) and authenticate within
        ``connect_timeout`` seconds.

        Raises ``AuthenticationError`` when the server does not accept our proof (the
        secrets differ) or cannot prove its own, ``TransportError`` when the connection
        fails (a TLS server whose certificate is not trusted, too) or times out.
        """
        client = cls(address, secret, max_frame_size, ssl)
        try:
            async with asyncio.timeout(connect_timeout):
                try:
                    await create_connection(address, lambda: client.proto, ssl)
                except OSError as exc:
                    raise TransportError(f"cannot connect to block server {address}: {exc}"
                                         ) from exc
                await client._ready  # type: ignore[misc]
        except TimeoutError as exc:
            client.abort(TransportError("timed out"))
            raise TransportError(f"connecting to block server {address} timed out after "
                                 f"{connect_timeout}s") from exc
        except BaseException:
            client.abort(TransportError("connect failed"))
            raise
        result = client._ready.result()  # type: ignore[union-attr]
        if isinstance(result, BaseException):
            raise result
        return client

    @property
    def alive(self) -> bool:
        """Authenticated, and neither closed nor closing."""
        transport = self.proto.transport
        return (self._handshake.proven and not self._lost and not self.proto.closed
                and transport is not None and not transport.is_closing())

    # -- connection events -------------------------------------------------------------

    def _on_connect(self, proto: FramedProtocol) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._closed = loop.create_future()

    def _on_message(self, msg: Message) -> None:
        if self._lost or not self._handshake.proven:
            self._handle_auth(msg)
        elif isinstance(msg, ChunkFetchSuccess):
            entry = self._chunks.pop((msg.stream_id, msg.chunk_index), None)
            if entry is None:
                return  # a chunk of an abandoned stream
            fut, expected = entry
            if len(msg.body) != expected:
                error = RemoteProtocolError(
                    f"chunk {msg.chunk_index} of stream {msg.stream_id} has "
                    f"{len(msg.body)} bytes, the stream handle said {expected}")
                fut.set_result(error)
                self.abort(error)
            elif not fut.done():
                fut.set_result(msg.body)
        elif isinstance(msg, ChunkFetchFailure):
            entry = self._chunks.pop((msg.stream_id, msg.chunk_index), None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(msg)
        elif isinstance(msg, (StreamHandle, OpenBlocksFailure, BlockReply)):
            if not self._opens.resolve(msg.request_id, msg) and isinstance(msg, StreamHandle):
                # Nobody waits for it any more (timed out, cancelled): free it.
                self._send(CloseStream(msg.stream_id))
        else:
            self.abort(RemoteProtocolError(
                f"block server {self.address} sent an unexpected {type(msg).__name__}"))

    def _handle_auth(self, msg: Message) -> None:
        hs = self._handshake
        if self._lost:
            return
        if hs.state == "start" and isinstance(msg, BlockAuthChallenge):
            self._send(BlockAuthResponse(hs.proof(msg.nonce), hs.nonce))
        elif hs.state == "answered" and isinstance(msg, BlockAuthConfirmation):
            if not hs.check(msg.mac):
                self.abort(AuthenticationError(
                    f"block server {self.address} did not prove it knows the secret"))
                return
            self.proto.codec.max_frame_size = self.max_frame_size
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        else:
            self.abort(AuthenticationError(
                f"block server {self.address} sent {type(msg).__name__} before "
                f"authenticating"))

    def _on_close(self, exc: BaseException | None) -> None:
        if self._handshake.state == "answered" and not isinstance(exc, (ProtocolError,
                                                                  TransportError)):
            error: BaseException = AuthenticationError(
                f"block server {self.address} closed the connection during "
                f"authentication: the secrets differ")
        elif isinstance(exc, (TransportError, ProtocolError)):
            error = exc
        elif exc is None:
            error = TransportError(f"block server {self.address} closed the connection")
        else:
            error = TransportError(f"connection to block server {self.address} lost: {exc}")
            error.__cause__ = exc
        self.error = error
        self._lost = True
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(error)
        self._opens.resolve_all(error)
        for fut, _ in self._chunks.values():
            if not fut.done():
                fut.set_result(error)
        self._chunks.clear()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self.on_close is not None:
            self.on_close(self)

    # -- requests ----------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        with contextlib.suppress(TransportError):
            self.proto.send(msg)

    def _check_alive(self) -> None:
        if not self.alive:
            raise TransportError(f"connection to block server {self.address} is closed"
                                 ) from self.error

    def open_blocks(self, shuffle_id: int, blocks: list[BlockId]) -> asyncio.Future[Any]:
        """Send ``OpenBlocks``; the future's result is a ``StreamHandle``, an
        ``OpenBlocksFailure`` or the exception that closed the connection."""
        self._check_alive()
        request_id = self._opens.next_id()
        fut = asyncio.get_running_loop().create_future()
        # Sent first: a block list too big for a frame raises here, leaving nothing behind.
        self.proto.send(OpenBlocks(request_id, shuffle_id, [list(b) for b in blocks]))
        self._opens.add(fut, request_id=request_id)
        return fut

    def cached_block_request(self, block_id: str, level: list[Any] | None = None,
                             data: bytes = b"") -> asyncio.Future[Any]:
        """Send ``FetchBlock`` (``level`` None) or ``UploadBlock``; the future's result
        is a ``BlockReply`` or the exception that closed the connection."""
        self._check_alive()
        request_id = self._opens.next_id()
        fut = asyncio.get_running_loop().create_future()
        self.proto.send(FetchBlock(request_id, block_id) if level is None else
                        UploadBlock(request_id, block_id, level, data))
        self._opens.add(fut, request_id=request_id)
        return fut

    async def upload_in_pieces(self, block_id: str, level: list[Any], data: Any,
                               piece_size: int) -> asyncio.Future[Any]:
        """Send a replica too big for one frame as ``UploadBlockChunk`` pieces of at most
        ``piece_size`` bytes, waiting for the transport to drain between them; the
        future's result is the server's one ``BlockReply`` (or the exception that closed
        the connection)."""
        self._check_alive()
        request_id = self._opens.next_id()
        fut = asyncio.get_running_loop().create_future()
        self._opens.add(fut, request_id=request_id)
        view = memoryview(data).cast("B")
        total = len(view)
        try:
            for offset in range(0, total, piece_size):
                self.proto.send(UploadBlockChunk(request_id, block_id, level, offset, total,
                                                 view[offset:offset + piece_size]))
                await self.proto.drain()
        except BaseException:
            self.forget_open(fut)
            raise
        return fut

    def request_chunks(self, stream_id: int, chunks: list[tuple[int, int]]
                       ) -> list[asyncio.Future[Any]]:
        """Send a ``ChunkFetchRequest`` per ``(chunk_index, expected_length)``, in one
        write; each future's result is ``bytes``, a ``ChunkFetchFailure`` or the exception
        that closed the connection."""
        self._check_alive()
        loop = asyncio.get_running_loop()
        futs = []
        for index, length in chunks:
            fut = loop.create_future()
            self._chunks[(stream_id, index)] = (fut, length)
            futs.append(fut)
        self.proto.send_many(ChunkFetchRequest(stream_id, i) for i, _ in chunks)
        return futs

    def forget_open(self, fut: asyncio.Future[Any]) -> None:
        self._opens.discard_future(fut)
        fut.cancel()

    def abandon_stream(self, stream_id: int, chunk_indices: Iterable[int]) -> None:
        """Stop waiting for these chunks and tell the server to free the stream."""
        for index in chunk_indices:
            entry = self._chunks.pop((stream_id, index), None)
            if entry is not None:
                entry[0].cancel()
        if self.alive:
            self._send(CloseStream(stream_id))

    def abort(self, exc: BaseException | None = None) -> None:
        self.proto.abort(exc)

    def close(self) -> None:
        self.proto.close()

    async def wait_closed(self, grace: float = 1.0) -> None:
        """Wait for the connection to be gone, aborting it after ``grace`` seconds."""
        if self._closed is None:
            return
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._closed)
        except TimeoutError:
            self.abort(TransportError("close timed out"))


class TransportClientPool:
    """Connections to block servers, one per address, reused across fetches.

    ``connect_timeout`` bounds connecting plus authenticating; ``io_timeout`` bounds every
    wait for a response (open, each chunk). A connection that timed out is dropped.
    ``ssl`` (a client ``ssl.SSLContext``): TLS on every TCP connection.
    """

    def __init__(self, secret: str, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 connect_timeout: float = 30.0, io_timeout: float = 120.0,
                 ssl: Any = None) -> None:
        if connect_timeout <= 0 or io_timeout <= 0:
            raise ValueError("connect_timeout and io_timeout must be positive")
        self.secret = secret
        self.ssl = ssl
        self.max_frame_size = max_frame_size
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self._clients: dict[Any, TransportClient] = {}
        self._locks: dict[Any, asyncio.Lock] = {}
        self._closed = False

    async def connect(self, address: Any) -> TransportClient:
        """The pooled connection to ``address``, opened (and authenticated) if needed.

        Raises ``AuthenticationError`` or ``TransportError`` as ``TransportClient.connect``.
        """
        key = _address_key(address)
        client = self._clients.get(key)
        if client is not None and client.alive:
            return client
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if self._closed:
                raise TransportError("the block transport client pool is closed")
            client = self._clients.get(key)
            if client is not None and client.alive:
                return client
            client = await TransportClient.connect(
                key, self.secret, max_frame_size=self.max_frame_size,
                connect_timeout=self.connect_timeout, ssl=self.ssl)
            if self._closed:
                client.abort(TransportError("pool closed"))
                raise TransportError("the block transport client pool is closed")
            if not client.alive:  # closed between authentication and now
                raise TransportError(f"connection to {key} closed") from client.error
            client.on_close = self._forget
            self._clients[key] = client
            return client

    def _forget(self, client: TransportClient) -> None:
        if self._clients.get(client.address) is client:
            del self._clients[client.address]

    async def close(self) -> None:
        """Close every connection; fetches in flight fail with ``FetchFailedError``."""
        self._closed = True
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            client.close()
        for client in clients:
            await client.wait_closed()

    async def __aenter__(self) -> TransportClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def cached_block(self, address: Any, block_id: str, level: list[Any] | None = None,
                           data: bytes = b"") -> bytes | None:
        """Fetch a cached RDD block from the block server at ``address`` (``level``
        None): its bytes, or None when the server does not have it. Or upload a replica
        (``level`` given): ``b""`` once stored. Raises ``TransportError`` when the server
        cannot be reached or the upload failed."""
        client = await self.connect(address)
        piece = max(1, self.max_frame_size - _UPLOAD_HEADER_SLACK - len(block_id.encode()))
        fut = None
        try:
            async with asyncio.timeout(self.io_timeout):
                if level is not None and len(data) > piece:  # streamed in pieces
                    fut = await client.upload_in_pieces(block_id, level, data, piece)
                else:
                    fut = client.cached_block_request(block_id, level, data)
                reply = await fut
        except TimeoutError:
            if fut is not None:
                client.forget_open(fut)
            client.abort(TransportError("timed out"))
            raise TransportError(f"block server {address} did not answer for block "
                                 f"{block_id} within {self.io_timeout}s") from None
        if isinstance(reply, BaseException):
            raise TransportError(f"cannot reach block server {address} for block "
                                 f"{block_id}: {reply}") from reply
        if reply.error is not None:
            if level is None and reply.error.startswith("not found"):
                return None
            raise TransportError(f"block server {address} refused block {block_id}: "
                                 f"{reply.error}")
        return reply.body

    async def fetch_blocks(self, address: Any, shuffle_id: int, blocks: Iterable[BlockId],
                           max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT
                           ) -> AsyncIterator[tuple[BlockId, bytes]]:
        """Stream ``((map_id, reduce_id), data)`` for ``blocks`` of ``shuffle_id`` from the
        block server at ``address``; see the module docstring."""
        if max_bytes_in_flight < 1:
            raise ValueError(f"max_bytes_in_flight must be positive, got {max_bytes_in_flight}")
        address = _address_key(address)
        shuffle_id = operator.index(shuffle_id)
        wanted = [(operator.index(m), operator.index(r)) for m, r in blocks]
        if not wanted:
            return

        def failed(block: BlockId, why: Any) -> FetchFailedError:
            return FetchFailedError(
                f"cannot fetch shuffle {shuffle_id} block (map {block[0]}, reduce "
                f"{block[1]}) from {address}: {why}",
                shuffle_id, block[0], block[1], address)

        client = None
        try:
            client = await self.connect(address)
            fut = client.open_blocks(shuffle_id, wanted)
            try:
                async with asyncio.timeout(self.io_timeout):
                    handle = await fut
            finally:
                if not fut.done():
                    client.forget_open(fut)
        except TimeoutError as exc:
            if client is not None:
                client.abort(TransportError("timed out"))
            raise failed(wanted[0], f"no stream handle within {self.io_timeout}s") from exc
        except (OSError, ProtocolError) as exc:  # TransportError is an OSError
            raise failed(wanted[0], exc) from exc
        if isinstance(handle, BaseException):
            raise failed(wanted[0], handle) from handle
        if type(handle) is OpenBlocksFailure:
            named = (handle.map_id, handle.reduce_id)
            raise failed(named if named in wanted else wanted[0],
                         f"server reported: {handle.error}")
        try:
            plan = _chunk_plan(wanted, handle, self.max_frame_size)
        except RemoteProtocolError as exc:
            client.abort(exc)
            raise failed(wanted[0], exc) from exc

        stream_id = handle.stream_id
        # plan[i] = (block, chunk_index or -1 for an empty block, length)
        futs: dict[int, asyncio.Future] = {}
        in_flight = 0  # bytes requested and not yet taken by the consumer
        next_request = 0
        done = False
        try:
            for block, index, length in plan:
                if next_request < len(plan):
                    batch = []
                    while next_request < len(plan):
                        _, j, size = plan[next_request]
                        if j >= 0:
                            if in_flight and in_flight + size > max_bytes_in_flight:
                                break
                            batch.append((j, size))
                            in_flight += size
                        next_request += 1
                    if batch:
                        try:
                            got = client.request_chunks(stream_id, batch)
                        except (OSError, ProtocolError) as exc:
                            raise failed(block, exc) from exc
                        futs.update(zip((j for j, _ in batch), got, strict=True))
                if index < 0:
                    yield block, b""
                    continue
                fut = futs[index]
                try:
                    async with asyncio.timeout(self.io_timeout):
                        data = await fut
                except TimeoutError as exc:
                    client.abort(TransportError("timed out"))
                    raise failed(block, f"no response within {self.io_timeout}s") from exc
                del futs[index]
                if isinstance(data, BaseException):
                    raise failed(block, data) from data
                if type(data) is ChunkFetchFailure:
                    raise failed(block, f"server reported: {data.error}")
                yield block, data
                in_flight -= length
            done = True
        finally:
            if not done:
                client.abandon_stream(stream_id, list(futs))


def _chunk_plan(blocks: list[BlockId], handle: StreamHandle, max_frame_size: int
                ) -> list[tuple[BlockId, int, int]]:
    """``(block, chunk_index, length)`` in stream order; index -1 for an empty block."""
    sizes, chunk_size = handle.sizes, handle.chunk_size
    if len(sizes) != len(blocks):
        raise RemoteProtocolError(
            f"stream handle lists {len(sizes)} sizes for {len(blocks)} blocks")
    if not all(type(s) is int and s >= 0 for s in sizes):
        raise RemoteProtocolError("stream handle has a size that is not a natural number")
    if chunk_size < 1 or chunk_size + FRAME_HEADER_SLACK > max_frame_size:
        raise RemoteProtocolError(
            f"server chunks of {chunk_size} bytes do not fit in frames of "
            f"{max_frame_size} bytes (asyncspark.rpc.maxFrameSize)")
    plan = []
    index = 0
    for block, size in zip(blocks, sizes, strict=True):
        if not size:
            plan.append((block, -1, 0))
        for start in range(0, size, chunk_size):
            plan.append((block, index, min(chunk_size, size - start)))
            index += 1
    return plan
