"""A synchronous driver for ``TaskSchedulerCore``: no loop, no sockets, no real time.

It executes the core's commands the way ``task_scheduler.TaskScheduler`` does, but
against recording fakes: launches and kills go to the executors' fake connections,
timers sit in a table fired by ``advance()`` on an injected clock, result-file reads
wait in ``reads`` until a test completes them, posts land in ``events``. It has the
TaskScheduler's input methods, so the scheduler tests read the same either way.
"""

from __future__ import annotations

from typing import Any

from asyncspark.errors import LocalProtocolError
from asyncspark.scheduler.events import (
    ArmTimer,
    CancelTimer,
    DiscardResult,
    ForgetExecutorBlocks,
    KillExecutor,
    Launch,
    PostEvents,
    ReadResult,
    SendKill,
)
from asyncspark.scheduler.task_core import TaskSchedulerCore
from asyncspark.transport.messages.tasks import KillTask


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class CoreDriver:
    def __init__(self, post=None, *, clock: Clock | None = None, block_master: Any = None,
                 **core_kw) -> None:
        self.clock = clock or Clock()
        self.core = TaskSchedulerCore(clock=self.clock, **core_kw)
        self.events: list = []
        self._post = post or self.events.append
        self.block_master = block_master
        self.timers: dict[Any, float] = {}  # key -> when it fires (clock time)
        self.killed: list[tuple[str, str]] = []  # KillExecutor commands
        self.reads: list[ReadResult] = []
        self.discarded: list[str] = []
        self.commands: list = []  # every command, in order

    # -- the core's state -------------------------------------------------------------
    @property
    def executors(self):
        return self.core.executors

    @property
    def tsms(self):
        return self.core.tsms

    @property
    def tasks(self):
        return self.core.tasks

    # -- inputs (as TaskScheduler's) --------------------------------------------------
    def submit_tasks(self, taskset) -> None:
        self.run(self.core.submit_tasks(taskset))

    def cancel_tasks(self, stage_id: int, reason: str) -> None:
        self.run(self.core.cancel_tasks(stage_id, reason))

    def abort_all(self, message: str) -> None:
        self.run(self.core.abort_all(message))

    def revive(self) -> None:
        self.run(self.core.revive())

    def executor_added(self, ex) -> None:
        self.run(self.core.executor_added(ex))

    def executor_lost(self, executor_id: str, reason: str, task_caused: bool = False) -> None:
        self.run(self.core.executor_lost(executor_id, reason, task_caused))

    def status_update(self, executor_id: str, statuses: list, body: bytes) -> None:
        self.run(self.core.status_update(executor_id, statuses, body))

    def ask_commit(self, *args) -> str | None:
        return self.core.ask_commit(*args)

    def complete_read(self, read: ReadResult, data: bytes = b"",
                      failure: BaseException | None = None) -> None:
        self.reads.remove(read)
        self.run(self.core.result_read(read.task, read.executor_id, data, read.metrics,
                                       failure))

    # -- time ---------------------------------------------------------------------------
    def advance(self, dt: float) -> None:
        """Move the clock on by ``dt``, firing due timers in deadline order."""
        end = self.clock.t + dt
        while True:
            due = [(at, i, k) for i, (k, at) in enumerate(self.timers.items()) if at <= end]
            if not due:
                break
            at, _, key = min(due)
            del self.timers[key]
            self.clock.t = max(self.clock.t, at)
            self.run(self.core.timer_fired(key))
        self.clock.t = end

    def fire(self, key: Any) -> None:
        """Fire the timer ``key`` now, whatever its deadline."""
        del self.timers[key]
        self.run(self.core.timer_fired(key))

    # -- commands -----------------------------------------------------------------------
    def run(self, cmds: list) -> None:
        for cmd in cmds:
            self.commands.append(cmd)
            t = type(cmd)
            if t is Launch:
                try:
                    cmd.executor.conn.send_many(cmd.msgs)
                except LocalProtocolError as exc:
                    ids = [launch[0] for launch in cmd.launches]
                    self.run(self.core.launch_failed(cmd.executor, ids, exc))
                except ConnectionError:
                    pass
            elif t is SendKill:
                try:
                    cmd.executor.control.send(KillTask(cmd.task_id, cmd.reason))
                except ConnectionError:
                    self.run(self.core.kill_not_sent(cmd.task_id))
            elif t is ArmTimer:
                self.timers[cmd.key] = self.clock.t + cmd.delay
            elif t is CancelTimer:
                self.timers.pop(cmd.key, None)
            elif t is PostEvents:
                for ev in cmd.events:
                    self._post(ev)
            elif t is KillExecutor:
                self.killed.append((cmd.executor_id, cmd.reason))
            elif t is ReadResult:
                self.reads.append(cmd)
            elif t is DiscardResult:
                self.discarded.append(cmd.path)
            elif t is ForgetExecutorBlocks:
                if self.block_master is not None:
                    self.block_master.remove_executor(cmd.executor_id)
            else:
                raise TypeError(f"unknown command {cmd!r}")
