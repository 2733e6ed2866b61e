"""The local backend tells an exited (zombie) executor from a hung one."""

from __future__ import annotations

import os
import subprocess
import time

from asyncspark.scheduler.backends.local import _exited


def test_exited_tells_zombies_and_reaped_processes_from_live_ones():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert not _exited(proc.pid)
        proc.kill()
        deadline = time.monotonic() + 5
        while not _exited(proc.pid):  # a zombie until reaped
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert _exited(proc.pid)
    assert not _exited(os.getpid())
