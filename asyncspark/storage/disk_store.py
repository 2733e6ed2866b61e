"""File stores for cached blocks: one file per block, written atomically (a temporary
name, then ``os.replace``), so a reader never sees half a block.

A block file is a header (the block's length and CRC-32, ``shuffle/batch.py``'s frame
header) and the block's bytes. A block whose file does not match its header (a flipped
byte, a truncated file) is removed when read and reported missing, so it is recomputed
from lineage (``corrupt`` counts them).

``DiskStore`` lives under the executor's local directory (gone with the executor).
The off-heap store is the same class over a host-level directory the driver owns
(under ``/dev/shm`` where it exists): any executor of the host can read its files and
they outlive the executor that wrote them; the driver removes them on ``unpersist()``
and when the context stops.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
import uuid
from zlib import crc32

from .._files import atomic_file
from ..shuffle.batch import HEADER_BYTES, frame_header

__all__ = ["DiskStore", "shm_root"]

log: logging.Logger = logging.getLogger("asyncspark.storage")
_HEADER = struct.Struct(">II")

_BLOCK_RE = re.compile(r"rdd_\d+_\d+")


def shm_root() -> str:
    """Where host-level shared-memory stores go: ``/dev/shm`` (RAM-backed) when it is
    a writable directory, else the system temp directory."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


class DiskStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self._made = False
        self.corrupt: int = 0  # blocks found corrupt (and removed) when read

    def path(self, block_id: str) -> str:
        if not _BLOCK_RE.fullmatch(block_id):
            raise ValueError(f"not a block id: {block_id!r}")
        return os.path.join(self.root, block_id)

    def put(self, block_id: str, data: bytes) -> int:
        """Write the block; its size in bytes. Raises ``OSError`` (e.g. disk full)."""
        if not self._made:
            os.makedirs(self.root, exist_ok=True)
            self._made = True
        final = self.path(block_id)
        # a temporary name of its own: two writers of one block never share it
        tmp = os.path.join(self.root, f".{block_id}.{uuid.uuid4().hex}.tmp")
        with atomic_file(final, tmp) as f:
            f.write(frame_header(data))
            f.write(data)
        return len(data)

    def get(self, block_id: str) -> bytes | None:
        """The block's bytes; None if it is not here, or was corrupt (then removed)."""
        path = self.path(block_id)
        try:
            with open(path, "rb") as f:
                head = f.read(HEADER_BYTES)
                data = f.read()
        except FileNotFoundError:
            return None
        problem = None
        if len(head) < HEADER_BYTES:
            problem = "truncated header"
        else:
            length, crc = _HEADER.unpack(head)
            if length != len(data):
                problem = f"{len(data)} bytes, {length} expected"
            elif crc32(data, length) != crc:
                problem = "checksum mismatch"
        if problem is None:
            return data
        self.corrupt += 1
        log.warning("cached block %s is corrupt (%s): removed, it will be recomputed",
                    path, problem)
        self.remove(block_id)
        return None

    def contains(self, block_id: str) -> bool:
        return os.path.exists(self.path(block_id))

    def size(self, block_id: str) -> int:
        try:
            return max(0, os.stat(self.path(block_id)).st_size - HEADER_BYTES)
        except FileNotFoundError:
            return 0

    def remove(self, block_id: str) -> bool:
        try:
            os.unlink(self.path(block_id))
            return True
        except FileNotFoundError:
            return False

    def remove_rdd(self, rdd_id: int) -> list[str]:
        """Delete every block of ``rdd_id``; the ids removed."""
        prefix = f"rdd_{rdd_id}_"
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return [name for name in names
                if name.startswith(prefix) and _BLOCK_RE.fullmatch(name) and self.remove(name)]

    def block_ids(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if _BLOCK_RE.fullmatch(n))
        except FileNotFoundError:
            return []
