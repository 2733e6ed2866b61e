"""The framing of shuffle data: a reduce partition's bytes are a sequence of batches, each
a header (two ``u32``: the body's length and flag, and the CRC-32 of the body seeded
with that word, so a flipped length or flag is caught too) and a serialized list of
records.

The checksum (``zlib.crc32``: in the standard library, and at ~2.5 GB/s some 25x faster
than unmarshalling the same bytes) is verified before a body is decoded, so a corrupt
block is never half-decoded into wrong records; a mismatch, a body that does not decode
or a block cut inside a batch raises ``CorruptDataError``, which the shuffle reader turns
into ``FetchFailedError`` naming the block. ``FORMAT_VERSION`` is 2 since the checksum
(version 1 had the length word only); both ends of a shuffle are the same code.

The length word's low 31 bits are the body's length; its top bit says how the body was
serialized: set, ``marshal`` (2-4x faster than pickle to write for the core types of
which most records are made: tuples, ints, floats, strings, bytes, None, lists, dicts);
clear, pickle (anything else: a batch marshal refuses is pickled). Both ends run the same
Python, which is what marshal's format needs. The data is the engine's own, from
authenticated peers; pickle is as trusting.
"""

from __future__ import annotations

import marshal
import pickle
import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from zlib import crc32

from ..errors import CorruptDataError

__all__ = ["FORMAT_VERSION", "HEADER_BYTES", "MAX_BATCH_BYTES", "BatchEncoder", "batch_bodies",
           "check_frame", "decode_batches", "decode_body", "frame_header",
           "marshaled_frame", "marshaled_list_length", "read_frames"]

FORMAT_VERSION = 2
_HEADER = struct.Struct(">II")
HEADER_BYTES = _HEADER.size
_MARSHALED = 1 << 31
MAX_BATCH_BYTES = _MARSHALED - 1
_PICKLE_PROTOCOL = 5
# Version 2 writes no back-references: half the instructions of versions 3-4 for batches
# of int tuples (which look up every object with other references in a table), about as
# many for strings. Shared objects arrive as equal copies, which records do not notice.
_MARSHAL_VERSION = 2


class BatchEncoder:
    """Serializes batches of records with their header; after marshal refuses one batch
    (an object of another type inside), the next ones go straight to pickle."""

    __slots__ = ("use_marshal",)

    def __init__(self) -> None:
        self.use_marshal: bool = True

    def encode(self, records: list[Any]) -> bytes:
        flag = 0
        data = None
        if self.use_marshal:
            try:
                data = marshal.dumps(records, _MARSHAL_VERSION)
                flag = _MARSHALED
            except ValueError:  # an object marshal does not handle: pickle from now on
                self.use_marshal = False
        if data is None:
            data = pickle.dumps(records, _PICKLE_PROTOCOL)
        if len(data) > MAX_BATCH_BYTES:
            raise ValueError(f"a shuffle batch of {len(records)} records serializes to "
                             f"{len(data)} bytes, over the {MAX_BATCH_BYTES}-byte limit")
        word = len(data) | flag
        return _HEADER.pack(word, crc32(data, word)) + data


def marshaled_frame(body: bytes) -> bytes:
    """The batch (header and body) of ``body``, the marshal of a list of records."""
    if len(body) > MAX_BATCH_BYTES:
        raise ValueError(f"a shuffle batch serializes to {len(body)} bytes, over the "
                         f"{MAX_BATCH_BYTES}-byte limit")
    word = len(body) | _MARSHALED
    return _HEADER.pack(word, crc32(body, word)) + body


def check_frame(frame: bytes) -> int:
    """The body length of the one whole batch ``frame`` (header and body), checked
    against its checksum; ``CorruptDataError`` when it is cut or does not match."""
    if len(frame) < HEADER_BYTES:
        raise CorruptDataError(f"a shuffle batch cut inside its header ({len(frame)} bytes)")
    word, crc = _HEADER.unpack_from(frame)
    length = word & MAX_BATCH_BYTES
    if len(frame) != HEADER_BYTES + length or crc32(memoryview(frame)[HEADER_BYTES:],
                                                    word) != crc:
        raise CorruptDataError(f"shuffle batch checksum mismatch or cut ({len(frame)} bytes)")
    return length


def decode_batches(pieces: Iterable[bytes]) -> Iterator[list[Any]]:
    """The lists of records of the batches in ``pieces`` (the byte stream of one or more
    whole blocks, cut anywhere), each checked against its checksum before it is decoded;
    ``CorruptDataError`` when one does not match or decode, or the stream ends inside a
    batch."""
    for marshaled, body in batch_bodies(pieces):
        yield decode_body(marshaled, body)


def decode_body(marshaled: bool, body: bytes | memoryview) -> list:
    """The records of one checked batch body (``batch_bodies``); ``CorruptDataError``
    when it does not decode."""
    try:
        return marshal.loads(body) if marshaled else pickle.loads(body)
    except (ValueError, EOFError, TypeError, pickle.UnpicklingError) as exc:
        raise CorruptDataError(f"corrupt shuffle batch ({len(body)} bytes): {exc}") from exc


def batch_bodies(pieces: Iterable[bytes], copy: bool = False
                 ) -> Iterator[tuple[bool, bytes | memoryview]]:
    """``(marshaled, body)`` of each batch in ``pieces`` (as ``decode_batches``), checked
    against its checksum, not decoded: a view valid until the next one is asked for, or
    with ``copy`` a ``bytes`` of its own."""
    buf = b""
    unpack = _HEADER.unpack_from
    for piece in pieces:
        buf = buf + piece if buf else piece
        pos = 0
        n = len(buf)
        view = memoryview(buf)
        try:
            while n - pos >= HEADER_BYTES:
                header, crc = unpack(buf, pos)
                end = pos + HEADER_BYTES + (header & MAX_BATCH_BYTES)
                if end > n:
                    break
                body = view[pos + HEADER_BYTES:end]
                if crc32(body, header) != crc:
                    raise CorruptDataError(f"shuffle batch checksum mismatch ({len(body)} "
                                           f"bytes at offset {pos} of a piece)")
                marshaled = bool(header & _MARSHALED)
                if copy:
                    yield marshaled, body.tobytes()
                else:
                    yield marshaled, body
                    body.release()
                pos = end
        finally:
            view.release()
        buf = buf[pos:]
    if buf:
        raise CorruptDataError(f"shuffle block ends inside a batch ({len(buf)} bytes left)")


def marshaled_list_length(body: bytes) -> int:
    """The length of the list a marshaled batch body holds (read from its first five
    bytes, marshal's list code and count), or -1 when the body holds no list."""
    if body[:1] != b"[" or len(body) < 5:
        return -1
    return int.from_bytes(body[1:5], "little", signed=True)


def frame_header(body: bytes) -> bytes:
    """The header (length, CRC-32) to write before ``body`` (spill files' framing)."""
    if len(body) > MAX_BATCH_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over the {MAX_BATCH_BYTES}-byte "
                         f"limit")
    return _HEADER.pack(len(body), crc32(body, len(body)))


def read_frames(f: BinaryIO, path: str) -> Iterator[bytes]:
    """The checked bodies of the frames in the open binary file ``f`` (named ``path`` in
    errors) until its end; ``CorruptDataError`` naming the file and the offset when a
    header or body is cut short or a checksum does not match."""
    read = f.read
    unpack = _HEADER.unpack
    pos = 0
    while True:
        head = read(HEADER_BYTES)
        if not head:
            return
        if len(head) < HEADER_BYTES:
            raise CorruptDataError(f"{path}: truncated frame header at offset {pos}")
        word, crc = unpack(head)
        length = word & MAX_BATCH_BYTES
        body = read(length)
        if len(body) < length or crc32(body, word) != crc:
            what = "truncated" if len(body) < length else "checksum mismatch in"
            raise CorruptDataError(f"{path}: {what} the frame at offset {pos} "
                                   f"({length} bytes)")
        pos += HEADER_BYTES + length
        yield body
