"""Files written on a full disk (issue 11, item 7): a broadcast that does not fit leaves
no partial file, its error names the path, and later broadcasts work once there is room.
The disk is a 1 MiB tmpfs (mounting it needs root: skipped, saying so, without)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess

import pytest

from asyncspark import Context

pytestmark = pytest.mark.asyncio(loop_scope="function")


@contextlib.contextmanager
def tiny_disk(path):
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a 1 MiB tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


async def test_a_broadcast_on_a_full_disk_leaves_no_partial_file(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        async with Context("local[1]", conf={"spark.local.dir": str(disk)}) as sc:
            before = _files(disk)
            with pytest.raises(OSError) as info:
                sc.broadcast(os.urandom(2 << 20))  # 2 MiB into a 1 MiB disk
            assert info.value.errno == errno.ENOSPC
            bdir = os.path.join(sc._backend.local_root, "driver-broadcasts")
            assert info.value.filename == os.path.join(bdir, "broadcast-0")
            assert "broadcast-0" in str(info.value)
            assert _files(disk) == before  # nothing partial keeps the disk full
            small = sc.broadcast(list(range(1000)))
            got = await asyncio.wait_for(
                sc.parallelize(range(4), 2).map(lambda i: small.value[i * 10]).collect(), 60)
            assert got == [0, 10, 20, 30]
        assert os.listdir(disk) == []
