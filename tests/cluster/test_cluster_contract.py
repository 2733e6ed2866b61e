"""The ClusterBackend contract, run against every backend: the fake one, LocalBackend,
RayBackend (on a real one-node Ray cluster with token authentication, when ray is
installed) and SlurmBackend (on a real one-node SLURM cluster, when slurm-wlm and munge
are installed). What the driver relies on: a target is launched with distinct ids and is
idempotent; a killed or crashed executor is ``Lost`` (with its exit code) and replaced by
a new id; a lower target stops the newest; failed starts are retried with a growing
backoff and stop when the target is 0; ``close()`` is idempotent, ends the event stream
and leaves no process or directory.

This module runs the fake backend and LocalBackend on both event loops;
``test_cluster_contract_managers.py`` runs the same tests against RayBackend and
SlurmBackend on real clusters, on uvloop only (what the loop changes is the driver's side,
which the local backend covers on both; each real-cluster case costs seconds of process
starts on a shared worker)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest
import raycluster  # noqa: F401 - first: sets Ray's auth environment before ray is imported
import slurmcluster
from fake_backend import FakeBackend

from asyncspark.conf import Config
from asyncspark.scheduler.backends.cluster import ExecutorSpec, Launched, Lost
from asyncspark.scheduler.backends.local import LocalBackend, _exited

try:
    import ray
except ImportError:
    ray = None

KINDS = ["fake", "local"]  # ray and slurm: test_cluster_contract_managers.py
RAY_IP = "127.0.0.14"
SLURM_NODE = {"c1": "127.0.0.23"}


@pytest.fixture(scope="module")
def ray_cluster():
    if ray is None:
        pytest.skip("ray is not installed (pip install 'asyncspark[ray]'; .ci/run does)")
    from raycluster import RayCluster

    cluster = RayCluster(RAY_IP, [], head_cpus=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def slurm_cluster():
    why = slurmcluster.missing()
    if why:
        pytest.skip(why)
    cluster = slurmcluster.SlurmCluster(SLURM_NODE, ctl_ip="127.0.0.24", cpus=4)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=KINDS)
def kind(request):
    if request.param in ("ray", "slurm"):
        request.getfixturevalue(f"{request.param}_cluster")
    return request.param


def make_backend(kind: str, request, backoff: float = 0.2):
    conf = Config.from_items([("asyncspark.executor.startBackoff", str(backoff)),
                              ("asyncspark.executor.maxStartBackoff", "5"),
                              ("asyncspark.ray.nodeIpAddress", RAY_IP),
                              ("asyncspark.rpc.host", "127.0.0.1"),
                              ("asyncspark.slurm.pollInterval", "250ms"),
                              ("asyncspark.slurm.cancelTimeout", "2s")])
    if kind == "fake":
        return FakeBackend(start_backoff=backoff, max_start_backoff=5.0)
    if kind == "local":
        return LocalBackend(conf)
    if kind == "slurm":
        from asyncspark.scheduler.backends.slurm import SlurmBackend

        return SlurmBackend(conf)
    from asyncspark.scheduler.backends.ray import RayBackend

    return RayBackend(conf, request.getfixturevalue("ray_cluster").address)


SPEC = ExecutorSpec(resources={"asyncspark_executor": 1.0})


class Harness:
    def __init__(self, backend) -> None:
        self.backend = backend
        self.events = backend.events().__aiter__()
        self.seen: list = []

    async def next(self, within: float = 60.0):
        ev = await asyncio.wait_for(self.events.__anext__(), within)
        self.seen.append(ev)
        return ev

    async def quiet(self, seconds: float) -> None:
        """No event for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            ev = await self.next(seconds)
            raise AssertionError(f"unexpected event {ev}")

    async def launched(self, n: int) -> list[Launched]:
        out = []
        while len(out) < n:
            ev = await self.next()
            assert isinstance(ev, Launched), ev
            self.backend.registered(ev.executor_id)
            out.append(ev)
        return out

    async def lost_and_launched(self, lost: str, launched: int) -> tuple[Lost, list[Launched]]:
        """Wait for ``Lost(lost)`` and ``launched`` new executors, in any order (a
        replacement may start before the old one is reported)."""
        gone, new = None, []
        while gone is None or len(new) < launched:
            ev = await self.next()
            if isinstance(ev, Lost):
                assert ev.executor_id == lost, ev
                gone = ev
            else:
                self.backend.registered(ev.executor_id)
                new.append(ev)
        return gone, new

    def crash(self, ev: Launched) -> None:
        if isinstance(self.backend, FakeBackend):
            self.backend.crash(ev.executor_id)
        else:
            os.kill(ev.pid, signal.SIGKILL)  # local, Ray and SLURM nodes are this machine


@contextlib.asynccontextmanager
async def running(kind, request, driver_up: bool = True, backoff: float = 0.2):
    backend = make_backend(kind, request, backoff)
    held: list[asyncio.StreamWriter] = []

    async def hold(reader, writer):
        held.append(writer)

    await backend.connect()
    host = backend.advertise_host()
    server = await asyncio.start_server(hold, host, 0)
    address = server.sockets[0].getsockname()[:2]
    if not driver_up:
        server.close()
        await server.wait_closed()
    await backend.start(address, "contract-secret")
    try:
        yield Harness(backend)
    finally:
        await backend.close()
        server.close()
        for w in held:
            w.close()
        await server.wait_closed()


async def test_target_launches_distinct_executors_once(kind, request):
    async with running(kind, request) as h:
        h.backend.set_target(2, SPEC)
        h.backend.set_target(2, SPEC)  # idempotent
        evs = await h.launched(2)
        assert len({e.executor_id for e in evs}) == 2
        assert all(e.pid > 0 and e.host for e in evs)
        await h.quiet(1.0)
        assert sorted(h.backend.alive()) == sorted(e.executor_id for e in evs)


async def test_kill_is_lost_and_replaced_with_a_new_id(kind, request):
    async with running(kind, request) as h:
        h.backend.set_target(2, SPEC)
        a, b = await h.launched(2)
        h.backend.kill([a.executor_id])
        _, (c,) = await h.lost_and_launched(a.executor_id, 1)
        assert c.executor_id not in (a.executor_id, b.executor_id)
        await h.quiet(1.0)


async def test_crash_is_lost_with_its_exit_code_and_replaced(kind, request):
    async with running(kind, request) as h:
        h.backend.set_target(1, SPEC)
        (a,) = await h.launched(1)
        h.crash(a)
        lost, (b,) = await h.lost_and_launched(a.executor_id, 1)
        assert lost.exit_code in (-9, -11), lost
        assert not lost.host_lost
        assert b.executor_id != a.executor_id


async def test_lower_target_stops_the_newest(kind, request):
    async with running(kind, request) as h:
        h.backend.set_target(2, SPEC)
        evs = await h.launched(2)
        newest = max(evs, key=lambda e: int(e.executor_id))
        h.backend.set_target(1, SPEC)
        lost = await h.next()
        assert isinstance(lost, Lost)
        assert lost.executor_id == newest.executor_id
        await h.quiet(1.0)
        assert len(h.backend.alive()) == 1


async def test_failed_starts_are_retried_with_a_growing_backoff(kind, request):
    async with running(kind, request, driver_up=False, backoff=0.3) as h:
        h.backend.set_target(1, SPEC)
        gaps, ended = [], None  # from one failed executor's end to the next's launch
        while len(gaps) < 3:
            ev = await h.next()
            if isinstance(ev, Launched):
                if ended is not None:
                    gaps.append(time.monotonic() - ended)
            else:
                assert ev.exit_code not in (None, 0) or "could not be started" in ev.reason
                ended = time.monotonic()
        # The backoff doubles: 0.3, 0.6, 1.2 s at least (launching takes more on top).
        for gap, backoff in zip(gaps, (0.3, 0.6, 1.2), strict=True):
            assert gap >= backoff * 0.9, gaps
        assert h.backend.start_failures >= 3
        h.backend.set_target(0, SPEC)
        def ended():
            return {e.executor_id for e in h.seen if isinstance(e, Lost)} == \
                {e.executor_id for e in h.seen if isinstance(e, Launched)}
        while not ended():
            await h.next()
        await h.quiet(2.0)  # no more starts
        assert not h.backend.alive()


async def test_close_is_idempotent_and_leaves_nothing(kind, request):
    async with running(kind, request) as h:
        h.backend.set_target(2, SPEC)
        evs = await h.launched(2)
        root = h.backend.local_root
        await h.backend.close()
        await h.backend.close()
        rest = [ev async for ev in h.events]  # the stream ends
        assert {e.executor_id for e in rest if isinstance(e, Lost)} == \
            {e.executor_id for e in evs}
        if kind != "fake":
            for e in evs:
                assert _exited(e.pid), f"executor {e.executor_id} (pid {e.pid}) is alive"
        assert not os.path.exists(root)  # noqa: ASYNC240 - a test's check
        assert not h.backend.alive()
