"""Sans-IO wire framing: bytes in, frozen-dataclass messages out, and back.

Owns the frame format, the ``Message`` base, the ``message`` registration decorator and
the type registry, and the header checks; the messages themselves are in
``transport/messages/`` (``control``, ``tasks``, ``blocks``), whose package imports all
three so the registry is complete once any of them is imported. No asyncio here. A frame is::

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
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import msgpack

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CLOSED",
    "DEFAULT_MAX_FRAME_SIZE",
    "MESSAGE_TYPES",
    "NEED_DATA",
    "FrameCodec",
    "Message",
    "message",
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


_M = TypeVar("_M", bound="Message")


@typing.dataclass_transform(frozen_default=True)
def message(code: int) -> Callable[[type[_M]], type[_M]]:
    """Class decorator: register a frozen dataclass as the wire message ``code``."""

    def wrap(cls: type[_M]) -> type[_M]:
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

    __slots__ = ("_buf", "_closed", "_error", "_packer", "_pos", "limit_name",
                 "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if not 16 <= max_frame_size <= _MAX_LEN:
            raise ValueError(
                f"max_frame_size must be between 16 and {_MAX_LEN} bytes, got {max_frame_size}"
            )
        # The received frame size limit; lowered until the peer has authenticated
        # (transport/guard.py), when ``limit_name`` says which limit it is.
        self.max_frame_size: int = max_frame_size
        self.limit_name: str = "asyncspark.rpc.maxFrameSize"
        self._buf = bytearray()
        self._pos = 0
        self._closed = False
        self._error: RemoteProtocolError | None = None
        self._packer = msgpack.Packer(use_bin_type=True)  # reused: one per connection

    # -- receiving ---------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side. Bytes
        after a malformed frame are dropped, never buffered."""
        if not data:
            self._closed = True
            return
        if self._closed:
            raise LocalProtocolError("receive_data() after end of stream")
        if self._error is not None:
            return
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
                f"frame of {size} bytes exceeds the limit of {self.max_frame_size} bytes"
                + (f" ({self.limit_name})" if self.limit_name else ""),
                "frame too big",
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
        self._fail(f"connection closed mid-frame: got {avail}{want_s} bytes",
                   "truncated frame")
        return None  # unreachable

    def _fail(self, message: str, reason: str = "malformed frame") -> None:
        self._error = _error(message, reason)
        raise self._error

    def _decode(self, header: bytes, body: bytes, blen: int) -> Message:
        try:
            fields = msgpack.unpackb(header, raw=False, use_list=True, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types
            self._error = _error(f"undecodable frame header: {exc!r}", "malformed frame")
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

    def send_parts(self, msg: Message) -> list[bytes | bytearray | memoryview]:
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


def _error(message: str, reason: str) -> RemoteProtocolError:
    """A ``RemoteProtocolError`` whose ``reason`` names the kind of fault for logs
    ("frame too big", "truncated frame", "malformed frame")."""
    exc = RemoteProtocolError(message)
    exc.reason = reason  # type: ignore[attr-defined]
    return exc


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
