"""What an executor imports when it unpickles its first task binary.

That import runs inside the executor's first task, so every module it pulls in delays
that task on every executor, competing for the CPU with the driver and the other
executors while a job runs (the first task of the second executor lands in the middle of
the first job that needs both). The lineage modules a task runs are needed; the driver's
planning machinery (the stage graph, map-stage functions, HyperLogLog, the schedulers and
the Context) is not: it grew the first task of ``parallelize(range(10000), 10000).count()``
from 7 to 18 imported modules and cost the ``bench throughput`` scenario about 15% after
the lineage refactoring.
"""

import subprocess
import sys

from asyncspark import planner
from asyncspark._accel import count
from asyncspark.rdds.collection import ParallelCollectionRDD

# What a registered executor has imported before its first task: its own modules, the
# block manager (at registration) and the serializers (its task thread, once registered).
_FIRST_TASK = """
import pickle, sys
import asyncspark.executor.executor, asyncspark.storage.block_manager, asyncspark.serializers
before = set(sys.modules)
rdd, func = pickle.loads(sys.stdin.buffer.read())
assert func(rdd.iterator(1, None)) == 5
print(" ".join(sorted(m for m in set(sys.modules) - before if m.startswith("asyncspark"))))
"""

# The lineage an executor runs a count() of parallelize() with; nothing else of asyncspark.
LINEAGE = {
    "asyncspark._accel", "asyncspark._speedups", "asyncspark.aggregations",
    "asyncspark.dependency", "asyncspark.functions", "asyncspark.pairs",
    "asyncspark.partitioner", "asyncspark.planner", "asyncspark.rdd", "asyncspark.rdds",
    "asyncspark.rdds.collection", "asyncspark.statcounter",
}


def _first_task_imports(binary: bytes) -> set[str]:
    out = subprocess.run([sys.executable, "-c", _FIRST_TASK], input=binary,
                         capture_output=True, check=True, timeout=60).stdout
    return set(out.decode().split())


def test_first_task_binary_imports_only_the_lineage_it_runs():
    binary = planner.task_binary(ParallelCollectionRDD(None, range(10), 2), count)
    imported = _first_task_imports(binary)
    assert "asyncspark.rdds.collection" in imported  # the probe did import the lineage
    extra = imported - LINEAGE
    assert not extra, (
        f"unpickling a parallelize() task binary on an executor also imports {sorted(extra)}: "
        "driver-side modules imported at the top of a lineage module run in every "
        "executor's first task; import them where they are used")
