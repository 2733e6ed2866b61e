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
