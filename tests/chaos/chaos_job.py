"""The chaos job and its fault injector, shared by ``test_chaos.py`` and ``report.py``.

The job: a shuffle (reduceByKey) whose result is cached and counted, another shuffle
(groupByKey), a join of the two (a third shuffle) and a collect — on ``local[3]``, a few
thousand records (22 tasks). The injector is a listener: at the task starts a seeded
``random.Random`` picked, it SIGKILLs the executor running that task (a kill during a map
task or a result task) or another one (its map outputs are then lost to reducers that
fetch them: FetchFailed), or SIGSTOPs one (then SIGCONTs it before, or leaves it for, the
short heartbeat timeout, which kills it). Every run must give the reference answer.
"""

from __future__ import annotations

import asyncio
import operator
import os
import random
import signal
import time
from dataclasses import dataclass, field

import asyncspark
from asyncspark import Context

N = 3000
KEYS = 97

CHAOS_CONF = {
    "spark.executor.heartbeatInterval": "100ms",
    "asyncspark.executor.heartbeatTimeout": "1s",
    "asyncspark.executor.maxReplacementsPerMinute": "100",
    "spark.task.maxFailures": "8",
    "spark.stage.maxConsecutiveAttempts": "8",
    "asyncspark.scheduler.resubmitDelay": "50ms",
    "spark.locality.wait": "0",
}


def _slow(it):
    time.sleep(0.02)  # long enough for a kill to land inside a task
    return it


def build(sc: Context):
    """The chaos job's final RDD, and the cached one (counted first)."""
    sums = sc.parallelize(range(N), 6).map(lambda x: (x % KEYS, x)).mapPartitions(_slow) \
        .reduceByKey(operator.add, 4).cache()
    groups = sc.parallelize(range(N), 5).map(lambda x: (x % KEYS, 2 * x)) \
        .mapPartitions(_slow).groupByKey(3).mapValues(sum)
    joined = sums.join(groups, 4).mapPartitions(_slow).mapValues(lambda ab: ab[0] - ab[1])
    return sums, joined


def reference() -> tuple[int, list]:
    sums: dict[int, int] = {}
    groups: dict[int, int] = {}
    for x in range(N):
        sums[x % KEYS] = sums.get(x % KEYS, 0) + x
        groups[x % KEYS] = groups.get(x % KEYS, 0) + 2 * x
    return len(sums), sorted((k, sums[k] - groups[k]) for k in sums)


async def run_job(sc: Context) -> tuple[int, list]:
    sums, joined = build(sc)
    count = await sums.count()
    return count, sorted(await joined.collect())


@dataclass
class Fault:
    at_task: int  # the n-th task start (1-based) triggers it
    action: str  # "kill-own", "kill-other", "stop-cont", "stop-timeout"
    pause: float = 0.0  # stop-cont: how long the executor stays stopped


def plan(seed: int) -> list[Fault]:
    rng = random.Random(seed)
    faults = []
    for _ in range(rng.randint(1, 3)):
        action = rng.choices(["kill-own", "kill-other", "stop-cont", "stop-timeout"],
                             weights=[4, 4, 1, 1])[0]
        faults.append(Fault(rng.randint(1, 21), action, round(rng.uniform(0.1, 0.6), 2)))
    return sorted(faults, key=lambda f: f.at_task)


@dataclass
class Injector(asyncspark.SparkListener):
    sc: Context
    faults: list[Fault]
    rng: random.Random
    started: int = 0
    kills: int = 0
    stops: int = 0
    stopped: set[int] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    def onTaskStart(self, event) -> None:
        self.started += 1
        while self.faults and self.faults[0].at_task <= self.started:
            self._inject(self.faults.pop(0), event)

    def _inject(self, fault: Fault, event) -> None:
        executors = self.sc._task_scheduler.executors
        if not executors:
            return
        own = executors.get(event.executorId)
        others = [e for e in executors.values() if e.id != event.executorId]
        if fault.action == "kill-own" and own is not None:
            victim = own
        elif others:
            victim = self.rng.choice(others)
        else:
            victim = own or next(iter(executors.values()))
        pid = victim.pid
        if fault.action.startswith("kill"):
            self.kills += 1
            self._signal(pid, signal.SIGKILL)
        else:
            self.stops += 1
            self.stopped.add(pid)
            self._signal(pid, signal.SIGSTOP)
            if fault.action == "stop-cont":
                asyncio.get_running_loop().call_later(fault.pause, self._resume, pid)
        self.log.append(f"task start {self.started} (stage {event.stageId}): "
                        f"{fault.action} executor {victim.id}")

    def _resume(self, pid: int) -> None:
        self.stopped.discard(pid)
        self._signal(pid, signal.SIGCONT)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def release(self) -> None:
        """SIGCONT every executor still stopped (the context then stops it normally)."""
        for pid in list(self.stopped):
            self._resume(pid)


@dataclass
class Outcome:
    seed: int
    result: tuple
    seconds: float
    kills: int
    stops: int
    resubmissions: int
    fetch_failures: int
    heartbeat_losses: int
    log: list[str]
    # Executor connections the driver holds at the end, and how many of them are TLS.
    connections: int = 0
    tls_connections: int = 0


def _connections(sc) -> tuple[int, int]:
    backend = sc._backend
    transports = [conn.proto.transport for conn in [*backend.conns.values(),
                                                    *backend.channels.values()]
                  if conn.proto.transport is not None]
    return len(transports), sum(t.get_extra_info("ssl_object") is not None
                                for t in transports)


async def chaos_run(seed: int, extra_conf: dict | None = None) -> Outcome:
    """One seeded run; ``extra_conf`` (e.g. TLS on) is added to ``CHAOS_CONF``."""
    async with Context("local[3]", conf={**CHAOS_CONF, **(extra_conf or {})}) as sc:
        injector = Injector(sc, plan(seed), random.Random(seed + 1))
        sc.addSparkListener(injector)
        t0 = time.perf_counter()
        try:
            result = await asyncio.wait_for(run_job(sc), 60)
        finally:
            injector.release()
        seconds = time.perf_counter() - t0
        return Outcome(seed, result, seconds, injector.kills, injector.stops,
                       sc._dag.resubmissions, sc._dag.fetch_failures,
                       sc._backend.heartbeat_losses, injector.log, *_connections(sc))


async def clean_run(extra_conf: dict | None = None) -> tuple[tuple, float]:
    async with Context("local[3]", conf={**CHAOS_CONF, **(extra_conf or {})}) as sc:
        t0 = time.perf_counter()
        result = await asyncio.wait_for(run_job(sc), 60)
        return result, time.perf_counter() - t0
