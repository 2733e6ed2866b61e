"""Data integrity (issue 11, item 2): shuffle data and disk-stored cached blocks carry
checksums verified on read. A corrupt map output becomes a ``FetchFailed`` naming its
block, so it is unregistered and recomputed and the job stays exact; a corrupt cached
block is dropped and recomputed from lineage.

Computations are counted with a file per partition computation (a side effect that
neither the shuffle's map output reuse nor the cache can hide).
"""

from __future__ import annotations

import asyncio
import collections
import glob
import operator
import os
import random
import uuid

import pytest

from asyncspark import Context, StorageLevel

pytestmark = pytest.mark.asyncio(loop_scope="function")

N, MAPS = 20_000, 4


def marked(sc, marks: str, n: int = N, parts: int = MAPS):
    os.makedirs(marks, exist_ok=True)

    def mark(i, it):
        open(os.path.join(marks, f"{i}-{uuid.uuid4().hex}"), "w").close()
        return it

    return sc.parallelize(range(n), parts).mapPartitionsWithIndex(mark)


def computations(marks: str) -> collections.Counter:
    return collections.Counter(int(name.split("-")[0]) for name in os.listdir(marks))


EXPECTED = {k: sum(x for x in range(N) if x % 13 == k) for k in range(13)}


def _data_files(sc, map_id: int) -> list[str]:
    return glob.glob(os.path.join(sc._backend.local_root, "executor-*",
                                  f"shuffle_*_{map_id}_*.data"))


def _random_bytes(path: str) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(random.Random(7).randbytes(size))


def _flip_a_byte(path: str) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x40]))


@pytest.mark.parametrize("local_read", ["true", "false"])
@pytest.mark.parametrize("damage", [_random_bytes, _flip_a_byte])
async def test_a_corrupt_map_output_is_recomputed_and_the_job_is_exact(tmp_path, damage,
                                                                        local_read):
    marks = str(tmp_path / "marks")
    conf = {"asyncspark.shuffle.localRead": local_read}
    async with Context("local[2]", conf=conf) as sc:
        rdd = marked(sc, marks).map(lambda x: (x % 13, x)).reduceByKey(operator.add, 3)
        assert dict(await asyncio.wait_for(rdd.collect(), 60)) == EXPECTED
        assert computations(marks) == {m: 1 for m in range(MAPS)}
        [path] = _data_files(sc, 1)
        await asyncio.to_thread(damage, path)
        # The map outputs are reused: the reduce tasks read the damaged file.
        assert dict(await asyncio.wait_for(rdd.collect(), 60)) == EXPECTED
        assert sc._dag.fetch_failures >= 1
        assert sc._dag.resubmissions >= 1
        assert computations(marks)[1] == 2  # map 1 ran again
        assert dict(await asyncio.wait_for(rdd.collect(), 60)) == EXPECTED


async def test_a_corrupt_disk_block_is_dropped_and_recomputed(tmp_path):
    marks = str(tmp_path / "marks")
    async with Context("local[1]") as sc:
        rdd = marked(sc, marks, 4000).map(lambda x: x * 3).persist(StorageLevel.DISK_ONLY)
        expected = [x * 3 for x in range(4000)]
        assert await asyncio.wait_for(rdd.collect(), 60) == expected
        assert computations(marks) == {m: 1 for m in range(MAPS)}
        [path] = glob.glob(os.path.join(sc._backend.local_root, "executor-*", "blocks",
                                        f"rdd_{rdd.id()}_2"))
        await asyncio.to_thread(_flip_a_byte, path)
        assert await asyncio.wait_for(rdd.collect(), 60) == expected
        assert computations(marks) == {0: 1, 1: 1, 2: 2, 3: 1}  # only the corrupt one
        assert await asyncio.wait_for(rdd.collect(), 60) == expected
        assert computations(marks)[2] == 2  # and it was stored again
