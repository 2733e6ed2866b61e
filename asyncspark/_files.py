"""Writing files so that readers see all of one or nothing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["atomic_file"]


@contextlib.contextmanager
def atomic_file(path: str, tmp: str | None = None) -> Iterator[BinaryIO]:
    """A binary file opened at ``tmp`` (``path + ".tmp"`` by default), renamed to
    ``path`` when the block ends; removed instead if the block raises (including a task
    kill), so no partial file is ever left under either name."""
    tmp = f"{path}.tmp" if tmp is None else tmp
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
