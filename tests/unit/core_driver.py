"""A synchronous driver for ``TaskSchedulerCore``: no loop, no sockets, no real time.

It is the real ``TaskScheduler`` driver (same inputs, same command execution) with its
loop-bound effects replaced: timers sit in a table fired by ``advance()`` on an injected
clock, result-file reads wait in ``reads`` until a test completes them, removed files
are recorded, killed executors too; posts land in ``events``. Executors' connections are
the tests' recording fakes.
"""

from __future__ import annotations

from typing import Any

from asyncspark.scheduler.events import ReadResult
from asyncspark.scheduler.task_scheduler import TaskScheduler


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class CoreDriver(TaskScheduler):
    def __init__(self, post=None, *, clock: Clock | None = None, **kw) -> None:
        self.clock = clock or Clock()
        self.events: list = []
        self.killed: list[tuple[str, str]] = []  # KillExecutor commands
        super().__init__(post or self.events.append, clock=self.clock,
                         kill_executor=lambda e, r: self.killed.append((e, r)), **kw)
        self.timers: dict[Any, float] = {}  # key -> when it fires (clock time)
        self.reads: list[ReadResult] = []
        self.discarded: list[str] = []

    # -- the loop-bound effects, faked -----------------------------------------------
    def _arm(self, key: Any, delay: float) -> None:
        self.timers[key] = self.clock.t + delay

    def _cancel(self, key: Any) -> None:
        self.timers.pop(key, None)

    def _read(self, cmd: ReadResult) -> None:
        self.reads.append(cmd)

    def _discard(self, path: str) -> None:
        self.discarded.append(path)

    # -- driving it -----------------------------------------------------------------
    def complete_read(self, read: ReadResult, data: bytes = b"",
                      failure: BaseException | None = None) -> None:
        self.reads.remove(read)
        self._run(self.core.result_read(read.task, read.executor_id, data, read.metrics,
                                        failure))

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
            self._run(self.core.timer_fired(key))
        self.clock.t = end

    def fire(self, key: Any) -> None:
        """Fire the timer ``key`` now, whatever its deadline."""
        del self.timers[key]
        self._run(self.core.timer_fired(key))
