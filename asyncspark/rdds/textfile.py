"""``textFile``: local files, directories and globs, split like Hadoop's FileInputFormat."""

from __future__ import annotations

import glob
import gzip
import os
from collections.abc import Iterator

from ..rdd import RDD

__all__ = ["TextFileRDD", "list_input_files", "plan_splits"]

LOCAL_BLOCK_SIZE = 32 << 20  # Hadoop's fs.local.block.size
_SPLIT_SLOP = 1.1
_READ_CHUNK = 1 << 20


def _visible(path: str) -> bool:
    base = os.path.basename(path)
    return not (base.startswith("_") or base.startswith("."))


def list_input_files(path: str) -> list[str]:
    """Expand comma-separated paths, globs and directories into sorted file paths."""
    files: list[str] = []
    for part in path.split(","):
        part = part.strip()
        if part.startswith("file://"):
            part = part[len("file://"):]
        matches = ([m for m in sorted(glob.glob(part)) if _visible(m)]
                   if glob.has_magic(part) else [part])
        if not matches:
            raise FileNotFoundError(f"textFile: input path does not match any file: {part}")
        for m in matches:
            if os.path.isdir(m):
                files.extend(
                    os.path.join(m, f) for f in sorted(os.listdir(m))
                    if _visible(f) and os.path.isfile(os.path.join(m, f))
                )
            elif os.path.isfile(m):
                files.append(m)
            else:
                raise FileNotFoundError(f"textFile: input path does not exist: {m}")
    return files


def plan_splits(files: list[str], min_partitions: int) -> list[tuple[str, int, int]]:
    """``(path, start, length)`` splits, as Hadoop's ``FileInputFormat.getSplits``.

    Gzip files cannot be split and become one split each.
    """
    sizes = [os.path.getsize(f) for f in files]
    total = sum(sizes)
    goal = total // max(min_partitions, 1)
    split_size = max(1, min(goal, LOCAL_BLOCK_SIZE))
    splits: list[tuple[str, int, int]] = []
    for path, size in zip(files, sizes, strict=True):
        if path.endswith(".gz") or size == 0:
            splits.append((path, 0, size))
            continue
        remaining = size
        while remaining / split_size > _SPLIT_SLOP:
            splits.append((path, size - remaining, split_size))
            remaining -= split_size
        if remaining:
            splits.append((path, size - remaining, remaining))
    return splits


def _decode(line: bytes, use_unicode: bool):
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    elif line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8") if use_unicode else line


def read_split(path: str, start: int, length: int, use_unicode: bool = True,
               metrics: dict | None = None) -> Iterator:
    """The lines of one split, with Hadoop's ``LineRecordReader`` boundary rule.

    A split that does not start at 0 skips its first (possibly partial) line; every split
    reads the line that starts at or before its end, so each line is read exactly once.
    ``metrics`` (a task's) gets Spark's ``inputBytes`` and ``inputRecords`` (lines are
    counted per chunk read, not per line, except in a split's last chunk).
    """
    n = 0
    nbytes = 0
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                for line in f:
                    n += 1
                    yield _decode(line, use_unicode)
                nbytes = f.fileobj.tell() if f.fileobj is not None else 0  # type: ignore
            return
        end = start + length
        with open(path, "rb") as f:
            f.seek(start)
            pos = start  # file offset where the next unread line starts
            if start != 0:
                pos += len(f.readline())
            carry = b""  # a partial line starting at `pos`
            while pos <= end:
                chunk = f.read(_READ_CHUNK)
                if not chunk:
                    if carry:
                        n += 1
                        yield _decode(carry, use_unicode)
                    return
                nbytes += len(chunk)
                data = carry + chunk if carry else chunk
                lines = data.split(b"\n")
                carry = lines.pop()
                if pos + len(data) <= end:  # every line starts in the split: count at once
                    n += len(lines)
                    for line in lines:
                        pos += len(line) + 1
                        if line.endswith(b"\r"):
                            line = line[:-1]
                        yield line.decode("utf-8") if use_unicode else line
                    continue
                for line in lines:
                    if pos > end:
                        return
                    n += 1
                    pos += len(line) + 1
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    yield line.decode("utf-8") if use_unicode else line
    finally:
        if metrics is not None:
            metrics["inputBytes"] = metrics.get("inputBytes", 0) + nbytes
            metrics["inputRecords"] = metrics.get("inputRecords", 0) + n


class TextFileRDD(RDD):
    def __init__(self, ctx, path: str, min_partitions: int, use_unicode: bool = True) -> None:
        files = list_input_files(path)
        self._splits = plan_splits(files, min_partitions)
        self._path = path
        self._use_unicode = use_unicode
        super().__init__(ctx, [], len(self._splits))

    def compute(self, split: int, task_ctx) -> Iterator:
        path, start, length = self._splits[split]
        metrics = task_ctx._metrics if task_ctx is not None else None
        return read_split(path, start, length, self._use_unicode, metrics)

    def _describe(self) -> str:
        return f"{self._path} TextFileRDD"
