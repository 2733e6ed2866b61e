"""The ``Context``'s file methods (a mixin of ``Context``): inputs read from files
(``textFile``, ``wholeTextFiles``, ``binaryFiles``, ``binaryRecords``, ``pickleFile``,
on any filesystem, ``fs.py``) and the files shipped to executors (``addFile``,
``addArchive``, ``addPyFile``, ``listFiles``, ``listArchives``; ``files.py``)."""

from __future__ import annotations

import contextlib
import shutil
import sys
from typing import TYPE_CHECKING, Any

from .files import AddedFiles, SparkFiles

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["ContextFileMethods"]


class ContextFileMethods:
    """File inputs and shipped files of ``Context`` (``self`` is a Context)."""

    _files: AddedFiles | None = None  # made at start(), removed at stop()

    if TYPE_CHECKING:  # what the mixin needs of its host, the Context
        def _check_running(self) -> None: ...

        @property
        def defaultMinPartitions(self) -> int: ...

    def textFile(self, name: str, minPartitions: int | None = None,
                 use_unicode: bool = True) -> RDD[str]:
        """Lines of local text files: a path, a directory, a glob or a comma-separated list;
        ``.gz`` files are decompressed (one partition each).

        >>> import pathlib, shutil, tempfile
        >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "a.txt").write_text("x\\ny\\n")
        >>> await sc.textFile(d).collect()
        ['x', 'y']
        >>> shutil.rmtree(d)
        """
        from .rdds.textfile import TextFileRDD

        n = minPartitions or self.defaultMinPartitions
        return TextFileRDD(self, name, n, use_unicode)

    def wholeTextFiles(self, path: str, minPartitions: int | None = None,
                       use_unicode: bool = True) -> RDD[tuple[str, str]]:
        """``(path, content)`` for each file of ``path`` (a file, a directory, a glob or
        a comma-separated list); compressed files (by extension) are decompressed.

        >>> import os, pathlib, shutil, tempfile
        >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "a.txt").write_text("x\\ny\\n")
        >>> [(os.path.basename(p), text) for p, text in await sc.wholeTextFiles(d).collect()]
        [('a.txt', 'x\\ny\\n')]
        >>> shutil.rmtree(d)
        """
        from .rdds.whole import WholeFilesRDD

        return WholeFilesRDD(self, path, minPartitions or self.defaultMinPartitions,
                             "text" if use_unicode else "bytes")

    def binaryFiles(self, path: str, minPartitions: int | None = None
                    ) -> RDD[tuple[str, bytes]]:
        """``(path, bytes)`` for each file of ``path`` (see ``wholeTextFiles``).

        >>> import pathlib, shutil, tempfile
        >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "b.bin").write_bytes(b"\\x00\\x01")
        >>> await sc.binaryFiles(d).values().collect()
        [b'\\x00\\x01']
        >>> shutil.rmtree(d)
        """
        from .rdds.whole import WholeFilesRDD

        return WholeFilesRDD(self, path, minPartitions or self.defaultMinPartitions, "binary")

    def binaryRecords(self, path: str, recordLength: int) -> RDD[bytes]:
        """Fixed-length records of ``recordLength`` bytes from flat binary files; a file
        whose size is not a multiple of ``recordLength`` is refused.

        >>> import pathlib, shutil, tempfile
        >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "r.bin").write_bytes(b"abcdef")
        >>> await sc.binaryRecords(d, 2).collect()
        [b'ab', b'cd', b'ef']
        >>> shutil.rmtree(d)
        """
        from .rdds.whole import BinaryRecordsRDD

        return BinaryRecordsRDD(self, path, recordLength, self.defaultMinPartitions)

    def pickleFile(self, name: str, minPartitions: int | None = None) -> RDD[Any]:
        """The elements ``RDD.saveAsPickleFile`` wrote under ``name``.

        >>> import os, shutil, tempfile
        >>> d = tempfile.mkdtemp(); out = os.path.join(d, "out")
        >>> await sc.parallelize([1, 2, 3], 2).saveAsPickleFile(out)
        >>> sorted(await sc.pickleFile(out).collect())
        [1, 2, 3]
        >>> shutil.rmtree(d)
        """
        from .rdds.whole import PickleFileRDD

        return PickleFileRDD(self, name, minPartitions or self.defaultMinPartitions)

    # -- files shipped to executors (files.py) -------------------------------------------

    def addFile(self, path: str, recursive: bool = False) -> None:
        """Ship a file (a directory with ``recursive=True``) to every executor; tasks find
        it with ``SparkFiles.get(name)``.

        >>> import pathlib, shutil, tempfile
        >>> from asyncspark import SparkFiles
        >>> d = tempfile.mkdtemp(); _ = pathlib.Path(d, "lookup.txt").write_text("42")
        >>> sc.addFile(str(pathlib.Path(d, "lookup.txt")))
        >>> await sc.range(1).map(lambda _: open(SparkFiles.get("lookup.txt")).read()).collect()
        ['42']
        >>> shutil.rmtree(d)
        """
        self._check_running()
        self._files.add_file(path, recursive)  # type: ignore[union-attr]

    def addArchive(self, path: str) -> None:
        """Ship an archive (.zip, .tar, .tar.gz, .tgz, ...), unpacked into the directory
        ``SparkFiles.get(archive name)``.

        >>> import os, pathlib, shutil, tempfile, zipfile
        >>> from asyncspark import SparkFiles
        >>> d = tempfile.mkdtemp(); z = os.path.join(d, "words.zip")
        >>> with zipfile.ZipFile(z, "w") as f: f.writestr("w.txt", "hello")
        >>> sc.addArchive(z)
        >>> await sc.range(1).map(lambda _: pathlib.Path(SparkFiles.get("words.zip"), "w.txt")
        ...                       .read_text()).collect()
        ['hello']
        >>> shutil.rmtree(d)
        """
        self._check_running()
        self._files.add_archive(path)  # type: ignore[union-attr]

    def addPyFile(self, path: str) -> None:
        """Make a ``.py`` file or a ``.zip``/``.egg`` of modules importable in tasks
        (and on the driver).

        >>> import os, shutil, tempfile
        >>> d = tempfile.mkdtemp(); py = os.path.join(d, "docex_helpers.py")
        >>> with open(py, "w") as f: _ = f.write("def double(x):\\n    return 2 * x\\n")
        >>> sc.addPyFile(py)
        >>> await sc.parallelize([1, 2]).map(
        ...     lambda x: __import__("docex_helpers").double(x)).collect()
        [2, 4]
        >>> shutil.rmtree(d)
        """
        self._check_running()
        self._files.add_py_file(path)  # type: ignore[union-attr]

    @property
    def listFiles(self) -> list[str]:
        """The paths added with ``addFile``/``addPyFile``."""
        return list(self._files.files.values()) if self._files else []

    @property
    def listArchives(self) -> list[str]:
        """The paths added with ``addArchive``."""
        return list(self._files.archives.values()) if self._files else []

    def _install_files(self, local_root: str) -> None:
        files = self._files = AddedFiles(local_root)
        SparkFiles._root_directory = files.root
        sys.path.insert(1, files.py_root)  # executors import what the driver can

    def _remove_files(self) -> None:
        files, self._files = self._files, None
        if files is None:
            return
        if SparkFiles._root_directory == files.root:
            SparkFiles._root_directory = None
        with contextlib.suppress(ValueError):
            sys.path.remove(files.py_root)
        shutil.rmtree(files.root, ignore_errors=True)
        shutil.rmtree(files.py_root, ignore_errors=True)
