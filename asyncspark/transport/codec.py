"""Sans-IO wire codec: bytes in, frozen-dataclass messages out, and back.

No asyncio here. A frame is::

    +----------------+----------------+------------------+-------------+
    | header_len u32 | body_len u32   | msgpack header   | raw body    |
    +----------------+----------------+------------------+-------------+

The header is a msgpack array ``[type_code, field, field, ...]`` holding every field of
the message except ``body``; a message class that has a ``body`` field carries it raw after
the header (task binaries, results, shuffle chunks), never re-encoded.

Usage (as h11)::

    codec = FrameCodec(max_frame_size=...)
    codec.receive_data(chunk)          # b"" signals end of stream
    while (ev := codec.next_event()) is not NEED_DATA:
        handle(ev)                     # a Message, or CLOSED at a clean end of stream
    data = codec.send(msg)             # bytes to write

Anything malformed raises ``RemoteProtocolError`` from ``next_event()``, and every later
call raises it again: the caller closes that one connection.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from typing import Any, ClassVar

import msgpack

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CLOSED",
    "DEFAULT_MAX_FRAME_SIZE",
    "MESSAGE_TYPES",
    "NEED_DATA",
    "FrameCodec",
    "Message",
]

_PREFIX = struct.Struct(">II")
_PREFIX_SIZE = _PREFIX.size
_MAX_LEN = 0xFFFFFFFF  # header and body lengths are u32 on the wire
DEFAULT_MAX_FRAME_SIZE = 256 * 1024 * 1024


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA: Any = _Sentinel("NEED_DATA")
CLOSED: Any = _Sentinel("CLOSED")

MESSAGE_TYPES: dict[int, type[Message]] = {}

_Bytes = (bytes, bytearray, memoryview)


class Message:
    """Base of every wire message. Subclasses are frozen slotted dataclasses."""

    __slots__ = ()
    TYPE: ClassVar[int]
    # Per header field: the accepted types after msgpack decoding.
    _FIELDS: ClassVar[tuple[str, ...]]
    _TYPES: ClassVar[tuple[tuple[type, ...], ...]]
    _EXACT: ClassVar[tuple[frozenset[type], ...]]  # the same, for a type(value) lookup
    _HAS_BODY: ClassVar[bool]


_PY_TO_WIRE: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "str": (str,),
    "bytes": (bytes,),
    "bool": (bool,),
    "float": (float, int),
    "list": (list,),
    "dict": (dict,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "bytes | None": (bytes, type(None)),
}


@typing.dataclass_transform(frozen_default=True)
def message(code: int):
    """Class decorator: register a frozen dataclass as the wire message ``code``."""

    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True, slots=True)(cls)
        if code in MESSAGE_TYPES:
            raise LocalProtocolError(f"message code {code} registered twice")
        fields = [f for f in dataclasses.fields(cls)]
        has_body = bool(fields) and fields[-1].name == "body"
        header = fields[:-1] if has_body else fields
        cls.TYPE = code
        cls._FIELDS = tuple(f.name for f in header)
        cls._TYPES = tuple(_PY_TO_WIRE[str(f.type)] for f in header)
        cls._EXACT = tuple(frozenset(t) for t in cls._TYPES)
        cls._HAS_BODY = has_body
        MESSAGE_TYPES[code] = cls
        return cls

    return wrap


# --- control plane: driver <-> executor ---------------------------------------------


@message(1)
class Challenge(Message):
    """Driver -> executor on connect: prove you know the application secret."""

    nonce: bytes


@message(2)
class Register(Message):
    """Executor -> driver: HMAC of the driver's nonce, and a nonce for the driver."""

    executor_id: str
    mac: bytes
    nonce: bytes
    pid: int
    host: str


@message(3)
class Registered(Message):
    """Driver -> executor: the driver's HMAC of the executor's nonce, and settings."""

    mac: bytes
    conf: dict


@message(4)
class TaskBinary(Message):
    """Driver -> executor: a stage's cloudpickled (rdd, func), sent once per executor."""

    binary_id: int
    body: bytes


@message(5)
class LaunchTasks(Message):
    """Driver -> executor: tasks to run, each
    ``[task_id, binary_id, partition, attempt, stage_id]``."""

    tasks: list


@message(6)
class KillTask(Message):
    """Driver -> executor: interrupt a running task."""

    task_id: int
    reason: str


@message(7)
class ForgetBinaries(Message):
    """Driver -> executor: drop cached task binaries of finished stages."""

    binary_ids: list


@message(8)
class StopExecutor(Message):
    """Driver -> executor: exit now."""

    reason: str


@message(9)
class TaskStatuses(Message):
    """Executor -> driver: finished tasks, each ``[task_id, state, nbytes, run_us,
    metrics, stamps]`` (``metrics`` a dict or None; ``stamps`` ``[received, started,
    finished]`` monotonic ns when the driver asked for tracing, else None).

    The payloads (pickled results, or pickled failure descriptions) are concatenated in
    ``body`` in the same order, ``nbytes`` each.
    """

    statuses: list
    body: bytes


@message(10)
class Heartbeat(Message):
    """Executor -> driver: still alive; ``running`` lists task ids in flight."""

    running: list


@message(11)
class MapOutputs(Message):
    """Driver -> executor: where the map outputs of a shuffle are, sent before the first
    launch of a task that reads it (and again when they change: ``epoch``). One entry
    per map partition: ``[executor_id, host, port, data_path, sizes]`` or None."""

    shuffle_id: int
    epoch: int
    statuses: list



@message(12)
class TaskChannel(Message):
    """Executor -> driver, first message on the executor's second connection, its task
    channel (launches in, statuses out, served by the task thread): HMAC of the
    driver's nonce on this connection, and a nonce the driver answers with
    ``Registered``."""

    executor_id: str
    mac: bytes
    nonce: bytes


@message(13)
class RemoveBroadcast(Message):
    """Driver -> executor, on the task channel (so before any later launch): drop the
    executor's copies of these broadcast variables (``unpersist()``/``destroy()``)."""

    broadcast_ids: list


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


@message(48)
class BlockReply(Message):
    """Block server -> client: the block's bytes (``FetchBlock``), or an empty body
    (``UploadBlock`` stored); ``error`` says why not (``not found: ...``)."""

    request_id: int
    error: str | None
    body: bytes


# --- output commits (scheduler/commit_coordinator.py) ---------------------------------
#
# Control connection: a task about to move its output into place asks the driver
# (``AskCommit``); only the first attempt of a partition to ask is allowed.


@message(50)
class AskCommit(Message):
    """Executor -> driver: may task ``task_id`` commit its output of ``partition`` of
    stage ``stage_id``? Answered by ``CommitAnswer``."""

    request_id: int
    stage_id: int
    partition: int
    task_id: int


@message(51)
class CommitAnswer(Message):
    """Driver -> executor: the answer to an ``AskCommit``; ``denied`` says why not
    (None: commit)."""

    request_id: int
    denied: str | None


def _check_header(cls: type[Message], fields: list | tuple,
                  error: type[Exception] = RemoteProtocolError) -> None:
    """Raise ``error`` unless ``fields`` match ``cls``'s header field count and types."""
    types = cls._TYPES
    if len(fields) != len(types):
        raise error(
            f"{cls.__name__} frame has {len(fields)} header fields, expected {len(types)}"
        )
    for name, value, allowed in zip(cls._FIELDS, fields, types, strict=True):
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise error(
                f"{cls.__name__}.{name} has type {type(value).__name__}, "
                f"expected {' or '.join(t.__name__ for t in allowed)}"
            )


class FrameCodec:
    """One connection's framing state, in both directions. Not thread-safe."""

    __slots__ = ("_buf", "_closed", "_error", "_packer", "_pos", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if not 16 <= max_frame_size <= _MAX_LEN:
            raise ValueError(
                f"max_frame_size must be between 16 and {_MAX_LEN} bytes, got {max_frame_size}"
            )
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._pos = 0
        self._closed = False
        self._error: RemoteProtocolError | None = None
        self._packer = msgpack.Packer(use_bin_type=True)  # reused: one per connection

    # -- receiving ---------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._closed = True
            return
        if self._closed:
            raise LocalProtocolError("receive_data() after end of stream")
        buf = self._buf
        if self._pos and self._pos == len(buf):
            buf.clear()
            self._pos = 0
        buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        return len(self._buf) - self._pos

    def next_event(self) -> Message | Any:
        """The next complete message, ``NEED_DATA``, or ``CLOSED`` after a clean EOF."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < _PREFIX_SIZE:
            return self._end_or_need(avail)
        hlen, blen = _PREFIX.unpack_from(buf, pos)
        size = hlen + blen
        if size > self.max_frame_size:
            self._fail(
                f"frame of {size} bytes exceeds the limit of {self.max_frame_size} bytes "
                f"(asyncspark.rpc.maxFrameSize)"
            )
        if hlen == 0:
            self._fail("frame with an empty header")
        end = pos + _PREFIX_SIZE + size
        if len(buf) < end:
            return self._end_or_need(avail, _PREFIX_SIZE + size)
        hstart = pos + _PREFIX_SIZE
        header = bytes(buf[hstart : hstart + hlen])
        body = bytes(buf[hstart + hlen : end]) if blen else b""
        self._pos = end
        if end == len(buf):
            buf.clear()
            self._pos = 0
        elif end > 1 << 20 and end > len(buf) // 2:
            del buf[:end]
            self._pos = 0
        return self._decode(header, body, blen)

    def _end_or_need(self, avail: int, want: int | None = None):
        if not self._closed:
            return NEED_DATA
        if avail == 0:
            return CLOSED
        want_s = f" of {want}" if want is not None else ""
        self._fail(f"connection closed mid-frame: got {avail}{want_s} bytes")
        return None  # unreachable

    def _fail(self, message: str) -> None:
        self._error = RemoteProtocolError(message)
        raise self._error

    def _decode(self, header: bytes, body: bytes, blen: int) -> Message:
        try:
            fields = msgpack.unpackb(header, raw=False, use_list=True, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types
            self._error = RemoteProtocolError(f"undecodable frame header: {exc!r}")
            raise self._error from exc
        if not isinstance(fields, list) or not fields or type(fields[0]) is not int:
            self._fail(f"frame header is not [type_code, ...]: {type(fields).__name__}")
        cls = MESSAGE_TYPES.get(fields[0])
        if cls is None:
            self._fail(f"unknown message type code {fields[0]}")
        try:
            _check_header(cls, fields[1:])
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        if cls._HAS_BODY:
            return cls(*fields[1:], body)
        if blen:
            self._fail(f"{cls.__name__} frame carries a {blen}-byte body it cannot have")
        return cls(*fields[1:])

    # -- sending -----------------------------------------------------------------------

    def send(self, msg: Message) -> bytes:
        """The bytes of one frame for ``msg``."""
        return b"".join(self.send_parts(msg))

    def send_parts(self, msg: Message) -> list:
        """The frame for ``msg`` as a list of buffers (for ``writelines``; no body copy)."""
        cls = type(msg)
        header = _encode_header(msg, self._packer)
        if cls._HAS_BODY:
            body = msg.body  # type: ignore[attr-defined]
            if not isinstance(body, _Bytes):
                raise LocalProtocolError(
                    f"{cls.__name__}.body must be bytes-like, got {type(body).__name__}"
                )
            blen = memoryview(body).nbytes
        else:
            body = None
            blen = 0
        size = len(header) + blen
        if size > self.max_frame_size:
            raise LocalProtocolError(
                f"{cls.__name__} frame of {size} bytes exceeds the limit of "
                f"{self.max_frame_size} bytes (asyncspark.rpc.maxFrameSize)"
            )
        prefix = _PREFIX.pack(len(header), blen)
        if blen:
            return [prefix + header, body]
        return [prefix + header]

    def send_header(self, msg: Message, body_len: int) -> bytes:
        """Prefix and header of a frame for ``msg`` whose body of ``body_len`` bytes the
        caller writes itself right after (``loop.sendfile`` of a file segment); the body
        held in ``msg`` is ignored."""
        cls = type(msg)
        header = _encode_header(msg, self._packer)
        if not cls._HAS_BODY:
            raise LocalProtocolError(f"{cls.__name__} has no body")
        if not 0 <= body_len <= _MAX_LEN:
            raise LocalProtocolError(f"{cls.__name__} body length {body_len} out of range")
        size = len(header) + body_len
        if size > self.max_frame_size:
            raise LocalProtocolError(
                f"{cls.__name__} frame of {size} bytes exceeds the limit of "
                f"{self.max_frame_size} bytes (asyncspark.rpc.maxFrameSize)"
            )
        return _PREFIX.pack(len(header), body_len) + header


def _encode_header(msg: Message, packer: msgpack.Packer) -> bytes:
    """The msgpack header of ``msg``, checked as the peer would check it."""
    cls = type(msg)
    if MESSAGE_TYPES.get(getattr(cls, "TYPE", -1)) is not cls:
        raise LocalProtocolError(f"{cls.__name__} is not a registered wire message")
    values = [getattr(msg, f) for f in cls._FIELDS]
    # What the peer would reject must fail here, where the bug is. Exact types are
    # looked up first (the hot path: a frame per launch batch and status batch); the
    # full check, with subclasses and the error message, runs only when one misses.
    for value, exact in zip(values, cls._EXACT, strict=True):
        if type(value) not in exact:
            _check_header(cls, values, LocalProtocolError)
            break
    try:
        return packer.pack([cls.TYPE, *values])
    except Exception as exc:
        packer.reset()
        raise LocalProtocolError(f"cannot encode {cls.__name__}: {exc}") from exc
