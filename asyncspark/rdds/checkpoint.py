"""Checkpointing: saving an RDD's partitions and truncating its lineage (Spark's
``ReliableRDDCheckpointData`` and ``LocalRDDCheckpointData``).

``rdd.checkpoint()`` (needs ``sc.setCheckpointDir``) and ``rdd.localCheckpoint()`` only
mark the RDD. After the next job that computes it finishes, a separate job writes every
partition (as in Spark, the partitions are computed again for that: ``cache()`` the RDD
first to avoid it), and then the RDD's lineage is truncated: its only dependency
becomes a ``CheckpointRDD`` that reads the saved partitions, stages are cut on the
truncated lineage, and it pickles into task binaries as a ``CheckpointedRDD`` reading
the checkpoint, with none of the old lineage (``reduce_checkpointed``).

- Reliable: one file per partition, ``<checkpoint dir>/rdd-<id>/part-NNNNN``, written by
  the executors (a shared filesystem, local or any fsspec URL, ``fs.py``: every executor
  of ``local[N]`` shares the driver's); later jobs, and other applications, read them
  even when the original source is gone.
- Local: each partition is written under the local directory of the executor that
  computed it (``<executor dir>/checkpoints/rdd-<id>/part-NNNNN``) — files, not the
  block manager, so an executor-local copy survives memory pressure. Executors of one
  host read each other's files. When that executor is lost its directory is removed and
  a job that needs the partition fails with ``CheckpointBlockLostError`` (as Spark's),
  since the lineage that could recompute it is gone.

Files hold consecutive pickles of record batches (plain pickle, cloudpickle for what
plain pickle cannot do); a partition is written to a temporary file and renamed, so a
retried or speculative attempt never leaves a torn file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import fs
from .._files import atomic_file
from ..dependency import OneToOneDependency
from ..errors import CheckpointBlockLostError
from ..planner import bump_lineage_version, walk
from ..rdd import RDD
from ..runtime import get_env
from ..serializers import dumps_result
from ..taskcontext import TaskContext

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["CheckpointRDD", "CheckpointedRDD", "LocalCheckpointRDD", "ReliableCheckpointRDD",
           "checkpoint_marked", "mark"]

_BATCH = 1024


class _CheckpointData:
    """An RDD's checkpoint state: ``marked`` -> ``writing`` -> ``done`` (with ``rdd``)."""

    __slots__ = ("local", "rdd", "state")

    def __init__(self, local: bool) -> None:
        self.local: bool = local
        self.state: str = "marked"
        self.rdd: CheckpointRDD | None = None

    def __getstate__(self) -> tuple[bool, str, CheckpointRDD | None]:
        return (self.local, self.state, self.rdd)

    def __setstate__(self, state: tuple[bool, str, CheckpointRDD | None]) -> None:
        self.local, self.state, self.rdd = state


def mark(rdd: RDD[Any], local: bool) -> None:
    """``rdd.checkpoint()`` / ``rdd.localCheckpoint()``."""
    ctx = rdd.context
    if not local and ctx.getCheckpointDir() is None:
        raise RuntimeError("Checkpoint directory has not been set in the SparkContext: "
                           "call sc.setCheckpointDir(dir) first")
    data = rdd.__dict__.get("_checkpoint")
    if data is not None:
        if data.local != local:
            raise ValueError(
                f"{rdd!r} is already marked for "
                f"{'local' if data.local else 'reliable'} checkpointing; it cannot be "
                f"{'locally ' if local else ''}checkpointed as well")
        return
    rdd.__dict__["_checkpoint"] = _CheckpointData(local)
    ctx.count_pending_checkpoint(1)


def state(rdd: RDD[Any]) -> _CheckpointData | None:
    return rdd.__dict__.get("_checkpoint")


async def checkpoint_marked(ctx: Context, final: RDD[Any]) -> None:
    """After a job on ``final``: write the marked RDDs of its lineage, as Spark's
    ``doCheckpoint`` (a marked RDD's own ancestors are not visited)."""
    def has_checkpoint(r: RDD[Any]) -> bool:
        return r.__dict__.get("_checkpoint") is not None

    marked = [r for r in walk(final, stop=has_checkpoint)
              if (data := r.__dict__.get("_checkpoint")) is not None and data.state == "marked"]
    for r in marked:
        await _write(ctx, r)


async def _write(ctx: Context, rdd: RDD[Any]) -> None:
    data: _CheckpointData = rdd.__dict__["_checkpoint"]
    if data.state != "marked":
        return
    data.state = "writing"
    try:
        n = rdd._num_partitions
        if data.local:
            locations = await ctx.run_job(rdd, _WritePartition(None, rdd.id()))
            cp: CheckpointRDD = LocalCheckpointRDD(ctx, rdd.id(), locations)
        else:
            path = fs.join(ctx.getCheckpointDir(), f"rdd-{rdd.id()}")  # type: ignore[arg-type]
            await ctx.run_job(rdd, _WritePartition(path, rdd.id()))
            written = await asyncio.to_thread(_count_parts, path) if n else 0
            if written != n:
                raise RuntimeError(
                    f"checkpoint of {rdd!r} in {path} has {written} partition files, "
                    f"the RDD has {n} partitions")
            cp = ReliableCheckpointRDD(ctx, path, n, rdd.id())
    except BaseException:
        data.state = "marked"  # the next job tries again
        raise
    cp.partitioner = rdd.partitioner
    rdd._deps = [OneToOneDependency(cp)]
    data.rdd = cp
    data.state = "done"
    ctx.count_pending_checkpoint(-1)
    bump_lineage_version()


def _count_parts(path: str) -> int:
    names = [os.path.basename(f.rstrip("/")) for f in fs.expand(path, "checkpoint")]
    return sum(1 for f in names if f.startswith("part-") and ".tmp-" not in f)


_base_keys: frozenset[str] | None = None


def reduce_checkpointed(rdd: RDD[Any]) -> tuple[Any, ...]:
    """How a checkpointed RDD pickles: as a ``CheckpointedRDD`` with the base RDD
    fields (id, partitions, partitioner, storage level...) and the checkpoint, none of
    its class's references to the old lineage or its functions. On an executor its
    ``compute`` reads the checkpoint, so caching it (which computes through ``compute``)
    works as for any RDD."""
    global _base_keys
    if _base_keys is None:
        bare = RDD.__new__(RDD)
        RDD.__init__(bare, None, [], 0)  # type: ignore[arg-type]
        _base_keys = frozenset(bare.__dict__) | {"_checkpoint"}
    state = {k: v for k, v in rdd.__getstate__().items()
             if k in _base_keys or hasattr(RDD, k)}  # class-level defaults (storage level)
    return (_restore_checkpointed, (state,))


def _restore_checkpointed(state: dict) -> CheckpointedRDD:
    rdd = CheckpointedRDD.__new__(CheckpointedRDD)
    rdd.__dict__.update(state)
    return rdd


class _WritePartition:
    """The write job's function: one partition into ``part-NNNNN`` under ``directory``
    (the executor's local directory when None); returns where it went."""

    def __init__(self, directory: str | None, rdd_id: int) -> None:
        self.directory = directory
        self.rdd_id = rdd_id

    def __call__(self, it: Iterator) -> Any:

        ctx = TaskContext.get()
        assert ctx is not None, "checkpoint writes run in tasks"
        directory = self.directory
        if directory is None:
            directory = os.path.join(ctx.localDir(), "checkpoints", f"rdd-{self.rdd_id}")
        fs.makedirs(directory)
        path = fs.join(directory, f"part-{ctx.partitionId():05d}")
        tmp = f"{path}.tmp-{ctx.taskAttemptId()}"
        with (atomic_file(path, tmp) if fs.is_local(path) else _remote_atomic(path, tmp)) as f:
            batch: list = []
            for record in it:
                batch.append(record)
                if len(batch) >= _BATCH:
                    f.write(dumps_result(batch))
                    batch = []
            if batch:
                f.write(dumps_result(batch))
        if self.directory is not None:
            return None

        env = get_env()
        return [env.executor_id, env.host, path]


@contextlib.contextmanager
def _remote_atomic(path: str, tmp: str) -> Iterator[Any]:
    """``atomic_file`` on an fsspec filesystem: write ``tmp``, then move it to ``path``."""
    try:
        with fs.open_file(tmp, "wb") as f:
            yield f
        fs.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.remove(tmp)
        raise


def _read(f) -> Iterator[Any]:
    """The records of an open checkpoint file, which is closed at the end."""
    with f:
        while True:
            try:
                batch = pickle.load(f)
            except EOFError:
                return
            yield from batch


class CheckpointedRDD(RDD[Any]):
    """A checkpointed RDD as tasks see it (``reduce_checkpointed``)."""

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        return self._checkpoint.rdd.iterator(split, task_ctx)


class CheckpointRDD(RDD[Any]):
    """Base of the RDDs reading saved partitions: no dependencies."""

    def _describe(self) -> str:
        return type(self).__name__


class ReliableCheckpointRDD(CheckpointRDD):
    def __init__(self, ctx: Context, path: str, num_partitions: int, rdd_id: int) -> None:
        super().__init__(ctx, [], num_partitions)
        self.path = path
        self.checkpointed_id = rdd_id

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        path = fs.join(self.path, f"part-{split:05d}")
        try:
            f = fs.open_file(path, "rb")  # closed by _read
        except FileNotFoundError:
            raise FileNotFoundError(
                f"checkpoint file {path} of RDD {self.checkpointed_id} (partition {split}) "
                "is missing") from None
        return _read(f)


class LocalCheckpointRDD(CheckpointRDD):
    def __init__(self, ctx: Context, rdd_id: int, locations: list[list[str]]) -> None:
        super().__init__(ctx, [], len(locations))
        self.checkpointed_id = rdd_id
        self.locations: list[list[str]] = locations  # per partition: [executor_id, host, path]

    def compute(self, split: int, task_ctx: TaskContext) -> Iterator[Any]:
        executor_id, _host, path = self.locations[split]
        try:
            f = open(path, "rb")  # closed by _read
        except FileNotFoundError:
            raise CheckpointBlockLostError(
                f"Checkpoint block rdd_{self.checkpointed_id}_{split} not found: executor "
                f"{executor_id}, which held it, was lost (or its local directory "
                f"{os.path.dirname(path)} is not readable here). A locally checkpointed "
                "partition cannot be recomputed; use rdd.checkpoint() for fault-tolerant "
                "checkpoints") from None
        return _read(f)
