"""``textFile``: local files, directories and globs, split like Hadoop's FileInputFormat;
compressed files (by extension: ``.gz``, ``.bz2``, ``.xz``, and ``.zst``/``.lz4`` when
``zstandard``/``lz4`` are installed) are decompressed, one partition each."""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
from collections.abc import Iterator
from typing import IO

from ..rdd import RDD

__all__ = ["COMPRESSED", "TextFileRDD", "list_input_files", "open_decompressed",
           "plan_splits"]

COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4")


def open_decompressed(path: str) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed by its extension."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".xz"):
        return lzma.open(path, "rb")
    if path.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise ImportError(f"reading {path} needs the 'zstandard' package") from None
        return zstandard.open(path, "rb")
    if path.endswith(".lz4"):
        try:
            import lz4.frame
        except ImportError:
            raise ImportError(f"reading {path} needs the 'lz4' package") from None
        return lz4.frame.open(path, "rb")
    return open(path, "rb")


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

    Compressed files cannot be split and become one split each.
    """
    sizes = [os.path.getsize(f) for f in files]
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


def _decode(line: bytes, use_unicode: bool):
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    elif line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8") if use_unicode else line


def read_split(path: str, start: int, length: int, use_unicode: bool = True) -> Iterator:
    """The lines of one split, with Hadoop's ``LineRecordReader`` boundary rule.

    A split that does not start at 0 skips its first (possibly partial) line; every split
    reads the line that starts at or before its end, so each line is read exactly once.
    """
    if path.endswith(COMPRESSED):
        with open_decompressed(path) as f:
            for line in f:
                yield _decode(line, use_unicode)
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
                    yield _decode(carry, use_unicode)
                return
            lines = (carry + chunk if carry else chunk).split(b"\n")
            carry = lines.pop()
            for line in lines:
                if pos > end:
                    return
                pos += len(line) + 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                yield line.decode("utf-8") if use_unicode else line


class TextFileRDD(RDD):
    def __init__(self, ctx, path: str, min_partitions: int, use_unicode: bool = True) -> None:
        files = list_input_files(path)
        self._splits = plan_splits(files, min_partitions)
        self._path = path
        self._use_unicode = use_unicode
        super().__init__(ctx, [], len(self._splits))

    def compute(self, split: int, task_ctx) -> Iterator:
        path, start, length = self._splits[split]
        return read_split(path, start, length, self._use_unicode)

    def _describe(self) -> str:
        return f"{self._path} TextFileRDD"
