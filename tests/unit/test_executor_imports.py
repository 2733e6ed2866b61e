"""What an executor imports when it unpickles its first task binary.

That import runs inside the executor's first task, so every module it pulls in delays
that task on every executor, competing for the CPU with the driver and the other
executors while a job runs (in ``bench latency throughput`` the second executor gets its
first task in the middle of the 10,000-task job). The lineage modules a task runs are
needed; the driver's planning machinery (the stage graph, map-stage functions,
HyperLogLog, the schedulers and the Context) is not: after the lineage refactoring it
grew that first task from 7 to 18 imported modules, about 10 ms more executor CPU inside
the job, and the scenario's tasks/s fell by about 15%. Executors also import
``planner.TASK_MODULES`` once registered (``ExecutorSettings.preload``), so that with
the binaries of common jobs the first task imports nothing.
"""

import subprocess
import sys

from asyncspark import planner
from asyncspark._accel import count
from asyncspark.executor.executor import preload
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
    # the RDD class's sampling mixin and the approximate results its actions return
    "asyncspark.sampling", "asyncspark.approx",
    # the RDD class's mixin of core actions
    "asyncspark.rdd_actions",
    # the partition function of map(), filter() and the other record pipelines
    "asyncspark.rdds.piped",
}


def _imports_of(probe: str, binary: bytes) -> list[str]:
    """The asyncspark modules a fresh interpreter running ``probe`` imports when it
    unpickles (and runs) ``binary``."""
    done = subprocess.run([sys.executable, "-c", probe], input=binary,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().split()


def test_first_task_binary_imports_only_the_lineage_it_runs():
    binary = planner.task_binary(ParallelCollectionRDD(None, range(10), 2), count)
    imported = set(_imports_of(_FIRST_TASK, binary))
    assert "asyncspark.rdds.collection" in imported  # the probe did import the lineage
    extra = imported - LINEAGE
    assert not extra, (
        f"unpickling a parallelize() task binary on an executor also imports {sorted(extra)}: "
        "driver-side modules imported at the top of a lineage module run in every "
        "executor's first task; import them where they are used")


_AFTER_PRELOAD = """
import pickle, sys
import asyncspark.executor.executor, asyncspark.storage.block_manager, asyncspark.serializers
from asyncspark.executor.executor import preload
from asyncspark.planner import TASK_MODULES
assert preload(TASK_MODULES, "0") == []
before = set(sys.modules)
rdd, func = pickle.loads(sys.stdin.buffer.read())
assert func(rdd.iterator(1, None)) == 5
print(" ".join(sorted(m for m in set(sys.modules) - before if m.startswith("asyncspark"))))
"""


def test_preloaded_executor_imports_nothing_in_the_first_task():
    """What the driver tells executors to preload covers the binary of a job of
    parallelize, map and filter: its first task on an executor imports nothing."""
    rdd = ParallelCollectionRDD(None, range(10), 2).map(abs).filter(bool)
    binary = planner.task_binary(rdd, count)
    assert _imports_of(_AFTER_PRELOAD, binary) == []


def test_preload_logs_and_skips_a_module_that_does_not_import(caplog):
    failed = preload(("asyncspark.no_such_module", "asyncspark.functions"), "7")
    assert failed == ["asyncspark.no_such_module"]
    assert "executor 7: cannot preload asyncspark.no_such_module" in caplog.text
