"""File systems for every path the API takes, through ``fsspec``: plain local paths,
``file://``, ``memory://`` and any installed fsspec filesystem (``s3://`` with s3fs,
``gs://`` with gcsfs, ``abfs://`` with adlfs, ``hdfs://`` through pyarrow, ...).

Local paths (with or without ``file://``) stay plain paths and use the builtin ``open``
(the fast path, and what executors on the same host share). Compression goes by the
file's extension, for reading and writing: ``.gz``, ``.bz2``, ``.xz``, and ``.zst`` /
``.lz4`` when ``zstandard`` / ``lz4`` are installed. Every executor must reach the
filesystem a path names (``memory://`` lives in one process: the driver's tests use it).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
from typing import IO, Any

__all__ = ["COMPRESSED", "exists", "expand", "get", "is_local", "isdir", "join", "makedirs",
           "open_file", "open_read", "open_write", "remove", "rename", "size", "to_local"]

COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4")
_LOCAL_PROTOCOLS = ("file://", "local://")


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith(_LOCAL_PROTOCOLS)


def to_local(path: str) -> str:
    """A local path without its ``file://``; other URLs unchanged."""
    for proto in _LOCAL_PROTOCOLS:
        if path.startswith(proto):
            return path[len(proto):]
    return path


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(url)


def _unstrip(fs: Any, path: str) -> str:
    return fs.unstrip_protocol(path)


def _visible(path: str) -> bool:
    base = posixpath.basename(path.rstrip("/"))
    return not (base.startswith("_") or base.startswith("."))


def expand(paths: str, what: str = "textFile") -> list[str]:
    """Comma-separated paths, globs and directories (their visible files, not hidden
    ``_``/``.`` ones), as sorted files; each stays local or a URL as given."""
    out: list[str] = []
    for part in paths.split(","):
        part = part.strip()
        if is_local(part):
            out.extend(_expand_local(to_local(part), what))
        else:
            out.extend(_expand_url(part, what))
    return out


def _expand_local(part: str, what: str) -> list[str]:
    import glob

    matches = ([m for m in sorted(glob.glob(part)) if _visible(m)]
               if glob.has_magic(part) else [part])
    if not matches:
        raise FileNotFoundError(f"{what}: input path does not match any file: {part}")
    files: list[str] = []
    for m in matches:
        if os.path.isdir(m):
            files.extend(os.path.join(m, f) for f in sorted(os.listdir(m))
                         if _visible(f) and os.path.isfile(os.path.join(m, f)))
        elif os.path.isfile(m):
            files.append(m)
        else:
            raise FileNotFoundError(f"{what}: input path does not exist: {m}")
    return files


def _expand_url(part: str, what: str) -> list[str]:
    fs, path = _fs(part)
    import glob as _glob

    matches = ([m for m in sorted(fs.glob(path)) if _visible(m)]
               if _glob.has_magic(path) else [path])
    if not matches:
        raise FileNotFoundError(f"{what}: input path does not match any file: {part}")
    files: list[str] = []
    for m in matches:
        if fs.isdir(m):
            files.extend(_unstrip(fs, e["name"]) for e in sorted(
                fs.ls(m, detail=True), key=lambda e: e["name"])
                if e.get("type") == "file" and _visible(e["name"]))
        elif fs.isfile(m):
            files.append(_unstrip(fs, m))
        else:
            raise FileNotFoundError(f"{what}: input path does not exist: {part}")
    return files


def size(path: str) -> int:
    if is_local(path):
        return os.path.getsize(to_local(path))
    fs, p = _fs(path)
    return fs.size(p)


def open_file(path: str, mode: str = "rb") -> IO[bytes]:
    """``path`` opened as is (no decompression)."""
    if is_local(path):
        return open(to_local(path), mode)
    fs, p = _fs(path)
    return fs.open(p, mode)


def _codec_module(path: str) -> Any:
    if path.endswith(".gz"):
        return gzip
    if path.endswith(".bz2"):
        return bz2
    if path.endswith(".xz"):
        return lzma
    if path.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise ImportError(f"{path}: .zst files need the 'zstandard' package") from None
        return zstandard
    if path.endswith(".lz4"):
        try:
            import lz4.frame
        except ImportError:
            raise ImportError(f"{path}: .lz4 files need the 'lz4' package") from None
        return lz4.frame
    return None


def open_read(path: str) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed by its extension."""
    codec = _codec_module(path)
    raw = open_file(path, "rb")
    if codec is None:
        return raw
    if codec is gzip:
        return _Closing(gzip.GzipFile(fileobj=raw, mode="rb"), raw)
    return _Closing(codec.open(raw, "rb"), raw)


def open_write(path: str) -> IO[bytes]:
    """``path`` opened for writing bytes, compressed by its extension (no file name in
    a gzip header, as Hadoop writes them)."""
    codec = _codec_module(path)
    raw = open_file(path, "wb")
    if codec is None:
        return raw
    if codec is gzip:
        return _Closing(gzip.GzipFile(filename="", mode="wb", fileobj=raw), raw)
    return _Closing(codec.open(raw, "wb"), raw)


class _Closing:
    """A compressing writer that also closes the file under it."""

    def __init__(self, outer: Any, raw: Any) -> None:
        self._outer, self._raw = outer, raw

    def write(self, data: bytes) -> int:
        return self._outer.write(data)

    def read(self, n: int = -1) -> bytes:
        return self._outer.read(n)

    def __iter__(self):
        return iter(self._outer)

    def close(self) -> None:
        try:
            self._outer.close()
        finally:
            self._raw.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join(base: str, *names: str) -> str:
    if is_local(base):
        return os.path.join(to_local(base), *names)
    return posixpath.join(base, *names)


def exists(path: str) -> bool:
    if is_local(path):
        return os.path.exists(to_local(path))
    fs, p = _fs(path)
    return fs.exists(p)


def makedirs(path: str, exist_ok: bool = True) -> None:
    if is_local(path):
        os.makedirs(to_local(path), exist_ok=exist_ok)
        return
    fs, p = _fs(path)
    if not exist_ok and fs.exists(p):
        raise FileExistsError(path)
    fs.makedirs(p, exist_ok=True)


def rename(src: str, dst: str) -> None:
    if is_local(src):
        os.replace(to_local(src), to_local(dst))
        return
    fs, p = _fs(src)
    fs.mv(p, _fs(dst)[1])


def remove(path: str, recursive: bool = False) -> None:
    """Remove ``path`` (a file, or with ``recursive`` a directory); a missing one is no
    error."""
    import shutil

    if is_local(path):
        local = to_local(path)
        if recursive:
            shutil.rmtree(local, ignore_errors=True)
        else:
            try:
                os.unlink(local)
            except FileNotFoundError:
                pass
        return
    fs, p = _fs(path)
    if fs.exists(p):
        fs.rm(p, recursive=recursive)


def get(src: str, dst: str, recursive: bool = False) -> None:
    """Copy ``src`` (any filesystem) to the local path ``dst``."""
    import shutil

    if is_local(src):
        local = to_local(src)
        if os.path.isdir(local):
            shutil.copytree(local, dst)
        else:
            shutil.copyfile(local, dst)
        return
    fs, p = _fs(src)
    fs.get(p, dst, recursive=recursive)


def isdir(path: str) -> bool:
    if is_local(path):
        return os.path.isdir(to_local(path))
    fs, p = _fs(path)
    return fs.isdir(p)
