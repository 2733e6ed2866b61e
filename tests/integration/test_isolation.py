"""Applications sharing one ``spark.local.dir`` (issue 11, item 1): each gets a fresh
private directory (``mkdtemp``, mode 0700) under it, its executors' directories are made
exclusively inside that, and stopping one application deletes only its own files."""

from __future__ import annotations

import asyncio
import glob
import operator
import os
import pickle
import stat

import pytest

from asyncspark import Context
from asyncspark.errors import ConfigError

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _pairs(tag: str, n: int):
    return [(i % 7, f"{tag}{i}") for i in range(n)]


def _grouped(tag: str, n: int) -> dict:
    out: dict = {}
    for k, v in _pairs(tag, n):
        out.setdefault(k, []).append(v)
    return out


def _shuffle_files(sc: Context) -> list[str]:
    return glob.glob(os.path.join(sc._backend.local_root, "executor-*", "shuffle_*"))


async def _grouped_now(rdd) -> dict:
    return {k: sorted(vs) for k, vs in await asyncio.wait_for(rdd.collect(), 60)}


async def test_two_contexts_on_one_local_dir_keep_their_shuffles_apart(tmp_path):
    conf = {"spark.local.dir": str(tmp_path)}
    async with Context("local[2]", conf=conf) as a, Context("local[2]", conf=conf) as b:
        # Same shuffle ids, map ids and attempt numbers in both: the same file names.
        ra = a.parallelize(_pairs("a", 2000), 4).groupByKey(3).mapValues(list)
        rb = b.parallelize(_pairs("b", 3000), 4).groupByKey(3).mapValues(list)
        got_a, got_b = await asyncio.gather(_grouped_now(ra), _grouped_now(rb))
        assert got_a == _grouped_sorted("a", 2000)
        assert got_b == _grouped_sorted("b", 3000)
        assert a._backend.local_root != b._backend.local_root
        for sc in (a, b):
            assert os.path.dirname(sc._backend.local_root) == str(tmp_path)
        # Reuse of the map outputs (no map stage runs again) reads each one's own files.
        got_a, got_b = await asyncio.gather(_grouped_now(ra), _grouped_now(rb))
        assert got_a == _grouped_sorted("a", 2000)
        assert got_b == _grouped_sorted("b", 3000)
        b_files = sorted(_shuffle_files(b))
        assert b_files
        await a.stop()
        assert os.listdir(tmp_path) == [os.path.basename(b._backend.local_root)]
        assert sorted(_shuffle_files(b)) == b_files  # the other's files are untouched
        assert await _grouped_now(rb) == _grouped_sorted("b", 3000)
    assert os.listdir(tmp_path) == []


def _grouped_sorted(tag: str, n: int) -> dict:
    return {k: sorted(vs) for k, vs in _grouped(tag, n).items()}


class _Marker:
    """Unpickling this creates a file: what a swapped-in shuffle file would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("owner", ["this user", "another user"])
async def test_a_pre_created_executor_dir_is_never_used(tmp_path, owner):
    planted = tmp_path / "executor-0"
    planted.mkdir(mode=0o700)  # even one owned by this user, with the right mode
    marker = tmp_path / "pwned"
    payload = pickle.dumps([_Marker(str(marker))])
    bait = {}
    for name in ("shuffle_0_0_0.data", "shuffle_0_1_0.data"):
        (planted / name).write_bytes(len(payload).to_bytes(4, "big") + payload)
        bait[name] = (planted / name).read_bytes()
    if owner == "another user":
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        for p in (planted, *planted.iterdir()):
            os.chown(p, 65534, 65534)  # nobody
        os.chmod(tmp_path, 0o1777)  # a world-writable spark.local.dir, as /tmp
    async with Context("local[2]", conf={"spark.local.dir": str(tmp_path)}) as sc:
        rdd = sc.parallelize(range(100), 2).map(lambda x: (x % 5, x))
        reduced = rdd.reduceByKey(operator.add, 2)  # referenced: the cleaner keeps its files
        got = dict(await asyncio.wait_for(reduced.collect(), 60))
        assert got == {k: sum(x for x in range(100) if x % 5 == k) for k in range(5)}
        root = sc._backend.local_root
        assert os.path.dirname(root) == str(tmp_path)
        assert root != str(planted)
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        for d in glob.glob(os.path.join(root, "executor-*")):
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert _shuffle_files(sc)
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == ["executor-0"]  # not ours: left as it was
    assert {p.name: p.read_bytes() for p in planted.iterdir()} == bait


async def test_an_unusable_local_dir_is_a_config_error_naming_it(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(ConfigError, match=f"spark.local.dir '{not_a_dir}'"):
        await Context("local[1]", conf={"spark.local.dir": str(not_a_dir)}).start()
