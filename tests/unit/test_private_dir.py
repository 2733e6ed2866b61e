"""The executor trusts (unpickles) what is in its local directory: it refuses one that is
not a directory private to its user (issue 11, item 1)."""

from __future__ import annotations

import os

import pytest

from asyncspark.executor.executor import _private_dir_problem


def test_the_executor_refuses_a_local_dir_others_can_enter(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o777)
    assert "lets other users in" in _private_dir_problem(str(d))
    os.chmod(d, 0o700)
    assert _private_dir_problem(str(d)) is None
    f = tmp_path / "file"
    f.write_text("")
    assert _private_dir_problem(str(f)) == "not a directory"
    assert "cannot stat" in _private_dir_problem(str(tmp_path / "missing"))


def test_the_executor_refuses_a_local_dir_of_another_user(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    assert _private_dir_problem(str(d)) == f"owned by uid 65534, not {os.getuid()}"
