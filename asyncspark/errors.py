"""Every error asyncspark raises on purpose, in families.

- Misuse by the caller: subclasses of ``ValueError``/``TypeError`` (``ConfigError``,
  ``SerializationError``), raised before anything is sent.
- Remote failures: ``JobFailedError`` (a job could not finish; its message carries the
  remote traceback and ``__cause__`` is the original exception when it could be
  unpickled on the driver), ``ExecutorLostError``.
- Transport failures: ``TransportError`` (a ``ConnectionError``) and ``ProtocolError``
  split into ``LocalProtocolError`` (we were asked to send something invalid) and
  ``RemoteProtocolError`` (the peer sent something invalid; only that connection closes).
- Lost or unusable shared data: ``BroadcastError`` (an executor cannot fetch a
  broadcast), ``BroadcastDestroyedError`` (a use after ``destroy()``; also a
  ``ValueError``), ``CheckpointBlockLostError`` (a local checkpoint's executor is gone).
- ``JobRejectedError``: admission control (``asyncspark.scheduler.maxActiveJobs`` /
  ``maxPendingTasks``) refused a job before anything of it was submitted.
- ``JobCancelledError``: the job was cancelled by ``cancelJob``/``cancelJobGroup``/
  ``cancelAllJobs`` or by the context stopping. Cancelling the awaiting coroutine itself
  raises ``asyncio.CancelledError`` as usual.
"""

from __future__ import annotations

from typing import Any


class AsyncSparkError(Exception):
    """Base class of the errors asyncspark raises on purpose."""


class ConfigError(AsyncSparkError, ValueError):
    """A configuration value or master URL is invalid; the message names the key."""


class SerializationError(AsyncSparkError, TypeError):
    """A function or value could not be pickled; raised before any task is sent."""


class ProtocolError(AsyncSparkError):
    """A frame violated the wire protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol cannot carry."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid frame; only that connection is closed."""


class TransportError(AsyncSparkError, ConnectionError):
    """A connection failed, closed or could not be authenticated."""


class AuthenticationError(TransportError):
    """The peer did not prove knowledge of the application secret."""


class ExecutorLostError(AsyncSparkError):
    """An executor process died or stopped answering."""


class JobFailedError(AsyncSparkError):
    """A job failed: a task kept failing past ``spark.task.maxFailures`` or could not run.

    ``remote_traceback`` holds the executor-side traceback text of the last failure, when
    there was one; ``__cause__`` is the original exception when it could be unpickled.
    """

    def __init__(self, message: str, remote_traceback: str | None = None) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


class ResultTooLargeError(AsyncSparkError):
    """Task results are larger than ``spark.driver.maxResultSize`` allows: the total of
    a stage's results fetched to the driver would pass it, or one result alone does (its
    executor refuses to send it). The job fails (this is its ``__cause__``); its running
    tasks are killed and the context stays usable."""


class TaskResultLostError(AsyncSparkError):
    """The driver could not read a task result sent outside the status message (its file
    in the executor's local dir is missing or short, or reading it timed out): the task
    fails and is retried, counting against ``spark.task.maxFailures``."""


class JobCancelledError(AsyncSparkError):
    """The job was cancelled (``cancelJob``, ``cancelJobGroup``, ``cancelAllJobs``, stop)."""


class TaskKilledError(BaseException):
    """Raised inside a task thread to interrupt a task whose job was cancelled.

    A ``BaseException`` so that user code's ``except Exception`` does not swallow it.
    """


class ContextStoppedError(AsyncSparkError, RuntimeError):
    """The context was stopped, or has not been started."""


class FetchFailedError(AsyncSparkError):
    """A reduce task could not fetch a shuffle block (map output missing or unreachable).

    Carries which block (shuffle, map and reduce ids) and the executor that held it:
    the task fails with ``FetchFailed`` (not counted against ``spark.task.maxFailures``),
    the DAGScheduler unregisters that map output (and every output of that executor),
    and resubmits the map stage and then the failed stage.
    """

    def __init__(self, message: str, shuffle_id: int = -1, map_id: int = -1,
                 reduce_id: int = -1, address: tuple[str, int] | None = None,
                 executor_id: str | None = None) -> None:
        super().__init__(message)
        self.shuffle_id = shuffle_id
        self.map_id = map_id
        self.reduce_id = reduce_id
        self.address = address
        self.executor_id = executor_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.shuffle_id, self.map_id, self.reduce_id,
                             self.address, self.executor_id))


class CorruptDataError(AsyncSparkError, ValueError):
    """Bytes read back do not match the checksum written with them, or do not decode.

    Shuffle data, spill files and disk-stored cached blocks carry CRC-32 checksums: in a
    shuffle block this becomes ``FetchFailedError`` naming the block (its map output is
    recomputed); in a spill file it fails the task, naming the file (the task is
    retried); a cached block is dropped and recomputed from lineage."""


class CommitDeniedError(AsyncSparkError):
    """Raised in a task whose output another attempt of the same partition commits
    (the driver's output commit coordinator authorizes one attempt per partition, e.g. a
    speculative copy or the original). Its temporary output is discarded; it does not
    count as a task failure."""


class BroadcastError(AsyncSparkError):
    """An executor could not fetch a broadcast variable's value from the driver."""


class BroadcastDestroyedError(AsyncSparkError, ValueError):
    """A broadcast variable was used (``.value``, or in a task) after ``destroy()``."""

    @classmethod
    def of(cls, bid: int) -> BroadcastDestroyedError:
        """The error for a use of broadcast ``bid``."""
        return cls(f"Attempted to use Broadcast({bid}) after it was destroyed "
                   "(Broadcast.destroy() was called on the driver)")


class CheckpointBlockLostError(AsyncSparkError):
    """A locally checkpointed partition is gone with the executor that held it."""


class JobRejectedError(AsyncSparkError):
    """Admission control refused a job: ``asyncspark.scheduler.maxActiveJobs`` jobs are
    running, or its tasks would take the unfinished tasks of running jobs past
    ``asyncspark.scheduler.maxPendingTasks`` (at once, or after waiting
    ``asyncspark.scheduler.admissionTimeout``). Nothing of the job was submitted; a
    service answers 503 and the client retries later. ``limit`` names the key that
    refused it; ``active_jobs`` and ``pending_tasks`` are the counts at that moment."""

    def __init__(self, message: str, limit: str = "", active_jobs: int = 0,
                 pending_tasks: int = 0) -> None:
        super().__init__(message)
        self.limit = limit
        self.active_jobs = active_jobs
        self.pending_tasks = pending_tasks

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.limit, self.active_jobs, self.pending_tasks))
