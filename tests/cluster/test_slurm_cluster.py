"""asyncspark on a real SLURM cluster on this machine (slurmcluster.py): a slurmctld and
two slurmd, n1 on 127.0.0.21 and n2 on 127.0.0.22, one CPU each, SlurmdTimeout 3 s. The
context asks for 2 executors: one SLURM job each, one per node.

Checked: a job SLURM refuses fails the start with sbatch's message; a start timing out
with a job still queued cancels it; executors on both node addresses (never loopback
127.0.0.1); word count and join exact with shuffle blocks fetched across nodes; scaling
down (the chosen job cancelled, no replacement) and up again; a killed node (its slurmd
and its job's processes, SIGKILL) lost within 5 s (its connection), the result exact,
the cancelled job's node then found not responding by SLURM (the executor
``host_lost``), the node back and the replacement on it; after ``stop()`` no job in
squeue, no process, no directory.
"""

from __future__ import annotations

import asyncio
import collections
import glob
import os
import time
from operator import add

import pytest
import pytest_asyncio
import slurmcluster
from clusterjobs import hosts, text, wait_for

from asyncspark import Context
from asyncspark.errors import ExecutorLostError
from asyncspark.scheduler.backends.local import _exited

pytestmark = pytest.mark.asyncio(loop_scope="module", loop_factories=["asyncio"])

NODES = {"n1": "127.0.0.21", "n2": "127.0.0.22"}
ADDRS = set(NODES.values())
_why = slurmcluster.missing()
if _why:
    pytest.skip(_why, allow_module_level=True)


@pytest.fixture(scope="module")
def cluster():
    c = slurmcluster.SlurmCluster(NODES, slurmd_timeout=3)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def slurm_conf(cluster, n: int = 2) -> dict:
    return {"spark.executor.instances": str(n), "asyncspark.rpc.host": "127.0.0.1",
            "asyncspark.slurm.pollInterval": "500ms", "asyncspark.slurm.cancelTimeout": "4s",
            "asyncspark.slurm.logDirectory": cluster.tmp,
            "spark.local.dir": os.path.join(cluster.tmp, "scratch"),
            "spark.default.parallelism": "4"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sc(cluster):
    async with Context(f"slurm://{cluster.partition}", app_name="slurm-tests",
                       conf=slurm_conf(cluster)) as ctx:
        yield ctx


class Metrics:
    def __init__(self) -> None:
        self.tasks: list = []
        self.stages_done = 0

    def onTaskEnd(self, event) -> None:
        self.tasks.append(event)

    def onStageCompleted(self, event) -> None:
        self.stages_done += 1

    def total(self, key: str) -> int:
        return sum(t.metrics.get(key, 0) for t in self.tasks if t.metrics)


def pids(sc) -> dict[str, int]:
    return {eid: e.pid for eid, e in sc._task_scheduler.executors.items()}


async def word_count(sc, lines, parts: int = 4) -> dict:
    return dict(await sc.parallelize(lines, 6).flatMap(str.split).map(lambda w: (w, 1))
                .reduceByKey(add, parts).collect())


async def test_jobs_the_cluster_refuses_fail_the_start_clearly(cluster):
    # Two CPUs per executor: no node has them, sbatch refuses every job.
    conf = {**slurm_conf(cluster, 1), "spark.executor.cores": "2",
            "asyncspark.executor.startBackoff": "100ms"}
    with pytest.raises(ExecutorLostError,
                       match=r"sbatch exited with code 1: .*node configuration is not"):
        async with Context("slurm", app_name="slurm-refused", conf=conf):
            pass
    assert cluster.active_jobs() == []


async def test_a_start_timing_out_cancels_the_pending_job(cluster):
    # Three executors on two one-CPU nodes: the third job waits in the queue until the
    # registration timeout, then start() fails and the job is cancelled, none left.
    conf = {**slurm_conf(cluster, 3), "asyncspark.executor.registrationTimeout": "6s"}
    with pytest.raises(ExecutorLostError, match="did not register within 6"):
        async with Context("slurm", app_name="slurm-pending", conf=conf):
            pass
    assert cluster.active_jobs() == []
    assert cluster.job_processes() == []


async def test_executors_are_jobs_on_both_nodes(sc, cluster):
    placed = hosts(sc)
    assert len(placed) == 2
    assert set(placed.values()) == ADDRS, placed  # each node's NodeAddr, never 127.0.0.1
    jobs = {j[0]: j for j in cluster.jobs("running")}
    handles = sc._backend.cluster.handles
    assert sorted(handles) == sorted(placed)
    assert {jobs[h.job.job_id][2] for h in handles.values()} == set(NODES)


async def test_word_count_and_join_exact_across_nodes(sc):
    metrics = Metrics()
    sc.addSparkListener(metrics)
    lines = text(1, 2000)
    assert await word_count(sc, lines) == collections.Counter(
        w for line in lines for w in line.split())
    left = [(i % 97, i) for i in range(3000)]
    right = [(k, -k) for k in range(0, 97, 2)]
    joined = sorted(await sc.parallelize(left, 5).join(sc.parallelize(right, 3), 4).collect())
    rmap = dict(right)
    assert joined == sorted((k, (v, rmap[k])) for k, v in left if k in rmap)
    sc.listener_bus.flush()  # the jobs' events, posted before their results came
    where = collections.Counter(t.executorId for t in metrics.tasks)
    assert metrics.total("shuffleRemoteBlocksFetched") > 0, where  # blocks crossed nodes
    assert {t.executorId for t in metrics.tasks} == set(hosts(sc))  # both nodes worked


async def test_scale_down_and_up(sc, cluster):
    backend = sc._backend
    lines = text(2, 500)
    expected = collections.Counter(w for line in lines for w in line.split())
    newest = max(hosts(sc), key=int)
    job_id = backend.cluster.handles[newest].job.job_id
    backend.scale(1, remove=[newest])
    await wait_for(lambda: len(hosts(sc)) == 1, 30, "down to 1 executor")
    await wait_for(lambda: job_id not in {j[0] for j in cluster.active_jobs()}, 15,
                   f"job {job_id} cancelled")
    await asyncio.sleep(1.0)  # and no replacement comes
    assert len(hosts(sc)) == 1
    assert len(cluster.active_jobs()) == 1
    assert await word_count(sc, lines) == expected
    backend.scale(2)
    await wait_for(lambda: len(hosts(sc)) == 2, 60, "a second executor registered")
    assert set(hosts(sc).values()) == ADDRS
    assert await word_count(sc, lines, 6) == expected


def slow_reduce(kv):
    time.sleep(0.3)
    return kv


async def test_killed_node_is_survived_exactly(sc, cluster):
    metrics = Metrics()
    sc.addSparkListener(metrics)
    placed = hosts(sc)
    victim = max(placed, key=int)
    victim_addr = placed[victim]
    victim_node = next(n for n, a in NODES.items() if a == victim_addr)
    data = [(i % 40, i) for i in range(20000)]
    expected = collections.Counter()
    for k, v in data:
        expected[k] += v
    job = asyncio.ensure_future(
        sc.parallelize(data, 8).reduceByKey(add, 8).map(slow_reduce).collect())
    await wait_for(lambda: metrics.stages_done >= 1 or job.done(), 60, "the map stage done")
    assert not job.done(), "the job ended before the node could be killed"
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.kill_node, victim_node, [pids(sc)[victim]])
    detected = await wait_for(lambda: victim not in hosts(sc), 5.0,
                              f"executor {victim} on {victim_node} declared lost")
    result = dict(await asyncio.wait_for(job, 120))
    assert result == dict(expected)
    print(f"node {victim_node} killed: executor {victim} lost {detected:.2f}s after the "
          f"kill, the result exact {time.monotonic() - killed_at:.2f}s after it")
    # SLURM finds the node not responding: the cancelled job's executor is reported lost
    # with its host, then the node is DOWN.
    await wait_for(lambda: sc._backend.hosts_lost >= 1, 30, "the executor's host lost")
    await wait_for(lambda: cluster.node_states()[victim_node].startswith("down"), 30,
                   f"node {victim_node} DOWN")
    # The node comes back; the replacement job (pending meanwhile) runs on it.
    await asyncio.to_thread(cluster.restart_node, victim_node)
    await wait_for(lambda: len(hosts(sc)) == 2, 30, "a replacement executor")
    assert set(hosts(sc).values()) == ADDRS
    assert victim not in hosts(sc)


async def test_stop_leaves_no_job_process_or_directory(sc, cluster):
    # Free a node for this test's context (the module's one keeps the other).
    sc._backend.scale(1, remove=[max(hosts(sc), key=int)])
    await wait_for(lambda: len(hosts(sc)) == 1 and len(cluster.active_jobs()) == 1, 30,
                   "the module's context down to 1 job")
    before = set(cluster.job_processes())
    scratch = os.path.join(cluster.tmp, "scratch")
    ctx = Context("slurm", app_name="slurm-close", conf=slurm_conf(cluster, 1))
    async with ctx:
        assert await ctx.parallelize(range(100), 2).map(lambda x: (x % 3, x))\
            .reduceByKey(add).count() == 3
        backend = ctx._backend.cluster
        job_ids = [h.job.job_id for h in backend.handles.values()]
        executor_pids = list(pids(ctx).values())
        root = ctx._backend.local_root
        assert job_ids
        assert executor_pids
        node_dirs = glob.glob(os.path.join(scratch, f"asyncspark-slurm-{job_ids[0]}-*"))
        assert node_dirs  # the executor's scratch directory on its node
    assert all(_exited(pid) for pid in executor_pids)
    assert not {j[0] for j in cluster.active_jobs()} & set(job_ids)  # no job left
    assert set(cluster.job_processes()) <= before  # no slurmstepd or script either
    assert not os.path.exists(root)  # noqa: ASYNC240 - a test's check
    assert not any(os.path.exists(d) for d in node_dirs)  # noqa: ASYNC240
    assert not backend.handles
    assert not backend.jobs.jobs
