"""Job control and observation of ``Context`` (a mixin of ``Context``): the per-coroutine
local properties (``setLocalProperty``, job groups and descriptions), cancelling jobs
(``cancelJob``, ``cancelJobGroup``, ``cancelAllJobs``), the listeners of scheduler events
(``addSparkListener``, ``removeSparkListener``, ``events``), ``statusTracker`` and
``setLogLevel``. Job tags are in ``jobtags.py``.

Spark's thread-local properties map onto a ``ContextVar``: a coroutine's jobs carry the
properties it set, and an asyncio task it creates afterwards starts with a copy of them.
"""

from __future__ import annotations

import contextlib
import contextvars
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .scheduler.dag_scheduler import JOB_GROUP_KEY
from .scheduler.events import AllJobsCancelled, JobCancelled, JobGroupCancelled
from .ui.tracker import StatusTracker

if TYPE_CHECKING:
    from .listener import ListenerBus

__all__ = ["JobControl", "isolated_local_properties"]

# Per-coroutine job properties (job group, description): a ContextVar maps Spark's
# thread-local properties onto asyncio tasks.
_NO_PROPERTIES: Mapping[str, str] = types.MappingProxyType({})
_local_properties: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "asyncspark_local_properties", default=_NO_PROPERTIES)


@contextlib.contextmanager
def isolated_local_properties() -> Iterator[None]:
    """Local properties (job tags, pool, group...) set inside the block are undone at
    its end, in this coroutine (``asyncspark.web`` runs each request's handler in one)."""
    token = _local_properties.set(_local_properties.get())
    try:
        yield
    finally:
        _local_properties.reset(token)


class JobControl:
    """Local properties, job groups, cancellation, listeners and status of ``Context``
    (``self`` is a Context)."""

    _dag: Any
    _obs: Any  # ui.session.Observability: the status store, UI, event log
    _active_jobs: dict[int, str | None]
    listener_bus: ListenerBus

    if TYPE_CHECKING:  # what the mixin needs of its host, the Context
        def _check_running(self) -> None: ...

    def setLocalProperty(self, key: str, value: str | None) -> None:
        """Set a property of jobs submitted from the current coroutine (and tasks it
        creates afterwards); ``None`` removes it.

        >>> sc.setLocalProperty("team", "billing")
        >>> sc.getLocalProperty("team")
        'billing'
        >>> sc.setLocalProperty("team", None)
        """
        props = dict(_local_properties.get())
        if value is None:
            props.pop(key, None)
        else:
            props[key] = str(value)
        _local_properties.set(props)

    def getLocalProperty(self, key: str) -> str | None:
        """The value of a local property of this coroutine, or ``None`` if not set.

        >>> sc.getLocalProperty("no.such.property") is None
        True
        """
        return _local_properties.get().get(key)

    def setJobGroup(self, groupId: str, description: str | None,
                    interruptOnCancel: bool = False) -> None:
        """Put the jobs this coroutine submits from now on into group ``groupId``
        (``cancelJobGroup``, ``statusTracker().getJobIdsForGroup``).

        >>> sc.setJobGroup("nightly", "the nightly report")
        >>> sc.getLocalProperty("spark.jobGroup.id"), sc.getLocalProperty("spark.job.description")
        ('nightly', 'the nightly report')
        >>> sc.clearJobGroup()
        """
        self.setLocalProperty(JOB_GROUP_KEY, groupId)
        self.setLocalProperty("spark.job.description", description)
        self.setLocalProperty("spark.job.interruptOnCancel", str(interruptOnCancel).lower())

    def clearJobGroup(self) -> None:
        """Undo ``setJobGroup``: later jobs of this coroutine are in no group.

        >>> sc.setJobGroup("g", None)
        >>> sc.clearJobGroup()
        >>> sc.getLocalProperty("spark.jobGroup.id") is None
        True
        """
        for key in (JOB_GROUP_KEY, "spark.job.description", "spark.job.interruptOnCancel"):
            self.setLocalProperty(key, None)

    def setJobDescription(self, value: str) -> None:
        """Describe the jobs this coroutine submits from now on (the UI shows it).

        >>> sc.setJobDescription("count the lines")
        >>> sc.getLocalProperty("spark.job.description")
        'count the lines'
        >>> sc.setLocalProperty("spark.job.description", None)
        """
        self.setLocalProperty("spark.job.description", value)

    def cancelJob(self, jobId: int, reason: str | None = None) -> None:
        """Cancel a running job: its awaiting caller gets ``JobCancelledError``, its
        tasks are killed. A job that is not running is left as it is.

        >>> import asyncio, time
        >>> spin = sc.parallelize([1], 1).map(lambda x: any(time.sleep(0.01) for _ in iter(int, 1)))
        >>> async def cancelled():
        ...     job = asyncio.ensure_future(spin.collect())
        ...     while not sc.statusTracker().getActiveJobsIds(): await asyncio.sleep(0.01)
        ...     sc.cancelJob(sc.statusTracker().getActiveJobsIds()[0], "not needed")
        ...     return await asyncio.gather(job, return_exceptions=True)
        >>> await asyncio.wait_for(cancelled(), 60)  # doctest: +ELLIPSIS
        [JobCancelledError(...)]
        """
        self._check_running()
        self._dag.post(JobCancelled(jobId, reason or ""))

    def cancelJobGroup(self, groupId: str) -> None:
        """Cancel the active jobs of group ``groupId`` (``setJobGroup``).

        >>> import asyncio, time
        >>> spin = sc.parallelize([1], 1).map(lambda x: any(time.sleep(0.01) for _ in iter(int, 1)))
        >>> async def cancelled():
        ...     sc.setJobGroup("report", "a report nobody waits for")
        ...     job = asyncio.ensure_future(spin.collect())
        ...     while not sc.statusTracker().getJobIdsForGroup("report"): await asyncio.sleep(0.01)
        ...     sc.cancelJobGroup("report")
        ...     return await asyncio.gather(job, return_exceptions=True)
        >>> await asyncio.wait_for(cancelled(), 60)  # doctest: +ELLIPSIS
        [JobCancelledError(...)]
        """
        self._check_running()
        self._dag.post(JobGroupCancelled(groupId))

    def cancelAllJobs(self) -> None:
        """Cancel every active job of this context (as ``cancelJob`` does each); the
        context stays usable.

        >>> sc.cancelAllJobs()
        >>> await sc.range(3).count()
        3
        """
        self._check_running()
        self._dag.post(AllJobsCancelled())

    def addSparkListener(self, listener: Any) -> None:
        """Receive scheduler events (see ``asyncspark.listener.SparkListener``).

        >>> from asyncspark.listener import SparkListener
        >>> class JobEnds(SparkListener):
        ...     def __init__(self): self.results = []
        ...     def onJobEnd(self, event): self.results.append(event.jobResult)
        >>> ends = JobEnds(); sc.addSparkListener(ends)
        >>> n = await sc.range(4).count(); sc.listener_bus.flush(); ends.results
        ['JobSucceeded']
        >>> sc.removeSparkListener(ends)
        """
        self.listener_bus.add(listener)

    def removeSparkListener(self, listener: Any) -> None:
        """Stop delivering events to ``listener`` (added by ``addSparkListener``).

        >>> from asyncspark.listener import SparkListener
        >>> listener = SparkListener(); sc.addSparkListener(listener)
        >>> await sc.range(2).count()
        2
        >>> sc.removeSparkListener(listener)
        """
        self.listener_bus.remove(listener)

    def statusTracker(self) -> StatusTracker:
        """PySpark's ``StatusTracker`` on the status store (attached now if nothing had
        asked for it yet: jobs from then on are known).

        >>> sc.statusTracker().getJobIdsForGroup("no such group")
        []
        """
        return StatusTracker(self._obs.status_store(), self._active_jobs,
                             self.listener_bus.flush)

    def status_store(self) -> Any:
        """The status store behind the UI and the tracker (``ui/store.py``), attached on
        first use. Internal: applications use ``statusTracker()`` or the REST API."""
        return self._obs.status_store()

    def setLogLevel(self, logLevel: str) -> None:
        """Set the ``asyncspark`` loggers' level: ALL, DEBUG, ERROR, FATAL, INFO, OFF,
        TRACE or WARN (PySpark's names); executors started afterwards log at it too.

        >>> import logging
        >>> level = logging.getLogger("asyncspark").level
        >>> sc.setLogLevel("ERROR"); logging.getLogger("asyncspark").level == logging.ERROR
        True
        >>> logging.getLogger("asyncspark").setLevel(level)
        """
        from .logs import set_log_level

        set_log_level(logLevel)

    def events(self) -> Any:
        """``async for event in sc.events()``: every listener event from now on, until
        the context stops (a bounded queue: see ``asyncspark.listener``).

        >>> async def first_job_end():
        ...     async for event in sc.events():
        ...         if type(event).__name__ == "SparkListenerJobEnd":
        ...             return event.jobResult
        >>> import asyncio
        >>> ends = asyncio.ensure_future(first_job_end()); await asyncio.sleep(0)
        >>> await sc.range(3).count(), await asyncio.wait_for(ends, 60)
        (3, 'JobSucceeded')
        """
        return self.listener_bus.events()
