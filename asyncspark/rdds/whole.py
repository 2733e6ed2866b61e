"""Whole-file and record inputs: ``wholeTextFiles``, ``binaryFiles``, ``binaryRecords``
and ``pickleFile`` (PySpark's ``SparkContext`` methods of those names).

Any filesystem (``fs.py``). Local paths are reported as Hadoop does
(``file:/abs/path``), others as their URLs. Files are
grouped into partitions by size (as Spark's ``CombineFileInputFormat``); a compressed
file (``.gz``, ``.bz2``, ``.xz`` and, when their packages are installed, ``.zst`` and
``.lz4``) is decompressed whole.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import fs
from ..rdd import RDD
from .textfile import list_input_files, open_decompressed

if TYPE_CHECKING:
    from ..planner import LineageContext
    from ..taskcontext import TaskContext

__all__ = ["BinaryRecordsRDD", "PickleFileRDD", "WholeFilesRDD", "group_by_size"]


def group_by_size(files: list[str], n: int) -> list[list[str]]:
    """``files`` in at most ``n`` contiguous groups of about equal total size."""
    if not files:
        return []
    n = max(1, min(n, len(files)))
    sizes = [max(fs.size(f), 1) for f in files]
    goal = sum(sizes) / n
    groups: list[list[str]] = [[]]
    acc = 0
    for f, size in zip(files, sizes, strict=True):
        if groups[-1] and acc + size / 2 > goal * len(groups) and len(groups) < n:
            groups.append([])
        groups[-1].append(f)
        acc += size
    return groups


def hadoop_path(path: str) -> str:
    return "file:" + os.path.abspath(fs.to_local(path)) if fs.is_local(path) else path


class WholeFilesRDD(RDD[Any]):
    """``(path, content)`` per file: text (``wholeTextFiles``), bytes (its
    ``use_unicode=False``) or binary (``binaryFiles``, never decompressed)."""

    def __init__(self, ctx: LineageContext, path: str, min_partitions: int, mode: str) -> None:
        self._path = path
        self._mode = mode
        self._groups = group_by_size(list_input_files(path), min_partitions)
        super().__init__(ctx, [], len(self._groups))

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        for f in self._groups[split]:
            if self._mode == "binary":
                with fs.open_file(f, "rb") as fh:
                    data = fh.read()
                yield hadoop_path(f), data
                continue
            with open_decompressed(f) as fh:
                data = fh.read()
            yield hadoop_path(f), data.decode("utf-8") if self._mode == "text" else data

    def _describe(self) -> str:
        kind = "BinaryFileRDD" if self._mode == "binary" else "WholeTextFileRDD"
        return f"{self._path} {kind}"


class BinaryRecordsRDD(RDD[Any]):
    """Fixed-length records (``binaryRecords``), each file split at record boundaries."""

    def __init__(self, ctx: LineageContext, path: str, record_length: int,
                 min_partitions: int) -> None:
        if isinstance(record_length, bool) or not isinstance(record_length, int) \
                or record_length < 1:
            raise ValueError(f"recordLength must be a positive integer, got {record_length!r}")
        files = list_input_files(path)
        splits: list[tuple[str, int, int]] = []
        total = 0
        for f in files:
            size = fs.size(f)
            if size % record_length:
                raise ValueError(f"binaryRecords: {f} is {size} bytes, not a multiple of "
                                 f"recordLength {record_length}")
            total += size
        per_split = max(record_length,
                        (total // max(min_partitions, 1)) // record_length * record_length)
        for f in files:
            size = fs.size(f)
            splits.extend((f, start, min(per_split, size - start))
                          for start in range(0, size, per_split))
        self._path = path
        self._record_length = record_length
        self._splits = splits
        super().__init__(ctx, [], len(splits))

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        f, start, length = self._splits[split]
        n = self._record_length
        with fs.open_file(f, "rb") as fh:
            fh.seek(start)
            left = length
            while left > 0:
                chunk = fh.read(min(left, max(n, (1 << 20) // n * n)))
                if not chunk:
                    raise OSError(f"binaryRecords: {f} shrank while being read")
                left -= len(chunk)
                for i in range(0, len(chunk), n):
                    yield chunk[i:i + n]

    def _describe(self) -> str:
        return f"{self._path} BinaryRecordsRDD"


class PickleFileRDD(RDD[Any]):
    """The elements of ``saveAsPickleFile``'s part files: pickled lists, one after the
    other; one partition per part file."""

    def __init__(self, ctx: LineageContext, path: str, min_partitions: int) -> None:
        self._path = path
        self._files = list_input_files(path)
        super().__init__(ctx, [], len(self._files))

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        with open_decompressed(self._files[split]) as fh:
            while True:
                try:
                    batch = pickle.load(fh)
                except EOFError:
                    return
                if not isinstance(batch, list):
                    raise ValueError(f"pickleFile: {self._files[split]} is not a pickle "
                                     "file of saveAsPickleFile (a batch is not a list)")
                yield from batch

    def _describe(self) -> str:
        return f"{self._path} PickleFileRDD"
