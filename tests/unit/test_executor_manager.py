"""ExecutorManager's reactions to a ClusterBackend's events, with a scripted backend and
a recording task scheduler: a lost host takes every executor on it at once, failed starts
in a row fail start-up or abort jobs, the replacement limit lowers the target, and the
start backoff doubles up to its cap and resets."""

from __future__ import annotations

import asyncio

from asyncspark.conf import Config
from asyncspark.scheduler.backends.cluster import (
    ClusterBackend,
    ExecutorSpec,
    Launched,
    Lost,
    StartBackoff,
)
from asyncspark.scheduler.backends.manager import ExecutorManager


class ScriptedBackend(ClusterBackend):
    """Events come from the test; kills and targets are recorded."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.kills: list[str] = []
        self.targets: list[int] = []
        self.target = 0
        self.local_root = "/nonexistent"

    async def start(self, driver_address, secret) -> None:
        pass

    def set_target(self, n: int, spec: ExecutorSpec | None = None) -> None:
        self.target = n
        self.targets.append(n)

    def kill(self, executor_ids) -> None:
        self.kills.extend(executor_ids)

    async def events(self):
        while (ev := await self.queue.get()) is not None:
            yield ev

    def advertise_host(self) -> str:
        return "127.0.0.1"

    async def close(self) -> None:
        self.queue.put_nowait(None)


class RecordingScheduler:
    block_master = None

    def __init__(self) -> None:
        self.executors: dict[str, object] = {}
        self.lost: list[tuple[str, str]] = []
        self.aborted: list[str] = []

    def executor_lost(self, eid: str, reason: str, task_caused: bool = False) -> None:
        self.executors.pop(eid, None)
        self.lost.append((eid, reason))

    def abort_all(self, message: str) -> None:
        self.aborted.append(message)


async def manager_with(conf: dict | None = None, n: int = 3):
    cluster = ScriptedBackend()
    ts = RecordingScheduler()
    mgr = ExecutorManager(Config.from_items((conf or {}).items()), n, ts, cluster)
    mgr._events_task = asyncio.get_running_loop().create_task(mgr._consume())
    return mgr, cluster, ts


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lost_host_takes_every_executor_on_it_at_once():
    mgr, cluster, ts = await manager_with()
    for eid, host in (("0", "10.0.0.1"), ("1", "10.0.0.1"), ("2", "10.0.0.2")):
        cluster.queue.put_nowait(Launched(eid, host, 100 + int(eid)))
    await settle()
    ts.executors.update({"0": 1, "1": 1, "2": 1})  # all registered
    cluster.queue.put_nowait(Lost("0", "executor 0 lost its node", None, host_lost=True))
    await settle()
    lost = dict(ts.lost)
    assert sorted(lost) == ["0", "1"]  # its neighbour at once, not after a timeout
    assert "host 10.0.0.1 was lost" in lost["1"]
    assert cluster.kills == ["1"]
    assert set(ts.executors) == {"2"}
    assert mgr.hosts_lost == 1
    await mgr.stop()


async def test_failed_starts_in_a_row_abort_jobs_when_no_executor_is_left():
    mgr, cluster, ts = await manager_with({"asyncspark.executor.maxStartFailures": "3"})
    for i in range(3):
        cluster.queue.put_nowait(Launched(str(i), "h", 10 + i))
        cluster.queue.put_nowait(Lost(str(i), f"executor {i} exited with code 1", 1))
        await settle()
        assert bool(ts.aborted) == (i == 2)
    assert "3 executor starts failed in a row" in ts.aborted[0]
    assert "exited with code 1" in ts.aborted[0]
    await mgr.stop()


async def test_the_replacement_limit_lowers_the_target():
    mgr, cluster, ts = await manager_with(
        {"asyncspark.executor.maxReplacementsPerMinute": "1"}, n=2)
    cluster.target = 2
    for eid in ("0", "1"):
        cluster.queue.put_nowait(Launched(eid, "h", 1 + int(eid)))
    await settle()
    ts.executors.update({"0": 1, "1": 1})
    cluster.queue.put_nowait(Lost("0", "executor 0 was killed by signal SIGKILL", -9))
    await settle()
    assert cluster.targets == []  # the first one is replaced
    cluster.queue.put_nowait(Lost("1", "executor 1 was killed by signal SIGKILL", -9))
    await settle()
    assert cluster.targets == [1]  # the second is not: one fewer wanted
    assert len(ts.aborted) == 1  # none was left
    assert "maxReplacementsPerMinute" in ts.aborted[0]
    await mgr.stop()


def test_start_backoff_doubles_to_its_cap_and_resets():
    b = StartBackoff(0.5, 3.0)
    assert b.delay() == 0
    delays = []
    for _ in range(5):
        b.failed()
        delays.append(b.delay())
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.succeeded()
    assert b.delay() == 0
