"""A connection that records the frames the TaskScheduler sends (shared by the unit tests
of speculation, exclusion and commit coordination)."""

from __future__ import annotations

from asyncspark.transport.messages.tasks import LaunchTasks


class Conn:
    def __init__(self) -> None:
        self.frames: list = []

    def send(self, msg) -> None:
        self.frames.append(msg)

    def send_many(self, msgs) -> None:
        self.frames.extend(msgs)

    def launches(self) -> list:
        return [t for m in self.frames if type(m) is LaunchTasks for t in m.tasks]

    def launched(self) -> list:
        """The task ids of every launch sent."""
        return [t[0] for t in self.launches()]
