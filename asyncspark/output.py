"""Writing RDDs out: ``saveAsTextFile`` with temporary part files, renames and ``_SUCCESS``."""

from __future__ import annotations

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
    opener = gzip.open if ext == ".gz" else open
    try:
        with opener(tmp, "wb") as f:
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


async def save_as_text_file(rdd: RDD, path: str, codec: str | None) -> None:
    if codec is not None and codec not in _CODECS:
        raise ValueError(
            f"unsupported compressionCodecClass {codec!r}; supported: {sorted(_CODECS)}")
    ext = _CODECS.get(codec, "") if codec else ""
    path = os.path.abspath(path[len("file://"):] if path.startswith("file://") else path)
    if os.path.exists(path):
        raise FileExistsError(f"Output directory {path} already exists")
    os.makedirs(path)
    try:
        await rdd._run(lambda it: _write_partition(path, ext, it))
    except BaseException:
        shutil.rmtree(os.path.join(path, "_temporary"), ignore_errors=True)
        raise
    shutil.rmtree(os.path.join(path, "_temporary"), ignore_errors=True)
    with open(os.path.join(path, "_SUCCESS"), "wb"):
        pass
