"""``asyncspark --version`` and the examples' ``--help``."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import asyncspark
from asyncspark.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"asyncspark {asyncspark.__version__}\n"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_help_renders(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--help"],
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("usage:")
    assert out.stderr == ""
    assert "%" not in out.stdout.split("\n", 1)[0]  # no unformatted placeholders
