"""reduceByKey(operator.add) of int pairs end to end: the sums read straight from the
marshaled batches (``shuffle.sum_read``), and the hand-over to the general merger when a
batch holds something else or the table outgrows the budget."""

from __future__ import annotations

import asyncio
import operator
from collections import Counter

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


def ints(i, n, nkeys):
    return [((j * 2654435761) % nkeys - nkeys // 3, j % 7 - 3) for j in range(i * n, (i + 1) * n)]


def big(i):
    return [(k, 2**62 + i) for k in range(5)] + [(-1, -(2**63))] * 3


def mixed(i):
    out = ints(i, 500, 100)
    if i == 2:
        out += [("str", 1), (7, 2.5), (8, True), (2**70, 1), (9, 2**70)]
    return out


def fold(records):
    d: dict = {}
    for k, v in records:
        d[k] = d[k] + v if k in d else v
    return d


async def test_sums_of_int_pairs_match_a_dict_fold_on_every_path():
    async with Context("local[2]", conf={"asyncspark.shuffle.memoryBudget": "1m"}) as sc:
        ends = Ends()
        sc.addSparkListener(ends)
        cases = {
            "few keys": (lambda i: ints(i, 3000, 50), 4),
            "sums beyond 64 bits": (big, 4),
            "other types in one batch": (mixed, 4),
            # 80k distinct keys into 2 partitions: the table outgrows the 1 MiB budget
            "over the budget": (lambda i: ints(i, 20_000, 80_000), 4),
        }
        spilled_before = 0
        for name, (gen, parts) in cases.items():
            data = [kv for i in range(parts) for kv in gen(i)]
            rdd = sc.parallelize(range(parts), parts).flatMap(gen)
            for combine in (True, False):
                if combine:
                    out = rdd.reduceByKey(operator.add, 2)
                else:  # no map-side combine: every pair is summed on the reduce side
                    out = rdd.combineByKey(lambda v: v, operator.add, operator.add, 2)
                got = await out.collect()
                assert Counter(k for k, _ in got) == Counter(set(k for k, _ in data)), name
                assert dict(got) == fold(data), name
                assert {type(v) for _, v in got} == {type(v) for v in fold(data).values()}
            await asyncio.sleep(0.05)
            spilled = ends.total("shuffle_spill_bytes")
            if name == "over the budget":
                assert spilled > spilled_before  # the general merger took over and spilled
            spilled_before = spilled
