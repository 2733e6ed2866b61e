"""Writing RDDs out: ``saveAsTextFile`` with temporary part files, renames and ``_SUCCESS``."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import shutil
from typing import TYPE_CHECKING

from .taskcontext import TaskContext

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["save_as_text_file"]

_CODECS = {
    "org.apache.hadoop.io.compress.GzipCodec": ".gz",
    "gzip": ".gz",
}


def _to_bytes(x) -> bytes:
    if isinstance(x, bytes):
        return x
    if not isinstance(x, str):
        x = str(x)
    return x.encode("utf-8")


def _write_partition(path: str, ext: str, it) -> None:
    ctx = TaskContext.get()
    split = ctx.partitionId()
    name = f"part-{split:05d}{ext}"
    tmp_dir = os.path.join(path, "_temporary")
    os.makedirs(tmp_dir, exist_ok=True)
    tmp = os.path.join(tmp_dir, f"{name}.attempt-{ctx.taskAttemptId()}")
    try:
        with open(tmp, "wb") as raw, (
                # no file name in the gzip header (it would be the temporary one), as Hadoop
                gzip.GzipFile(filename="", mode="wb", fileobj=raw) if ext == ".gz"
                else contextlib.nullcontext(raw)) as f:
            buf = []
            for x in it:
                buf.append(_to_bytes(x))
                if len(buf) >= 4096:
                    f.write(b"\n".join(buf) + b"\n")
                    buf.clear()
            if buf:
                f.write(b"\n".join(buf) + b"\n")
        os.replace(tmp, os.path.join(path, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _create_output_dir(path: str) -> None:
    try:
        os.makedirs(path)
    except FileExistsError:
        raise FileExistsError(f"Output directory {path} already exists") from None


def _abort(path: str) -> None:
    """After a failed job: drop the attempts' temporary files; no ``_SUCCESS``."""
    shutil.rmtree(os.path.join(path, "_temporary"), ignore_errors=True)


def _commit(path: str) -> None:
    _abort(path)
    with open(os.path.join(path, "_SUCCESS"), "wb"):
        pass


async def save_as_text_file(rdd: RDD, path: str, codec: str | None) -> None:
    if codec is not None and codec not in _CODECS:
        raise ValueError(
            f"unsupported compressionCodecClass {codec!r}; supported: {sorted(_CODECS)}")
    ext = _CODECS.get(codec, "") if codec else ""
    if path.startswith("file://"):
        path = path[len("file://"):]
    path = await asyncio.to_thread(os.path.abspath, path)
    await asyncio.to_thread(_create_output_dir, path)
    try:
        await rdd._run(lambda it: _write_partition(path, ext, it))
    except BaseException:
        _abort(path)  # synchronous: also runs when we are being cancelled
        raise
    await asyncio.to_thread(_commit, path)
