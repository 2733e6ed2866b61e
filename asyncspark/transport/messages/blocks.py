"""Block messages: the shuffle block transport between a reducer's client and an
executor's ``TransportServer`` (with its authentication), and cached blocks: the block
manager master's messages on the control connection and block fetch/upload on the block
server. Codes 20-29 and 40-48.
"""

from __future__ import annotations

from ..codec import Message, message

__all__ = [
    "BlockAuthChallenge",
    "BlockAuthConfirmation",
    "BlockAuthResponse",
    "BlockLocations",
    "BlockQuery",
    "BlockReply",
    "BlockUpdates",
    "ChunkFetchFailure",
    "ChunkFetchRequest",
    "ChunkFetchSuccess",
    "CloseStream",
    "FetchBlock",
    "OpenBlocks",
    "OpenBlocksFailure",
    "RddRemoved",
    "RegisterBlockManager",
    "RemoveRdd",
    "StreamHandle",
    "UploadBlock",
]


# --- shuffle block transport: reducer (client) <-> executor TransportServer ----------
#
# Authentication comes first, both ways: BlockAuthChallenge -> BlockAuthResponse ->
# BlockAuthConfirmation. Then OpenBlocks -> StreamHandle (or OpenBlocksFailure), and
# ChunkFetchRequest -> ChunkFetchSuccess / ChunkFetchFailure. Block ``i`` of a stream is cut
# into ``ceil(sizes[i] / chunk_size)`` chunks (none for an empty block); chunk indices
# count those pieces across the stream in block order.


@message(20)
class BlockAuthChallenge(Message):
    """Server -> client on connect: prove you know the application secret."""

    nonce: bytes


@message(21)
class BlockAuthResponse(Message):
    """Client -> server: HMAC of the server's nonce (role ``block-client``), and a nonce."""

    mac: bytes
    nonce: bytes


@message(22)
class BlockAuthConfirmation(Message):
    """Server -> client: HMAC of the client's nonce (role ``block-server``)."""

    mac: bytes


@message(23)
class OpenBlocks(Message):
    """Client -> server: open a stream over ``blocks``, each ``[map_id, reduce_id]``."""

    request_id: int
    shuffle_id: int
    blocks: list


@message(24)
class StreamHandle(Message):
    """Server -> client: the stream for an ``OpenBlocks``; ``sizes`` are the blocks' byte
    lengths in request order, cut into chunks of at most ``chunk_size`` bytes."""

    request_id: int
    stream_id: int
    chunk_size: int
    sizes: list


@message(25)
class OpenBlocksFailure(Message):
    """Server -> client: an ``OpenBlocks`` failed, naming the block (``-1`` if none)."""

    request_id: int
    map_id: int
    reduce_id: int
    error: str


@message(26)
class ChunkFetchRequest(Message):
    """Client -> server: send chunk ``chunk_index`` of stream ``stream_id``."""

    stream_id: int
    chunk_index: int


@message(27)
class ChunkFetchSuccess(Message):
    """Server -> client: one chunk's bytes (often written with ``sendfile``)."""

    stream_id: int
    chunk_index: int
    body: bytes


@message(28)
class ChunkFetchFailure(Message):
    """Server -> client: a chunk could not be read."""

    stream_id: int
    chunk_index: int
    error: str


@message(29)
class CloseStream(Message):
    """Client -> server: the client abandoned the stream; free it."""

    stream_id: int


# --- cached blocks (storage/) -------------------------------------------------------
#
# Control connection: an executor registers its block server's port, reports where
# blocks went (``BlockUpdates``) and asks where a block is (``BlockQuery`` ->
# ``BlockLocations``); the driver asks it to drop an unpersisted RDD's blocks.
# Block server connection (after the same authentication as shuffle fetches):
# ``FetchBlock`` / ``UploadBlock`` -> ``BlockReply``.


@message(40)
class RegisterBlockManager(Message):
    """Executor -> driver: its block server listens on ``port``."""

    port: int


@message(41)
class BlockUpdates(Message):
    """Executor -> driver: ``updates`` ``[block_id, executor_id, where, size]`` (``where``
    ``memory``/``disk``/``offheap``, or ``""`` when the block left that executor), then
    the computation leases it gives up (``released`` block ids)."""

    updates: list
    released: list


@message(42)
class BlockQuery(Message):
    """Executor -> driver: where is ``block_id``? With ``lease``, ask to compute it
    when nobody has it (the answer waits while another executor computes it)."""

    request_id: int
    block_id: str
    lease: bool


@message(43)
class BlockLocations(Message):
    """Driver -> executor: the answer to a ``BlockQuery``: ``locations`` and ``peers``
    (other live executors, replica targets), each ``[executor_id, host, port]``."""

    request_id: int
    locations: list
    peers: list


@message(44)
class RemoveRdd(Message):
    """Driver -> executor: drop every cached block of ``rdd_id``; answer ``RddRemoved``."""

    request_id: int
    rdd_id: int


@message(45)
class RddRemoved(Message):
    """Executor -> driver: the blocks of a ``RemoveRdd`` are gone (``count`` of them)."""

    request_id: int
    count: int


@message(46)
class FetchBlock(Message):
    """Block client -> server: send the cached block ``block_id`` (pickled records)."""

    request_id: int
    block_id: str


@message(47)
class UploadBlock(Message):
    """Block client -> server: store a replica of ``block_id`` with storage ``level``
    (``[useDisk, useMemory, useOffHeap, deserialized, replication]``)."""

    request_id: int
    block_id: str
    level: list
    body: bytes


@message(49)
class UploadBlockChunk(Message):
    """Block client -> server: a piece of a replica too big for one frame: bytes
    ``offset`` .. ``offset + len(body)`` of the ``total`` bytes of ``block_id``, sent in
    order under one ``request_id``; the server stores the block once it has them all and
    answers one ``BlockReply``."""

    request_id: int
    block_id: str
    level: list
    offset: int
    total: int
    body: bytes


@message(48)
class BlockReply(Message):
    """Block server -> client: the block's bytes (``FetchBlock``), or an empty body
    (``UploadBlock`` stored); ``error`` says why not (``not found: ...``)."""

    request_id: int
    error: str | None
    body: bytes
