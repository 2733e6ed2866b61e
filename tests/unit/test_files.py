"""atomic_file: all of a file or none of it, under either name."""

from __future__ import annotations

import os

import pytest

from asyncspark._files import atomic_file


def test_atomic_file_renames_when_done(tmp_path):
    path = str(tmp_path / "out")
    with atomic_file(path) as f:
        f.write(b"abc")
        assert not os.path.exists(path)  # not visible until complete
        assert os.path.exists(path + ".tmp")
    assert open(path, "rb").read() == b"abc"
    assert os.listdir(tmp_path) == ["out"]


def test_atomic_file_leaves_nothing_when_the_block_raises(tmp_path):
    path = str(tmp_path / "out")
    with pytest.raises(KeyboardInterrupt), atomic_file(path, str(tmp_path / "t")) as f:
        f.write(b"partial")
        raise KeyboardInterrupt  # BaseException too, as a task kill is
    assert os.listdir(tmp_path) == []


def test_accumulator_param_base_class_names_what_is_missing():
    from asyncspark import AccumulatorParam

    class Half(AccumulatorParam):
        def zero(self, value):
            return 0

    with pytest.raises(TypeError, match=r"Half does not define addInPlace"):
        Half().addInPlace(1, 2)


def test_atomic_file_names_the_path_of_a_write_that_failed(tmp_path):
    import errno

    path = str(tmp_path / "out")
    with pytest.raises(OSError) as info, atomic_file(path):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a full disk's write()
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == path
    assert path in str(info.value)
    assert os.listdir(tmp_path) == []


def test_naming_keeps_an_error_that_names_its_file_and_its_subclass():
    import errno

    from asyncspark._files import naming

    named = OSError(errno.ENOENT, "gone", "/a")
    assert naming(named, "/b") is named
    other = naming(OSError(errno.ENOENT, "gone"), "/b", "reading a spill file")
    assert isinstance(other, FileNotFoundError)
    assert str(other) == "[Errno 2] gone (reading a spill file): '/b'"
