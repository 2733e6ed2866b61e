"""``textFile``: files, directories and globs on any filesystem (``fs.py``), split like
Hadoop's ``FileInputFormat`` and read with its ``LineRecordReader`` rules: a line ends at
``\\n``, ``\\r\\n`` or a lone ``\\r``. Compressed files (by extension: ``.gz``, ``.bz2``,
``.xz``, and ``.zst``/``.lz4`` when ``zstandard``/``lz4`` are installed) are decompressed,
one partition each."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from .. import fs
from ..fs import COMPRESSED
from ..rdd import RDD

if TYPE_CHECKING:
    from ..planner import LineageContext
    from ..taskcontext import TaskContext

__all__ = ["COMPRESSED", "TextFileRDD", "list_input_files", "open_decompressed",
           "plan_splits", "read_split"]

LOCAL_BLOCK_SIZE = 32 << 20  # Hadoop's fs.local.block.size
_SPLIT_SLOP = 1.1
_READ_CHUNK = 1 << 20
_EOL = re.compile(rb"\r\n|\r|\n")


def list_input_files(path: str, what: str = "textFile") -> list[str]:
    """Expand comma-separated paths, globs and directories into sorted file paths."""
    return fs.expand(path, what)


def open_decompressed(path: str) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed by its extension."""
    return fs.open_read(path)


def plan_splits(files: list[str], min_partitions: int) -> list[tuple[str, int, int]]:
    """``(path, start, length)`` splits, as Hadoop's ``FileInputFormat.getSplits``.

    Compressed files cannot be split and become one split each.
    """
    sizes = [fs.size(f) for f in files]
    total = sum(sizes)
    goal = total // max(min_partitions, 1)
    split_size = max(1, min(goal, LOCAL_BLOCK_SIZE))
    splits: list[tuple[str, int, int]] = []
    for path, size in zip(files, sizes, strict=True):
        if path.endswith(COMPRESSED) or size == 0:
            splits.append((path, 0, size))
            continue
        remaining = size
        while remaining / split_size > _SPLIT_SLOP:
            splits.append((path, size - remaining, split_size))
            remaining -= split_size
        if remaining:
            splits.append((path, size - remaining, remaining))
    return splits


def records(f: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """``(line without its terminator, bytes consumed)`` for each line of ``f`` from its
    position on: Hadoop's ``LineReader`` with the default delimiters (``\\n``, ``\\r\\n``,
    a lone ``\\r``); a ``\\r`` at the end of a chunk waits for the next one."""
    buf = b""
    while True:
        chunk = f.read(_READ_CHUNK)
        if not chunk:
            if buf:
                yield (buf[:-1], len(buf)) if buf.endswith(b"\r") else (buf, len(buf))
            return
        buf = buf + chunk if buf else chunk
        if b"\r" not in buf:  # the common case: split on \n at C speed
            lines = buf.split(b"\n")
            buf = lines.pop()
            for line in lines:
                yield line, len(line) + 1
            continue
        start = 0
        for m in _EOL.finditer(buf):
            if m.end() == len(buf) and m.group() == b"\r":
                break  # a \r\n may straddle the chunks
            yield buf[start:m.start()], m.end() - start
            start = m.end()
        buf = buf[start:]


def read_split(path: str, start: int, length: int, use_unicode: bool = True,
               metrics: dict[str, Any] | None = None) -> Iterator[Any]:
    """The lines of one split, with Hadoop's ``LineRecordReader`` boundary rule.

    A split that does not start at 0 skips its first (possibly partial) line; every split
    reads each line that starts at or before its end, so each line is read exactly once.
    ``metrics`` (a task's) gets Spark's ``inputBytes`` (the bytes of the lines read, after
    decompression) and ``inputRecords``.
    """
    n = 0
    nbytes = 0
    try:
        if path.endswith(COMPRESSED):
            with fs.open_read(path) as f:
                for line, size in records(f):
                    n += 1
                    nbytes += size
                    yield line.decode("utf-8") if use_unicode else line
            return
        end = start + length
        with fs.open_file(path, "rb") as f:
            f.seek(start)
            it = records(f)
            pos = start  # file offset where the next unread line starts
            if start != 0:
                first = next(it, None)
                if first is None:
                    return
                pos += first[1]
            begin = pos
            try:
                while pos <= end:
                    rec = next(it, None)
                    if rec is None:
                        return
                    line, size = rec
                    pos += size
                    n += 1
                    yield line.decode("utf-8") if use_unicode else line
            finally:
                nbytes = pos - begin
    finally:
        if metrics is not None:
            metrics["inputBytes"] = metrics.get("inputBytes", 0) + nbytes
            metrics["inputRecords"] = metrics.get("inputRecords", 0) + n


class TextFileRDD(RDD[Any]):
    def __init__(self, ctx: LineageContext, path: str, min_partitions: int,
                 use_unicode: bool = True) -> None:
        files = list_input_files(path)
        self._splits = plan_splits(files, min_partitions)
        self._path = path
        self._use_unicode = use_unicode
        super().__init__(ctx, [], len(self._splits))

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        path, start, length = self._splits[split]
        metrics = task_ctx._metrics if task_ctx is not None else None
        return read_split(path, start, length, self._use_unicode, metrics)

    def _describe(self) -> str:
        return f"{self._path} TextFileRDD"
