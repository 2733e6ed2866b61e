"""asyncspark on a real 3-node Ray cluster on this machine (raycluster.py): nodes on
127.0.0.11 (head), .12 and .13, one CPU and one ``asyncspark_executor`` unit each, token
authentication on. The context asks for 2 executors (SPREAD placement group).

Checked: executors on different node IPs (never loopback 127.0.0.1); word count and
join exact with shuffle blocks fetched across nodes; scaling up to 3 and down to 2;
SIGKILL of a node's whole process group mid-shuffle detected within 5 s, the lost map
outputs recomputed, the result exact; after ``stop()`` no actor, executor process or
directory is left (that context runs with mutual TLS on: its executor's connections to
the driver are encrypted, the Ray actor's child got the files' paths in its environment);
the cluster listens on no fixed port (the fixture gives Ray free ports for everything it
would otherwise bind at a fixed default); dynamic allocation grows from no executor to one
per free node under a backlog and back to none when idle.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from operator import add

import pytest
import pytest_asyncio
import raycluster  # first: sets Ray's auth environment before ray is imported
from clusterjobs import hosts, text, wait_for

pytest.importorskip("ray", reason="ray is not installed (pip install 'asyncspark[ray]'; "
                                  ".ci/run does)")

import ray

from asyncspark import Context
from asyncspark.scheduler.backends.local import _exited

pytestmark = pytest.mark.asyncio(loop_scope="module", loop_factories=["asyncio"])

HEAD, W1, W2 = "127.0.0.11", "127.0.0.12", "127.0.0.13"


@pytest.fixture(scope="module")
def cluster():
    c = raycluster.RayCluster(HEAD, [W1, W2], head_cpus=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def ray_conf(cluster, n: int = 2) -> dict:
    return {"spark.executor.instances": str(n),
            "asyncspark.ray.executorResource": raycluster.RESOURCE,
            "asyncspark.ray.nodeIpAddress": cluster.head_ip, "spark.default.parallelism": "4"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sc(cluster):
    os.environ["RAY_ADDRESS"] = cluster.address
    try:
        async with Context("ray", app_name="ray-tests", conf=ray_conf(cluster)) as ctx:
            yield ctx
    finally:
        os.environ.pop("RAY_ADDRESS", None)


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




async def test_executors_run_on_different_nodes(sc, cluster):
    placed = hosts(sc)
    assert len(placed) == 2
    assert len(set(placed.values())) == 2, placed
    assert set(placed.values()) <= cluster.ips, placed  # the node's IP, never 127.0.0.1
    # Each executor's shuffle server is advertised at its node's address too (what
    # other executors fetch from: a loopback address here would break across hosts).
    shuffled = sc.parallelize(range(100), 4).map(lambda x: (x % 5, x)).reduceByKey(add, 2)
    assert len(await shuffled.collect()) == 5
    outputs = sc._task_scheduler.core.map_outputs
    statuses = [st for sid in list(sc._dag.shuffle_stages) if outputs.has_shuffle(sid)
                for st in outputs.statuses(sid)]
    assert statuses
    assert all(st[1] == placed[st[0]] for st in statuses), statuses


async def test_word_count_and_join_exact_with_cross_node_fetches(sc):
    metrics = Metrics()
    sc.addSparkListener(metrics)
    lines = text(1, 2000)
    counts = dict(await sc.parallelize(lines, 6).flatMap(str.split)
                  .map(lambda w: (w, 1)).reduceByKey(add, 4).collect())
    assert counts == collections.Counter(w for line in lines for w in line.split())
    left = [(i % 97, i) for i in range(3000)]
    right = [(k, -k) for k in range(0, 97, 2)]
    joined = sorted(await sc.parallelize(left, 5).join(sc.parallelize(right, 3), 4).collect())
    rmap = dict(right)
    assert joined == sorted((k, (v, rmap[k])) for k, v in left if k in rmap)
    sc.listener_bus.flush()  # the jobs' events, posted before their results came
    where = collections.Counter(t.executorId for t in metrics.tasks)
    assert metrics.total("shuffleRemoteBlocksFetched") > 0, where  # blocks crossed nodes
    assert metrics.total("shuffleRemoteBytesRead") > 0
    assert {t.executorId for t in metrics.tasks} == set(hosts(sc))  # both nodes worked


async def test_scale_up_and_down(sc, cluster):
    backend = sc._backend
    backend.scale(3)
    await wait_for(lambda: len(hosts(sc)) == 3, 90, "a third executor registered")
    assert set(hosts(sc).values()) == cluster.ips  # one per node (one CPU each)
    lines = text(2, 500)
    expected = collections.Counter(w for line in lines for w in line.split())
    got = dict(await sc.parallelize(lines, 6).flatMap(str.split).map(lambda w: (w, 1))
               .reduceByKey(add, 6).collect())
    assert got == expected
    newest = max(hosts(sc), key=int)
    backend.scale(2, remove=[newest])
    await wait_for(lambda: len(hosts(sc)) == 2, 30, "back to 2 executors")
    await asyncio.sleep(1.0)  # and no replacement comes
    assert len(hosts(sc)) == 2
    assert newest not in hosts(sc)
    got = dict(await sc.parallelize(lines, 6).flatMap(str.split).map(lambda w: (w, 1))
               .reduceByKey(add, 6).collect())
    assert got == expected


def slow_reduce(kv):
    time.sleep(0.3)
    return kv


async def test_node_killed_mid_shuffle_is_lost_fast_and_recomputed(sc, cluster):
    metrics = Metrics()
    sc.addSparkListener(metrics)
    placed = hosts(sc)
    victim_eid, victim_ip = next((e, h) for e, h in sorted(placed.items()) if h != cluster.head_ip)
    data = [(i % 40, i) for i in range(20000)]
    expected = collections.Counter()
    for k, v in data:
        expected[k] += v
    job = asyncio.ensure_future(
        sc.parallelize(data, 8).reduceByKey(add, 8).map(slow_reduce).collect())
    await wait_for(lambda: metrics.stages_done >= 1 or job.done(), 60, "the map stage done")
    assert not job.done(), "the job ended before the node could be killed"
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.kill_node, victim_ip)
    detected = await wait_for(lambda: victim_eid not in hosts(sc), 5.0,
                              f"executor {victim_eid} on {victim_ip} declared lost")
    result = dict(await asyncio.wait_for(job, 120))
    assert result == dict(expected)
    assert time.monotonic() - killed_at >= detected
    print(f"node {victim_ip} killed: executor {victim_eid} lost after {detected:.2f}s")
    # The replacement runs on the node that was free.
    await wait_for(lambda: len(hosts(sc)) == 2, 90, "a replacement executor")
    assert victim_ip not in hosts(sc).values()


async def test_stop_leaves_no_actor_process_or_directory(sc, cluster, tls_files):
    # Free the nodes for this test's context: the module's one scales to 0, which also
    # releases its placement group (whose bundles would keep the nodes reserved).
    sc._backend.scale(0, remove=list(hosts(sc)))
    await wait_for(lambda: not hosts(sc), 30, "the module's context down to 0")
    await wait_for(lambda: sc._backend.cluster._pg is None, 30, "its placement group gone")
    alive = [ip for ip in cluster.ips if ip not in cluster.killed]

    def scratch():
        return {os.path.join(ip, n) for ip in alive for n in os.listdir(cluster.node_tmp(ip))
                if n.startswith("asyncspark-")}

    before = scratch()
    os.environ["RAY_ADDRESS"] = cluster.address
    try:
        conf = {**ray_conf(cluster, 1),
                **tls_files.conf(**{"spark.ssl.needClientAuth": "true"})}
        ctx = Context("ray", app_name="ray-close", conf=conf)
        async with ctx:
            assert await ctx.parallelize(range(100), 2).map(lambda x: (x % 3, x))\
                .reduceByKey(add).count() == 3
            conns = [*ctx._backend.conns.values(), *ctx._backend.channels.values()]
            assert len(conns) == 2
            assert all(c.proto.transport.get_extra_info("peercert") for c in conns)
            actors = [h.actor._actor_id.hex() for h in ctx._backend.cluster.actors.values()]
            pids = [e.pid for e in ctx._task_scheduler.executors.values()]
            root = ctx._backend.local_root
            assert actors
            assert pids
    finally:
        os.environ.pop("RAY_ADDRESS", None)
    assert all(_exited(pid) for pid in pids)
    assert not os.path.exists(root)  # noqa: ASYNC240 - a test's check
    assert not ctx._backend.cluster.actors
    if ray.is_initialized():  # shared with the module's context: ask the GCS
        states = [ray._private.state.actors(a)["State"] for a in actors]
        assert all(s == "DEAD" for s in states), states
    # Executors' directories are in their node's TMPDIR: none of this context's is left.
    assert scratch() - before == set()


async def test_cluster_listens_on_no_fixed_port(cluster):
    """Every port a node would take a fixed default for (the dashboard, which Ray starts
    even with --include-dashboard=false, its agent, metrics, the worker range) is one
    the fixture chose free, or one the kernel picked (port 0)."""
    import re

    chosen = {p for ports in cluster.chosen_ports.values() for p in ports.values()}
    assert len(chosen) == sum(len(p) for p in cluster.chosen_ports.values())
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:  # noqa: ASYNC230
        low, high = map(int, f.read().split())
    given = set()
    for ip, proc in cluster.nodes.items():
        if ip in cluster.killed:
            continue
        for pid in raycluster.group_members(proc.pid):
            try:
                with open(f"/proc/{pid}/cmdline") as f:  # noqa: ASYNC230
                    cmdline = f.read().replace("\0", " ")
            except OSError:
                continue
            given |= {int(n) for n in re.findall(r"port[a-z_-]*=(\d+)", cmdline)}
    assert given - {0} <= chosen, given - {0} - chosen
    listening = cluster.listening()
    assert listening, "the cluster listens somewhere"
    for addr, port in listening:
        assert port not in raycluster.RAY_DEFAULT_PORTS, (addr, port)
        assert port not in raycluster.RAY_WORKER_PORT_RANGE, (addr, port)
        assert low <= port <= high, (addr, port)  # the kernel's pick, or the fixture's


def gated(path: str):
    def partition(it):
        deadline = time.monotonic() + 120
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        return [(x % 7, x) for x in it]
    return partition


async def test_dynamic_allocation_on_ray(sc, cluster, tmp_path):
    """With spark.dynamicAllocation: no executor at start; a backlog brings one per free
    node; when idle (the job done) they are removed and their actors end."""
    sc._backend.scale(0, remove=list(hosts(sc)))  # free the nodes the module's context has
    await wait_for(lambda: not hosts(sc), 30, "the module's context down to 0")
    free = [ip for ip in cluster.ips if ip not in cluster.killed]
    conf = {**ray_conf(cluster, 0), "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.maxExecutors": str(len(free)),
            "spark.dynamicAllocation.schedulerBacklogTimeout": "100ms",
            "spark.dynamicAllocation.executorIdleTimeout": "1s",
            "spark.dynamicAllocation.shuffleTracking.timeout": "0"}
    gate = str(tmp_path / "go")  # map tasks wait for it: the backlog lasts
    os.environ["RAY_ADDRESS"] = cluster.address
    try:
        async with Context("ray", app_name="ray-dynalloc", conf=conf) as ctx:
            assert not ctx._task_scheduler.executors  # initial: minExecutors = 0
            pairs = ctx.parallelize(range(3000), 2 * len(free)).mapPartitions(gated(gate))
            job = asyncio.ensure_future(pairs.reduceByKey(add, 2).collect())
            await wait_for(lambda: len(hosts(ctx)) == len(free), 90,
                           "one executor per free node")
            assert set(hosts(ctx).values()) == set(free)
            with open(gate, "w"):  # noqa: ASYNC230 - a test's marker file
                pass
            expected = collections.Counter()
            for x in range(3000):
                expected[x % 7] += x
            assert dict(await asyncio.wait_for(job, 60)) == dict(expected)
            actors = [h.actor for h in ctx._backend.cluster.actors.values()]
            await wait_for(lambda: not hosts(ctx), 30, "idle executors removed")
            await wait_for(lambda: not ctx._backend.cluster.actors, 30, "their actors gone")
            assert ctx._backend.allocation.policy.removed >= len(free)
            states = [ray._private.state.actors(a._actor_id.hex())["State"] for a in actors]
            assert all(s == "DEAD" for s in states), states
    finally:
        os.environ.pop("RAY_ADDRESS", None)
