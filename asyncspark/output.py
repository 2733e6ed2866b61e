"""Writing RDDs out: ``saveAsTextFile`` and ``saveAsPickleFile`` with temporary part
files, renames and ``_SUCCESS``, on any filesystem (``fs.py``; compressed by the codec's
extension).

Each task attempt writes ``_temporary/part-NNNNN.attempt-<TID>``, then asks the driver's
output commit coordinator whether it may commit (``scheduler/commit_coordinator.py``):
only the first attempt of a partition to ask renames its file into place; the others
(e.g. the loser of a speculative race) delete theirs and fail with ``CommitDeniedError``,
which is not counted as a task failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING, Any

from . import fs
from .runtime import current_env
from .taskcontext import TaskContext

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["save_as_pickle_file", "save_as_text_file"]

_CODECS = {
    "org.apache.hadoop.io.compress.GzipCodec": ".gz",
    "org.apache.hadoop.io.compress.BZip2Codec": ".bz2",
    "org.apache.hadoop.io.compress.ZStandardCodec": ".zst",
    "org.apache.hadoop.io.compress.Lz4Codec": ".lz4",
    "gzip": ".gz",
    "bzip2": ".bz2",
    "xz": ".xz",
    "zstd": ".zst",
    "lz4": ".lz4",
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
        fs.makedirs(tmp_dir)
        try:
            return fs.open_write(tmp)
        except FileNotFoundError:
            continue
    return fs.open_write(tmp)


def _ask_commit(ctx: TaskContext, split: int) -> None:
    """Raise ``CommitDeniedError`` unless the driver lets this attempt commit ``split``
    (outside an executor, as in tests of the writer itself, there is no one to ask)."""
    env = current_env()
    commits = env.commits if env is not None else None
    if commits is not None:
        commits.ask(ctx.stageId(), split, ctx.taskAttemptId())


def _write_lines(f, it) -> int:
    """Write each element as a line; return how many."""
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
    return records


def _pickle_writer(batch_size: int):
    """PySpark's pickle file body: each batch of ``batch_size`` elements one pickled
    list, one after the other (``pickleFile`` loads until the end of the file)."""
    from itertools import islice

    from .serializers import dumps_result

    def write(f, it) -> int:
        it = iter(it)
        records = 0
        while True:
            batch = list(islice(it, batch_size))
            if not batch:
                return records
            records += len(batch)
            f.write(dumps_result(batch))  # cloudpickle for lambdas and local classes

    return write


def _write_partition(path: str, ext: str, it, write=_write_lines) -> None:
    ctx = TaskContext.get()
    split = ctx.partitionId()
    name = f"part-{split:05d}{ext}"
    tmp_dir = fs.join(path, "_temporary")
    # the extension last: fs.open_write compresses by it
    tmp = fs.join(tmp_dir, f"attempt-{ctx.taskAttemptId()}-{name}")
    try:
        with _open_attempt_file(tmp_dir, tmp) as f:
            records = write(f, it)
        m = ctx._metrics  # Spark's output metrics (the bytes as written, compressed or not)
        m["outputBytes"] = m.get("outputBytes", 0) + fs.size(tmp)
        m["outputRecords"] = m.get("outputRecords", 0) + records
        _ask_commit(ctx, split)
        fs.rename(tmp, fs.join(path, name))
    except BaseException:
        with contextlib.suppress(OSError):
            fs.remove(tmp)
        # A losing attempt may run after the job committed and removed _temporary:
        # leave no empty directory behind (fails harmlessly while others use it).
        if fs.is_local(tmp_dir):
            with contextlib.suppress(OSError):
                os.rmdir(tmp_dir)
        raise


def _create_output_dir(path: str) -> None:
    if fs.exists(path):
        raise FileExistsError(f"Output directory {path} already exists")
    try:
        fs.makedirs(path, exist_ok=False)
    except FileExistsError:
        raise FileExistsError(f"Output directory {path} already exists") from None


def _abort(path: str) -> None:
    """After a failed job: drop the attempts' temporary files; no ``_SUCCESS``."""
    fs.remove(fs.join(path, "_temporary"), recursive=True)


def _commit(path: str) -> None:
    _abort(path)
    with fs.open_file(fs.join(path, "_SUCCESS"), "wb"):
        pass


async def save_as_text_file(rdd: RDD[Any], path: str, codec: str | None) -> None:
    if codec is not None and codec not in _CODECS:
        raise ValueError(
            f"unsupported compressionCodecClass {codec!r}; supported: {sorted(_CODECS)}")
    ext = _CODECS.get(codec, "") if codec else ""
    await _save(rdd, path, ext, _write_lines)


async def save_as_pickle_file(rdd: RDD[Any], path: str, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batchSize must be a nonnegative integer, got {batch_size!r}")
    await _save(rdd, path, "", _pickle_writer(batch_size or 1024))


async def _save(rdd: RDD[Any], path: str, ext: str, write) -> None:
    if fs.is_local(path):
        path = await asyncio.to_thread(os.path.abspath, fs.to_local(path))
    await asyncio.to_thread(_create_output_dir, path)
    try:
        await rdd._run(lambda it: _write_partition(path, ext, it, write))
    except BaseException:
        _abort(path)  # synchronous: also runs when we are being cancelled
        raise
    await asyncio.to_thread(_commit, path)
