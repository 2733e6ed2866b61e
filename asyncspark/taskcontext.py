"""``TaskContext``: what a running task knows about itself (PySpark's API)."""

from __future__ import annotations

import threading

__all__ = ["TaskContext"]

_local = threading.local()


class TaskContext:
    """Information about the task attempt running on this thread; ``TaskContext.get()``."""

    __slots__ = ("_accumulators", "_attempt", "_local_dir", "_metrics", "_partition", "_stage",
                 "_task_id")

    def __init__(self, stage_id: int, partition: int, attempt: int, task_id: int,
                 local_dir: str) -> None:
        self._stage = stage_id
        self._partition = partition
        self._attempt = attempt
        self._task_id = task_id
        self._local_dir = local_dir
        self._metrics: dict = {}  # reported with the task's status (e.g. spill bytes)
        self._accumulators: dict | None = None  # accumulator id -> this attempt's update

    @classmethod
    def get(cls) -> TaskContext | None:
        """The context of the task running on this thread, or None on the driver.

        >>> TaskContext.get() is None  # on the driver
        True
        >>> await sc.parallelize([1], 1).map(lambda _: TaskContext.get() is not None).collect()
        [True]
        """
        return getattr(_local, "ctx", None)

    @classmethod
    def _set(cls, ctx: TaskContext | None) -> None:
        _local.ctx = ctx

    def stageId(self) -> int:
        """The id of the stage this task belongs to.

        >>> rdd = sc.parallelize([1, 2], 2)
        >>> ids = await rdd.map(lambda _: TaskContext.get().stageId()).collect()
        >>> len(set(ids)), isinstance(ids[0], int)
        (1, True)
        """
        return self._stage

    def partitionId(self) -> int:
        """The partition this task computes.

        >>> await sc.parallelize([1, 2], 2).map(lambda _: TaskContext.get().partitionId()).collect()
        [0, 1]
        """
        return self._partition

    def attemptNumber(self) -> int:
        """How many times this task was attempted before (0 the first time).

        >>> await sc.parallelize([1], 1).map(lambda _: TaskContext.get().attemptNumber()).collect()
        [0]
        """
        return self._attempt

    def taskAttemptId(self) -> int:
        """An id unique to this task attempt within the application.

        >>> rdd = sc.parallelize([1, 2], 2)
        >>> a = await rdd.map(lambda _: TaskContext.get().taskAttemptId()).collect()
        >>> len(set(a))
        2
        """
        return self._task_id

    def localDir(self) -> str:
        """A scratch directory private to this executor.

        >>> import os
        >>> await sc.parallelize([1], 1).map(
        ...     lambda _: os.path.isdir(TaskContext.get().localDir())).collect()
        [True]
        """
        return self._local_dir
