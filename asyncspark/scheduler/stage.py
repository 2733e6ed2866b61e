"""Scheduler state objects: jobs, stages, task sets, job waiters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["ActiveJob", "JobWaiter", "ResultStage", "TaskSet"]


class JobWaiter:
    """Collects a job's per-partition results; its ``future`` is what the caller awaits."""

    __slots__ = ("finished", "future", "job_id", "results")

    def __init__(self, future: asyncio.Future, num_tasks: int, job_id: int = -1) -> None:
        self.future = future
        self.results: list = [None] * num_tasks
        self.finished = 0
        self.job_id = job_id

    def succeed(self) -> None:
        if not self.future.done():
            self.future.set_result(self.results)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(slots=True)
class TaskSet:
    """The tasks of one stage attempt, handed to the TaskScheduler."""

    stage_id: int
    stage_attempt: int
    job_id: int
    binary_id: int
    binary: bytes
    partitions: list[int]  # partition computed by task index i
    properties: dict = field(default_factory=dict)

    @property
    def priority(self) -> tuple[int, int]:
        """FIFO across jobs: earlier jobs first, then earlier stages."""
        return (self.job_id, self.stage_id)


@dataclass(slots=True)
class ResultStage:
    """The final stage of a job: runs the job's function on the requested partitions."""

    stage_id: int
    rdd_id: int
    num_partitions: int
    partitions: list[int]
    job_id: int
    binary: bytes
    attempt: int = 0
    # output index -> done; partitions[i] is computed by output i
    done: list[bool] = field(default_factory=list)
    num_done: int = 0

    def __post_init__(self) -> None:
        if not self.done:
            self.done = [False] * len(self.partitions)


@dataclass(slots=True)
class ActiveJob:
    job_id: int
    final_stage: ResultStage
    waiter: JobWaiter
    properties: dict
    submitted_at: float
