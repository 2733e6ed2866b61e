"""TaskScheduler: the thin driver of the task scheduling core (``task_core.py``).

The core decides (which task goes to which free slot, what a status frame means, when
a task set fails); this module does what it decides, and nothing else: writes launches
and kills to executor connections, arms and cancels loop timers, reads result files in
a thread, removes lost executors' blocks, kills executors through the backend and posts
events to the DAGScheduler. It runs on the driver's event loop, called from the
DAGScheduler's command execution and from executor connections' callbacks; it never
blocks and never awaits (result files are read by tasks it spawns).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from ..errors import LocalProtocolError, TaskResultLostError
from ..shuffle.map_output_tracker import MapOutputTracker
from ..transport.messages.tasks import KillTask
from .events import (
    ArmTimer,
    CancelTimer,
    DagEvent,
    DiscardResult,
    ForgetExecutorBlocks,
    KillExecutor,
    Launch,
    PostEvents,
    ReadResult,
    SendKill,
)
from .exclusion import ExclusionConf
from .pools import PoolTree
from .results import read_result_file
from .speculation import SpeculationConf
from .stage import ExecutorData, RunningTask, TaskSet
from .task_core import TaskSchedulerCore
from .task_set_manager import TaskSetManager
from .trace import Tracer

__all__ = ["TaskScheduler"]

log: logging.Logger = logging.getLogger("asyncspark.scheduler")


class TaskScheduler:
    """Owns a ``TaskSchedulerCore`` and executes its commands (see the module docstring).
    Its public methods are the core's inputs. The loop-bound effects (``_arm``,
    ``_cancel``, ``_read``, ``_discard``) are methods of their own, so that a test driver
    can replace them with a fake clock and recorded reads."""

    def __init__(self, post: Callable[[Any], None], *,
                 post_many: Callable[[list[DagEvent]], None] | None = None,
                 max_failures: int = 4,
                 kill_grace_period: float = 1.0, pipeline_depth: int = 0,
                 short_task_us: float = 2000.0,
                 kill_executor: Callable[[str, str], None] = lambda e, r: None,
                 listeners_active: Callable[[], bool] = lambda: False,
                 map_outputs: MapOutputTracker | None = None,
                 tracer: Tracer | None = None, locality_wait: float = 0.0,
                 block_master: Any = None, speculation: SpeculationConf | None = None,
                 exclusion: ExclusionConf | None = None, max_result_size: int = 0,
                 result_timeout: float = 120.0, clock: Callable[[], float] = time.monotonic,
                 pools: PoolTree | None = None) -> None:
        self.core: TaskSchedulerCore = TaskSchedulerCore(
            clock=clock, max_failures=max_failures, kill_grace_period=kill_grace_period,
            pipeline_depth=pipeline_depth, short_task_us=short_task_us,
            listeners_active=listeners_active, map_outputs=map_outputs, tracer=tracer,
            locality_wait=locality_wait, speculation=speculation, exclusion=exclusion,
            max_result_size=max_result_size, pools=pools)
        self.post = post
        # One queue item for all the events of one input (a status frame's completions).
        self.post_many: Callable[[list[DagEvent]], object] = post_many or (
            lambda events: [post(e) for e in events])
        self.tracer = tracer
        self.kill_executor = kill_executor
        self.block_master = block_master  # storage.master.BlockManagerMaster, or None
        # Results sent as files are read in a thread within result_timeout
        # (spark.network.timeout): see results.py.
        self.result_timeout = result_timeout
        self._timers: dict[Any, asyncio.TimerHandle] = {}
        self._result_reads: set[asyncio.Task] = set()

    # The core's state, read by the backend, the context and tests.
    @property
    def executors(self) -> dict[str, ExecutorData]:
        return self.core.executors

    @property
    def tsms(self) -> dict[int, TaskSetManager]:
        return self.core.tsms

    @property
    def tasks(self) -> dict[int, RunningTask]:
        return self.core.tasks

    # -- inputs --------------------------------------------------------------------------

    def submit_tasks(self, taskset: TaskSet) -> None:
        self._run(self.core.submit_tasks(taskset))

    def cancel_tasks(self, stage_id: int, reason: str) -> None:
        """Stop launching the stage's tasks and kill its running ones."""
        self._run(self.core.cancel_tasks(stage_id, reason))

    def abort_all(self, message: str) -> None:
        """Fail every task set, and later ones, while no executor can be started."""
        self._run(self.core.abort_all(message))

    def revive(self) -> None:
        """Give pending tasks to free slots."""
        self._run(self.core.revive())

    def executor_added(self, ex: ExecutorData) -> None:
        self._run(self.core.executor_added(ex))

    def executor_lost(self, executor_id: str, reason: str, task_caused: bool = False) -> None:
        """See ``TaskSchedulerCore.executor_lost``."""
        self._run(self.core.executor_lost(executor_id, reason, task_caused))

    def status_update(self, executor_id: str, statuses: list[list[Any]], body: bytes) -> None:
        self._run(self.core.status_update(executor_id, statuses, body))

    def ask_commit(self, executor_id: str, stage_id: int, partition: int,
                   task_id: int) -> str | None:
        """May attempt ``task_id`` commit its output of ``partition``? None if it may,
        else why not."""
        return self.core.ask_commit(executor_id, stage_id, partition, task_id)

    def send_to_all(self, msg: Any) -> None:
        """Send ``msg`` on every executor's task channel, ahead of later launches
        (``RemoveBroadcast``); an executor whose connection is gone is skipped."""
        for ex in self.core.executors.values():
            try:
                ex.conn.send(msg)
            except ConnectionError:
                continue

    async def close(self) -> None:
        """Stop the timers and the reading of result files (the context is stopping)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        reads = list(self._result_reads)
        for t in reads:
            t.cancel()
        if reads:
            await asyncio.gather(*reads, return_exceptions=True)

    # -- commands ------------------------------------------------------------------------

    def _run(self, cmds: list) -> None:
        for cmd in cmds:
            t = type(cmd)
            if t is Launch:
                self._launch(cmd)
            elif t is PostEvents:
                events = cmd.events
                if len(events) == 1:
                    self.post(events[0])
                else:
                    self.post_many(events)
            elif t is ArmTimer:
                self._arm(cmd.key, cmd.delay)
            elif t is CancelTimer:
                self._cancel(cmd.key)
            elif t is SendKill:
                try:
                    cmd.executor.control.send(KillTask(cmd.task_id, cmd.reason))
                except ConnectionError:
                    self._run(self.core.kill_not_sent(cmd.task_id))
            elif t is ReadResult:
                self._read(cmd)
            elif t is DiscardResult:
                self._discard(cmd.path)
            elif t is ForgetExecutorBlocks:
                if self.block_master is not None:
                    self.block_master.remove_executor(cmd.executor_id)
            elif t is KillExecutor:
                self.kill_executor(cmd.executor_id, cmd.reason)
            else:
                raise TypeError(f"unknown command {cmd!r}")

    def _launch(self, cmd: Launch) -> None:
        ex = cmd.executor
        # Never blocks: the asyncio transport buffers what the socket does not take.
        # What an executor that stopped reading can pile up is bounded (its slots plus
        # the pipeline depth of launches, each binary once), and such an executor is
        # declared lost by asyncspark.executor.heartbeatTimeout
        # (tests/integration/test_executor_loss.py, SIGSTOP), its tasks re-run.
        try:
            ex.conn.send_many(cmd.msgs)
        except ConnectionError as exc:
            # The connection's close callback reports the executor lost, which
            # re-queues these tasks.
            log.debug("launch to executor %s failed: %s", ex.id, exc)
        except LocalProtocolError as exc:
            self._run(self.core.launch_failed(ex, [launch[0] for launch in cmd.launches], exc))

    def _arm(self, key: Any, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fired, key)

    def _cancel(self, key: Any) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _fired(self, key: Any) -> None:
        self._timers.pop(key, None)
        self._run(self.core.timer_fired(key))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._result_reads.add(t)
        t.add_done_callback(self._result_reads.discard)

    def _read(self, cmd: ReadResult) -> None:
        self._spawn(self._read_result(cmd))

    def _discard(self, path: str) -> None:
        self._spawn(self._unlink(path))

    @staticmethod
    async def _unlink(path: str) -> None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.unlink, path)

    async def _read_result(self, cmd: ReadResult) -> None:
        timeout = self.result_timeout
        failure: BaseException | None = None
        data = b""
        try:
            async with asyncio.timeout(timeout):
                data = await asyncio.to_thread(read_result_file, cmd.path, cmd.size)
        except TimeoutError:
            failure = TaskResultLostError(
                f"reading the task result file {cmd.path} ({cmd.size} bytes) took longer "
                f"than {timeout:g}s (spark.network.timeout)")
        except TaskResultLostError as exc:
            failure = exc
        self._run(self.core.result_read(cmd.task, cmd.executor_id, data, cmd.metrics,
                                        failure))
