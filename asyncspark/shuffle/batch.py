"""The framing of shuffle data: a reduce partition's bytes are a sequence of batches, each
a ``u32`` header and a serialized list of records.

The header's low 31 bits are the body's length; its top bit says how the body was
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

from ..errors import FetchFailedError

__all__ = ["MAX_BATCH_BYTES", "BatchEncoder", "decode_batches"]

_HEADER = struct.Struct(">I")
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
        self.use_marshal = True

    def encode(self, records: list) -> bytes:
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
        return _HEADER.pack(len(data) | flag) + data


def decode_batches(pieces: Iterable[bytes]) -> Iterator[list]:
    """The lists of records of the batches in ``pieces`` (the byte stream of one or more
    blocks, cut anywhere)."""
    buf = b""
    unpack = _HEADER.unpack_from
    mloads = marshal.loads
    ploads = pickle.loads
    for piece in pieces:
        buf = buf + piece if buf else piece
        pos = 0
        n = len(buf)
        view = memoryview(buf)
        while n - pos >= 4:
            (header,) = unpack(buf, pos)
            end = pos + 4 + (header & MAX_BATCH_BYTES)
            if end > n:
                break
            body = view[pos + 4:end]
            try:
                yield mloads(body) if header & _MARSHALED else ploads(body)
            except (ValueError, EOFError, TypeError, pickle.UnpicklingError) as exc:
                raise FetchFailedError(f"corrupt shuffle batch ({end - pos - 4} bytes): "
                                       f"{exc}") from exc
            pos = end
        view.release()
        buf = buf[pos:]
    if buf:
        raise FetchFailedError(f"shuffle block ends inside a batch ({len(buf)} bytes left)")
