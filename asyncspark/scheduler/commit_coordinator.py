"""The output commit coordinator: of all the attempts of one output partition, only one
may commit ("first committer wins", Spark's ``OutputCommitCoordinator``).

A task writing output (``saveAsTextFile``) writes an attempt-specific temporary file,
then asks the driver (``AskCommit`` on its control connection) whether it may move it
into place. The first attempt to ask for partition ``p`` of stage ``s`` is authorized;
every other attempt is denied (``CommitAnswer(allowed=False)``) and discards its file,
failing with ``CommitDeniedError``, which does not count as a task failure. If the
authorized attempt ends without succeeding (failed, killed, executor lost), its
authorization is released and the next attempt to ask gets it. An attempt that has
ended is never authorized afterwards. Pure bookkeeping, no I/O; the TaskScheduler calls
it on the driver's loop.
"""

from __future__ import annotations

__all__ = ["OutputCommitCoordinator"]


class OutputCommitCoordinator:
    __slots__ = ("_ended", "_stages")

    def __init__(self) -> None:
        # stage id -> partition -> task id of the authorized attempt
        self._stages: dict[int, dict[int, int]] = {}
        # stage id -> task ids of attempts that ended without success
        self._ended: dict[int, set[int]] = {}

    def can_commit(self, stage_id: int, partition: int, task_id: int) -> bool:
        """Authorize ``task_id`` to commit ``partition`` of ``stage_id`` if no other
        attempt holds the authorization (asking again gives the same answer)."""
        if task_id in self._ended.get(stage_id, ()):
            return False
        holders = self._stages.setdefault(stage_id, {})
        holder = holders.get(partition)
        if holder is None:
            holders[partition] = task_id
            return True
        return holder == task_id

    def authorized(self, stage_id: int, partition: int) -> int | None:
        """The task id authorized to commit, or None."""
        return self._stages.get(stage_id, {}).get(partition)

    def task_ended(self, stage_id: int, partition: int, task_id: int, success: bool) -> None:
        """An attempt ended; a failed authorized attempt gives its authorization back."""
        if success:
            return
        holders = self._stages.get(stage_id)
        if holders is None:
            return  # nothing of this stage asked: nothing to release or remember
        self._ended.setdefault(stage_id, set()).add(task_id)
        if holders.get(partition) == task_id:
            del holders[partition]

    def stage_ended(self, stage_id: int) -> None:
        """Forget a stage whose task set is done (finished, aborted or cancelled)."""
        self._stages.pop(stage_id, None)
        self._ended.pop(stage_id, None)
