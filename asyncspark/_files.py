"""Writing files so that readers see all of one or nothing, and errors that name them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["atomic_file", "naming"]


def naming(exc: OSError, path: str, what: str = "") -> OSError:
    """``exc`` if it names a file already, else an ``OSError`` of the same errno (so the
    same subclass: ``ENOSPC`` stays ``OSError``, ``ENOENT`` ``FileNotFoundError``) that
    names ``path`` (what a failed ``write()``, e.g. on a full disk, does not)."""
    if exc.filename is not None:
        return exc
    if exc.errno is None:
        return OSError(f"{exc} ({what or 'writing'} {path})")
    message = f"{exc.strerror} ({what})" if what else exc.strerror
    return OSError(exc.errno, message, path)


@contextlib.contextmanager
def atomic_file(path: str, tmp: str | None = None) -> Iterator[BinaryIO]:
    """A binary file opened at ``tmp`` (``path + ".tmp"`` by default), renamed to
    ``path`` when the block ends; removed instead if the block raises (including a task
    kill), so no partial file is ever left under either name. An ``OSError`` (a full
    disk) comes out naming the file it was writing."""
    tmp = f"{path}.tmp" if tmp is None else tmp
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            named = naming(exc, path)
            if named is not exc:
                raise named from exc
        raise
