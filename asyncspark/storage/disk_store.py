"""File stores for cached blocks: one file per block, written atomically (a temporary
name, then ``os.replace``), so a reader never sees half a block.

``DiskStore`` lives under the executor's local directory (gone with the executor).
The off-heap store is the same class over a host-level directory the driver owns
(under ``/dev/shm`` where it exists): any executor of the host can read its files and
they outlive the executor that wrote them; the driver removes them on ``unpersist()``
and when the context stops.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid

from .._files import atomic_file

__all__ = ["DiskStore", "shm_root"]

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
            f.write(data)
        return len(data)

    def get(self, block_id: str) -> bytes | None:
        try:
            with open(self.path(block_id), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def contains(self, block_id: str) -> bool:
        return os.path.exists(self.path(block_id))

    def size(self, block_id: str) -> int:
        try:
            return os.stat(self.path(block_id)).st_size
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
