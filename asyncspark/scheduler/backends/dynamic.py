"""Dynamic allocation on the driver's loop: ``scheduler/allocation.py``'s decisions
applied to an ``ExecutorManager`` (``spark.dynamicAllocation.enabled``), whatever the
backend (``local[N]``, Ray).

Every 100 ms (Spark's schedule interval) ``DynamicAllocation`` reads what the driver
knows, with no listener in between (a listener's queue may drop events): the registered
executors, each one's running tasks and the time its task channel last reported (that
channel carries only task statuses: its last frame is the last task end), the map outputs
each holds (the ``MapOutputTracker``: only outputs that are registered count), whether it
holds cached blocks (the ``BlockManagerMaster``), the shuffles of the active jobs' stage
graphs (the ``DAGScheduler``'s jobs) and the tasks pending and running. It feeds them to
the ``ExecutorAllocationManager`` and applies its decision through ``ExecutorManager.scale``:

- the backend's target is the larger of the decided target and the executors registered
  and not being removed. A backend stops the newest executors beyond its target, and
  nothing but an idle timeout may remove a registered executor (a lower target only
  cancels executors still starting, as a lower target cancels pending requests in Spark);
- an executor to remove leaves the task scheduler first (``ExecutorManager.scale``: no
  task is launched on it while it is being stopped; the outputs it held are
  unregistered, as its files go with it), then the backend kills it; it is not a loss
  (no "Replacing" warning, no replacement counted, no replacement started).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from ..allocation import AllocationConf, Decision, ExecutorAllocationManager

__all__ = ["DynamicAllocation", "active_shuffles", "shuffle_holders"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

INTERVAL_S = 0.1


def _stages(dag: Any) -> Iterator[Any]:
    seen: set[int] = set()
    todo = [job.final_stage for job in dag.jobs.values()]
    while todo:
        stage = todo.pop()
        if stage.stage_id in seen:
            continue
        seen.add(stage.stage_id)
        yield stage
        todo.extend(stage.parents)


def active_shuffles(dag: Any) -> set[int]:
    """The shuffles in the stage graphs of the DAG scheduler's active jobs."""
    return {s.shuffle_id for s in _stages(dag) if hasattr(s, "shuffle_id")}


def shuffle_holders(dag: Any, map_outputs: Any) -> dict[str, set[int]]:
    """Executor id -> the shuffles of which it holds a registered map output."""
    holders: dict[str, set[int]] = {}
    for sid in list(dag.shuffle_stages):
        if not map_outputs.has_shuffle(sid):
            continue
        for status in map_outputs.statuses(sid):
            if status is not None:
                holders.setdefault(status[0], set()).add(sid)
    return holders


class DynamicAllocation:
    """Drives an ``ExecutorAllocationManager`` from an ``ExecutorManager``'s state (see
    the module docstring)."""

    def __init__(self, manager: Any, conf: AllocationConf, dag: Any) -> None:
        self.manager = manager
        self.dag = dag
        self.policy: ExecutorAllocationManager = ExecutorAllocationManager(conf, time.monotonic)
        self.requested: int | None = None  # the backend target last asked for
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False
        self.last: Decision | None = None

    @property
    def initial(self) -> int:
        return self.policy.conf.initial_executors

    def start(self) -> None:
        self.requested = self.manager.num_executors
        self._arm()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if not self._stopped:
            self._timer = asyncio.get_running_loop().call_later(INTERVAL_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.step()
        except Exception:  # never stop scaling over one bad reading
            log.exception("dynamic allocation")
        self._arm()

    def step(self) -> Decision:
        """Read the driver's state, decide, apply (one schedule interval)."""
        policy, manager = self.policy, self.manager
        ts = manager.task_scheduler
        executors = ts.executors
        for eid in executors:
            policy.executor_added(eid)
        for eid in [e for e in policy.executors if e not in executors]:
            policy.executor_removed(eid)
        dag = self.dag
        if ts.tsms or (dag is not None and dag.jobs):
            policy.stage_submitted()
        holders: dict[str, set[int]] = {}
        if dag is not None and policy.conf.shuffle_tracking and ts.core.map_outputs is not None:
            holders = shuffle_holders(dag, ts.core.map_outputs)
            policy.set_active_shuffles(active_shuffles(dag))
        master = ts.block_master
        cached = ({e for locs in master.blocks.values() for e in locs}
                  if master is not None else set())
        for eid, ex in executors.items():
            channel = manager.channels.get(eid)
            policy.activity(eid, len(ex.running),
                            channel.last_heartbeat if channel is not None else None)
            policy.holdings(eid, holders.get(eid, ()), eid in cached)
        pending = sum(len(t.pending) for t in ts.tsms.values() if not t.zombie)
        decision = policy.schedule(pending, len(ts.tasks))
        self._apply(decision)
        self.last = decision
        return decision

    def _apply(self, decision: Decision) -> None:
        ts = self.manager.task_scheduler
        timeouts = {eid: self.policy.timeout_of(eid) for eid in decision.remove}
        reasons = {}
        for eid in decision.remove:
            reasons[eid] = reason = (
                f"executor {eid} was removed by dynamic allocation: idle for "
                f"{timeouts[eid]:g}s (spark.dynamicAllocation.*; target {decision.target})")
            log.info("%s", reason)
        kept = len([e for e in ts.executors if e not in reasons])
        want = max(decision.target, kept)
        if decision.remove or want != self.requested:
            self.requested = want
            self.manager.scale(want, remove=list(decision.remove), reasons=reasons)
