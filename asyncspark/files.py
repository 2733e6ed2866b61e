"""``SparkFiles``: where the files of ``sc.addFile`` / ``addArchive`` / ``addPyFile``
are, on the driver and inside tasks (PySpark's ``pyspark.SparkFiles``). ``addFile``
takes local paths and any fsspec URL (``fs.py``).

The context copies each added file into its files directory, ``files/`` in the local
root that the backend shares with its executors (each executor's directory is
``executor-N`` there), so a task finds the file next to its own directory. Archives are
unpacked into a directory named after the archive.
"""

from __future__ import annotations

import os

from .runtime import current_env

__all__ = ["FILES_DIR_NAME", "SparkFiles"]

FILES_DIR_NAME = "files"


class SparkFiles:
    """Paths of files added with ``SparkContext.addFile`` (class methods only)."""

    _root_directory: str | None = None  # set by the driver's context; None in executors
    _is_running_on_worker = False

    def __init__(self) -> None:
        raise NotImplementedError("Do not construct SparkFiles objects")

    @classmethod
    def get(cls, filename: str) -> str:
        """The absolute path of a file added through ``addFile`` (its base name), on the
        driver or in a task.

        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        ...     _ = f.write("7")
        >>> sc.addFile(f.name)
        >>> name = os.path.basename(f.name)
        >>> await sc.parallelize([1, 2]).map(
        ...     lambda x: x * int(open(SparkFiles.get(name)).read())).collect()
        [7, 14]
        >>> os.unlink(f.name)
        """
        if os.path.isabs(filename) or os.pardir in filename.replace("\\", "/").split("/"):
            raise ValueError(f"SparkFiles.get takes the name of an added file, got "
                             f"{filename!r}")
        return os.path.join(cls.getRootDirectory(), filename)

    @classmethod
    def getRootDirectory(cls) -> str:
        """The directory holding the added files.

        >>> import os
        >>> os.path.isdir(SparkFiles.getRootDirectory())
        True
        """
        env = current_env()
        if env is not None:
            return os.path.join(os.path.dirname(os.path.abspath(env.local_dir)),
                                FILES_DIR_NAME)
        if cls._root_directory is None:
            raise RuntimeError("SparkFiles: no running context (start one first)")
        return cls._root_directory


class AddedFiles:
    """The driver's record of added files: copies them into ``root`` (``files/`` of the
    backend's local root), unpacks archives, and puts ``.py``/``.zip``/``.egg`` files of
    ``addPyFile`` where the driver's and the executors' imports find them (``pyfiles/``,
    on the driver's ``sys.path``, which executors inherit)."""

    def __init__(self, local_root: str) -> None:
        self.root: str = os.path.join(local_root, FILES_DIR_NAME)
        self.py_root: str = os.path.join(local_root, "pyfiles")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.py_root, exist_ok=True)
        self.files: dict[str, str] = {}  # base name -> the path it was added from
        self.archives: dict[str, str] = {}

    def _source(self, path: str) -> str:
        if path.startswith("file://"):
            path = path[len("file://"):]
        path = os.path.abspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"addFile: no such file or directory: {path}")
        return path

    def _claim(self, kind: dict, name: str, src: str) -> bool:
        """Whether ``name`` is new; adding the same path again is a no-op, another path
        under a taken name is refused (as Spark does)."""
        known = self.files.get(name) or self.archives.get(name)
        if known is None:
            kind[name] = src
            return True
        if known != src:
            raise ValueError(f"File {name} was already registered with a different path "
                             f"(old path = {known}, new path = {src})")
        return False

    def add_file(self, path: str, recursive: bool = False) -> str:
        import posixpath
        import shutil

        from . import fs

        if not fs.is_local(path):  # any fsspec filesystem: fetched once, to the driver
            name = posixpath.basename(path.rstrip("/"))
            if not fs.exists(path):
                raise FileNotFoundError(f"addFile: no such file or directory: {path}")
            if fs.isdir(path) and not recursive:
                raise ValueError(f"addFile of a directory needs recursive=True: {path}")
            if self._claim(self.files, name, path):
                fs.get(path, os.path.join(self.root, name), recursive=recursive)
            return name
        src = self._source(path)
        name = os.path.basename(src.rstrip(os.sep))
        if os.path.isdir(src) and not recursive:
            raise ValueError(f"addFile does not support local directories when not running "
                             f"local mode (recursive=False): {src}")
        if self._claim(self.files, name, src):
            dest = os.path.join(self.root, name)
            if os.path.isdir(src):
                shutil.copytree(src, dest)
            else:
                shutil.copyfile(src, dest)
        return name

    def add_archive(self, path: str) -> None:
        import shutil

        src = self._source(path)
        name = os.path.basename(src)
        if self._claim(self.archives, name, src):
            dest = os.path.join(self.root, name)
            try:
                shutil.unpack_archive(src, dest)
            except (shutil.ReadError, ValueError) as exc:
                del self.archives[name]
                shutil.rmtree(dest, ignore_errors=True)
                raise ValueError(f"addArchive: {src} is not an archive shutil can unpack "
                                 f"(.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz): {exc}"
                                 ) from None

    def add_py_file(self, path: str) -> None:
        import importlib
        import shutil
        import zipfile

        name = self.add_file(path)
        src = os.path.join(self.root, name)
        if name.endswith(".py"):
            shutil.copyfile(src, os.path.join(self.py_root, name))
        elif name.endswith((".zip", ".egg", ".jar")):
            with zipfile.ZipFile(src) as zf:
                zf.extractall(self.py_root)
        else:
            raise ValueError(f"addPyFile takes a .py, .zip or .egg file, got {name!r}")
        importlib.invalidate_caches()
