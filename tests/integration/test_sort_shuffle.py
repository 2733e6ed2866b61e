"""sortByKey's reduce side end to end: the in-memory sort of marshaled bodies
(``shuffle.sorted_runs``), its fallbacks (other value types, other keys, a partition over
the budget, which spills) and a corrupt block (FetchFailed, recomputed)."""

from __future__ import annotations

import asyncio
import glob
import random

import pytest

import asyncspark
from asyncspark import Context

# Executors are the same on either loop: one is enough.
pytestmark = pytest.mark.asyncio(loop_scope="function", loop_factories=["uvloop"])


class Ends(asyncspark.SparkListener):
    def __init__(self):
        self.ends = []

    def onTaskEnd(self, e):
        self.ends.append(e)

    def total(self, name):
        return sum(e.metrics.get(name, 0) for e in self.ends)


def records(i, n, values):
    r = random.Random(i)
    out = []
    for j in range(n):
        k = r.randrange(-(2**62), 2**62) if j % 3 == 0 else r.randrange(-50, 2000)
        out.append((k, values(j)))
    return out


VALUE_KINDS = {
    "none": lambda j: None,
    "simple": lambda j: (None, True, j, 2.5 * j, -(2**40) * j, False)[j % 6],
    "strings": lambda j: f"v{j}",
}


async def test_sort_by_int_keys_with_each_kind_of_value():
    async with Context("local[2]") as sc:
        ends = Ends()
        sc.addSparkListener(ends)
        expected_reads = 0
        for kind, values in VALUE_KINDS.items():
            data = [kv for i in range(4) for kv in records(i, 3000, values)]
            rdd = sc.parallelize(range(4), 4).flatMap(
                lambda i, values=values: records(i, 3000, values))
            for ascending in (True, False):
                got = await rdd.sortByKey(ascending, 3).collect()
                assert [k for k, _ in got] == sorted((k for k, _ in data),
                                                     reverse=not ascending), kind
                # the same records, of the same types (a bool stays a bool)
                assert sorted(map(repr, got)) == sorted(map(repr, data)), kind
                expected_reads += len(data)
        await asyncio.sleep(0.05)
        assert ends.total("shuffleReadRecords") == expected_reads


async def test_a_partition_over_the_budget_spills_and_stays_sorted():
    n = 15_000
    data = [kv for i in range(4) for kv in records(i, n, VALUE_KINDS["none"])]
    async with Context("local[2]", conf={"asyncspark.shuffle.memoryBudget": "1m"}) as sc:
        ends = Ends()
        sc.addSparkListener(ends)
        rdd = sc.parallelize(range(4), 4).flatMap(
            lambda i: records(i, n, VALUE_KINDS["none"]))
        got = await rdd.sortByKey(False, 2).collect()
        await asyncio.sleep(0.05)
    assert [k for k, _ in got] == sorted((k for k, _ in data), reverse=True)
    assert len(got) == len(data)
    assert ends.total("shuffle_spill_bytes") > 0
    assert ends.total("shuffleReadRecords") == len(data)


async def test_a_corrupt_block_of_a_sort_is_fetch_failed_and_recomputed(tmp_path):
    data = [kv for i in range(4) for kv in records(i, 2000, VALUE_KINDS["simple"])]
    async with Context("local[2]", conf={"spark.local.dir": str(tmp_path)}) as sc:
        rdd = sc.parallelize(range(4), 4).flatMap(
            lambda i: records(i, 2000, VALUE_KINDS["simple"]))
        out = rdd.sortByKey(True, 2)
        assert await out.count() == len(data)
        files = glob.glob(str(tmp_path / "**" / "shuffle_*.data"), recursive=True)
        assert files
        for path in files:  # flip a byte inside the first batch's body
            with open(path, "r+b") as f:  # noqa: ASYNC230 (a test's few bytes)
                f.seek(20)
                b = f.read(1)
                f.seek(20)
                f.write(bytes([b[0] ^ 0xFF]))
        got = await asyncio.wait_for(out.collect(), 30)
        assert [k for k, _ in got] == sorted(k for k, _ in data)
        assert sc._dag.fetch_failures >= 1


@pytest.mark.parametrize("local_read", ["true", "false"])
async def test_the_map_stage_cuts_the_sampling_pass_sorted_runs(tmp_path, local_read):
    """The sampling pass writes each partition as sorted runs and the map stage cuts them
    instead of computing its input again (where it can read them: with local reads off,
    a map task on the other executor computes its input); either way the answer is the
    same and no run file is left once the shuffle is cleaned."""
    conf = {"spark.local.dir": str(tmp_path), "asyncspark.shuffle.localRead": local_read}
    data = [kv for i in range(6) for kv in records(i, 5000, VALUE_KINDS["simple"])]
    async with Context("local[2]", conf=conf) as sc:
        made = sc.accumulator(0)

        def gen(i):
            out = records(i, 5000, VALUE_KINDS["simple"])
            made.add(len(out))
            return out

        out = sc.parallelize(range(6), 6).flatMap(gen).sortByKey(True, 4)
        got = await out.collect()
        assert [k for k, _ in got] == sorted(k for k, _ in data)
        assert sorted(map(repr, got)) == sorted(map(repr, data))
        if local_read == "true":
            assert made.value == len(data)  # computed once, by the sampling pass
        else:
            assert len(data) <= made.value < 2 * len(data)
        leftover = glob.glob(str(tmp_path / "**" / "*.sorted-runs*"), recursive=True)
        if local_read == "true":
            assert leftover == []  # each map task deleted the runs it cut
        del out
        import gc

        gc.collect()
        await asyncio.sleep(0.3)  # the ContextCleaner removes the shuffle's files
    assert glob.glob(str(tmp_path / "**" / "*.sorted-runs*"), recursive=True) == []
