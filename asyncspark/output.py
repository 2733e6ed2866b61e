"""Writing RDDs out: ``saveAsTextFile`` with temporary part files, renames and ``_SUCCESS``.

Each task attempt writes ``_temporary/part-NNNNN.attempt-<TID>``, then asks the driver's
output commit coordinator whether it may commit (``scheduler/commit_coordinator.py``):
only the first attempt of a partition to ask renames its file into place; the others
(e.g. the loser of a speculative race) delete theirs and fail with ``CommitDeniedError``,
which is not counted as a task failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import shutil
from typing import TYPE_CHECKING

from .runtime import current_env
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


def _open_attempt_file(tmp_dir: str, tmp: str):
    # Another attempt cleaning up may remove the (then empty) directory between our
    # makedirs and open: make it again.
    for _ in range(10):
        os.makedirs(tmp_dir, exist_ok=True)
        try:
            return open(tmp, "wb")
        except FileNotFoundError:
            continue
    return open(tmp, "wb")


def _ask_commit(ctx: TaskContext, split: int) -> None:
    """Raise ``CommitDeniedError`` unless the driver lets this attempt commit ``split``
    (outside an executor, as in tests of the writer itself, there is no one to ask)."""
    env = current_env()
    commits = env.commits if env is not None else None
    if commits is not None:
        commits.ask(ctx.stageId(), split, ctx.taskAttemptId())


def _write_partition(path: str, ext: str, it) -> None:
    ctx = TaskContext.get()
    split = ctx.partitionId()
    name = f"part-{split:05d}{ext}"
    tmp_dir = os.path.join(path, "_temporary")
    tmp = os.path.join(tmp_dir, f"{name}.attempt-{ctx.taskAttemptId()}")
    try:
        with _open_attempt_file(tmp_dir, tmp) as raw, (
                # no file name in the gzip header (it would be the temporary one), as Hadoop
                gzip.GzipFile(filename="", mode="wb", fileobj=raw) if ext == ".gz"
                else contextlib.nullcontext(raw)) as f:
            buf = []
            records = 0
            for x in it:
                buf.append(_to_bytes(x))
                if len(buf) >= 4096:
                    records += len(buf)
                    f.write(b"\n".join(buf) + b"\n")
                    buf.clear()
            if buf:
                records += len(buf)
                f.write(b"\n".join(buf) + b"\n")
        size = os.path.getsize(tmp)
        m = ctx._metrics  # Spark's output metrics (the bytes as written, compressed or not)
        m["outputBytes"] = m.get("outputBytes", 0) + size
        m["outputRecords"] = m.get("outputRecords", 0) + records
        _ask_commit(ctx, split)
        os.replace(tmp, os.path.join(path, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # A losing attempt may run after the job committed and removed _temporary:
        # leave no empty directory behind (fails harmlessly while others use it).
        with contextlib.suppress(OSError):
            os.rmdir(tmp_dir)
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
