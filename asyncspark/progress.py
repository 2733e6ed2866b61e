"""The console progress bar (Spark's ``ConsoleProgressBar``): a listener drawing the
running stages on stderr as ``[Stage 3:=====>          (12 + 2) / 40]`` (done + running
/ total), redrawn at most every 200 ms (on task events and on a loop timer while stages
run), a stage drawn once it has run 500 ms (a shorter one, which Spark does not draw
either, leaves no trace) and cleared when no stage is running. Short stages cost a
clock read per task event and one timer per 500 ms. On only when
stderr is a terminal (``spark.ui.showConsoleProgress``); events arrive on the driver's
event loop, so it works the same under the blocking facade (``asyncspark.sync``).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .listener import (
        SparkListenerJobEnd,
        SparkListenerStageCompleted,
        SparkListenerStageSubmitted,
        SparkListenerTaskEnd,
        SparkListenerTaskStart,
    )

__all__ = ["ConsoleProgressBar", "render_bar"]

UPDATE_PERIOD = 0.2  # seconds between redraws
FIRST_DELAY = 0.5  # a stage is drawn once it has run this long (Spark: 500 ms)


def render_bar(stages: list[tuple[int, int, int, int]], width: int) -> str:
    """``stages``: ``(stage id, total, done, running)``; the bar text, Spark's format."""
    if not stages:
        return ""
    each = width // len(stages)
    parts = []
    for sid, total, done, running in stages:
        header = f"[Stage {sid}:"
        tailer = f"({done} + {running}) / {total}]"
        w = each - len(header) - len(tailer)
        if w > 0:
            pct = w * done // total if total else 0
            bar = "".join("=" if i < pct else (">" if i == pct else " ") for i in range(w))
        else:
            bar = ""
        parts.append(header + bar + tailer)
    return "".join(parts)


class ConsoleProgressBar:
    """A listener; see the module docstring."""

    queue_name = "progressBar"

    def __init__(self, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 width: int | None = None) -> None:
        self.out: TextIO = out or sys.stderr
        self.clock: Callable[[], float] = clock
        self.width = width
        self.stages: dict[tuple[int, int], list] = {}  # -> [total, done, running, start]
        self.last_draw: float = 0.0
        self.last_text: str = ""
        self._timer: asyncio.TimerHandle | None = None

    def onStageSubmitted(self, ev: SparkListenerStageSubmitted) -> None:
        self.stages[(ev.stageId, ev.attemptId)] = [ev.numTasks, 0, 0, self.clock()]
        self._arm(FIRST_DELAY)

    def _arm(self, delay: float) -> None:
        """Redraw on a timer too, so that a stage whose tasks all run long shows up."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven without a loop (tests): events alone redraw
        self._timer = loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.stages:
            self._maybe_draw(force=True)
            self._arm(UPDATE_PERIOD)

    def onTaskStart(self, ev: SparkListenerTaskStart) -> None:
        st = self.stages.get((ev.stageId, ev.stageAttemptId))
        if st is not None:
            st[2] += 1
            self._maybe_draw()

    def onTaskEnd(self, ev: SparkListenerTaskEnd) -> None:
        st = self.stages.get((ev.stageId, ev.stageAttemptId))
        if st is not None:
            st[2] = max(0, st[2] - 1)
            if ev.successful:
                st[1] += 1
            self._maybe_draw()

    def onStageCompleted(self, ev: SparkListenerStageCompleted) -> None:
        self.stages.pop((ev.stageId, ev.attemptId), None)
        if not self.stages:
            # The timer is left to fire (and not re-arm): a stream of short jobs arms
            # it once per FIRST_DELAY, not once per stage.
            self.clear()
        else:
            self._maybe_draw(force=True)

    def onJobEnd(self, ev: SparkListenerJobEnd) -> None:
        if not self.stages:
            self.clear()

    def _maybe_draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last_draw < UPDATE_PERIOD:
            return
        shown = sorted((sid, st[0], st[1], st[2]) for (sid, _a), st in self.stages.items()
                       if now - st[3] >= FIRST_DELAY)[:3]
        if not shown:
            self.last_draw = now  # nothing to draw yet: look again after UPDATE_PERIOD
            return
        width = self.width or shutil.get_terminal_size((80, 20)).columns
        text = render_bar(shown, width)
        if text != self.last_text:
            self.out.write("\r" + text)
            self.out.flush()
            self.last_text = text
        self.last_draw = now

    def clear(self) -> None:
        """Erase the bar (the line it is on)."""
        if self.last_text:
            width = self.width or shutil.get_terminal_size((80, 20)).columns
            self.out.write("\r" + " " * width + "\r")
            self.out.flush()
            self.last_text = ""
