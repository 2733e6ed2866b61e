"""Job tags (``spark.job.tags``) and ``setInterruptOnCancel``: PySpark's methods, mixed
into ``Context``.

Tags are a local property like the others (per coroutine, per thread on the blocking
facade), kept comma-separated, so a tag may not contain a comma nor be empty (Spark's
rules). ``cancelJobsWithTag`` posts ``JobTagCancelled``: the DAG scheduler cancels the
active jobs whose ``spark.job.tags`` contain the tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .scheduler.dag_scheduler import JOB_TAGS_KEY
from .scheduler.events import JobTagCancelled

__all__ = ["JobTags", "check_tag"]


def check_tag(tag: str) -> None:
    """Spark's rules for job tags (they travel comma-separated in ``spark.job.tags``)."""
    if not isinstance(tag, str):
        raise TypeError(f"a job tag must be a str, got {type(tag).__name__}")
    if "," in tag:
        raise ValueError(f"Spark job tag cannot contain `,`: {tag!r}")
    if not tag:
        raise ValueError("Spark job tag cannot be an empty string.")


class JobTags:
    """The tag methods of ``Context``; it provides ``setLocalProperty``,
    ``getLocalProperty``, ``_check_running`` and ``_dag``."""

    _dag: Any

    if TYPE_CHECKING:
        def setLocalProperty(self, key: str, value: str | None) -> None: ...

        def getLocalProperty(self, key: str) -> str | None: ...

        def _check_running(self) -> None: ...

    def setInterruptOnCancel(self, interruptOnCancel: bool) -> None:
        """Recorded as ``spark.job.interruptOnCancel``, as PySpark. A cancelled job's
        tasks are always interrupted (``TaskKilledError`` at their next Python
        bytecode; a task blocked in C code gets its executor killed after
        ``asyncspark.task.killGracePeriod``), which is what Spark does either way for
        tasks that iterate their input.

        >>> sc.setInterruptOnCancel(True)
        >>> sc.getLocalProperty("spark.job.interruptOnCancel")
        'true'
        >>> sc.setLocalProperty("spark.job.interruptOnCancel", None)
        """
        self.setLocalProperty("spark.job.interruptOnCancel", str(bool(interruptOnCancel)).lower())

    def addJobTag(self, tag: str) -> None:
        """Tag the jobs this coroutine submits from now on (``cancelJobsWithTag``).

        >>> sc.addJobTag("etl"); sc.addJobTag("nightly")
        >>> sorted(sc.getJobTags())
        ['etl', 'nightly']
        >>> sc.clearJobTags()
        """
        check_tag(tag)
        tags = self.getJobTags()
        tags.add(tag)
        self.setLocalProperty(JOB_TAGS_KEY, ",".join(sorted(tags)))

    def removeJobTag(self, tag: str) -> None:
        """Stop tagging this coroutine's later jobs with ``tag``.

        >>> sc.addJobTag("etl"); sc.removeJobTag("etl")
        >>> sc.getJobTags()
        set()
        """
        check_tag(tag)
        tags = self.getJobTags()
        tags.discard(tag)
        self.setLocalProperty(JOB_TAGS_KEY, ",".join(sorted(tags)) if tags else None)

    def getJobTags(self) -> set[str]:
        """The tags jobs submitted from this coroutine get.

        >>> sc.getJobTags()
        set()
        """
        value = self.getLocalProperty(JOB_TAGS_KEY)
        return set(value.split(",")) if value else set()

    def clearJobTags(self) -> None:
        """Remove every tag of this coroutine's later jobs.

        >>> sc.addJobTag("a"); sc.addJobTag("b"); sc.clearJobTags()
        >>> sc.getJobTags()
        set()
        """
        self.setLocalProperty(JOB_TAGS_KEY, None)

    def cancelJobsWithTag(self, tag: str) -> None:
        """Cancel the active jobs that carry ``tag``: their callers get
        ``JobCancelledError``, their tasks are killed.

        >>> import asyncio, time
        >>> spin = sc.parallelize([1], 1).map(lambda x: any(time.sleep(0.01) for _ in iter(int, 1)))
        >>> async def cancelled():
        ...     sc.addJobTag("spin")
        ...     job = asyncio.ensure_future(spin.collect())
        ...     while not sc.statusTracker().getActiveJobsIds(): await asyncio.sleep(0.01)
        ...     sc.cancelJobsWithTag("spin")
        ...     return await asyncio.gather(job, return_exceptions=True)
        >>> await asyncio.wait_for(cancelled(), 60)  # doctest: +ELLIPSIS
        [JobCancelledError(...)]
        """
        check_tag(tag)
        self._check_running()
        self._dag.post(JobTagCancelled(tag))
