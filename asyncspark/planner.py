"""The planner: every walk over an RDD lineage, in one place, with one walker (``walk``).

It owns what the driver derives from a lineage before a job runs: the driver-side
preparation hooks (``prepare``), the shuffle dependencies that cut stages
(``shuffle_parents``, and the stage graph of a job, ``StagePlanner.shuffle_graph``), the
persisted ancestors that give locality (``cached_ancestors``), the task binaries of result
and map stages (``task_binary``, ``StagePlanner.map_binary``), the search for RDDs or the
Context used inside functions (``check_no_nested_use``), and the lineage version that a
checkpoint bumps when it truncates a lineage (``bump_lineage_version``), making cached
walks stale. The planner belongs to the lineage layer and reads an RDD's dependency list
(``_deps``) directly; it never imports ``rdd`` at run time (the RDD and the Context call
it). ``LineageContext`` is the whole interface an RDD uses of its context.
"""

from __future__ import annotations

import pickle
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from . import serializers
from .dependency import Dependency, OneToOneDependency, ShuffleDependency

# Every executor imports this module with the first RDD it unpickles (rdd.py imports it),
# inside its first task. The stage graph's ``ShuffleInfo`` and the map stages'
# ``ShuffleWriteFunc`` are driver-side only, so ``StagePlanner`` imports them where it uses
# them, keeping scheduler/stage.py and shuffle/writer.py (and what they import) out of
# that first task (tests/unit/test_executor_imports.py).
if TYPE_CHECKING:
    from .conf import Config
    from .rdd import RDD
    from .scheduler.stage import ShuffleInfo

__all__ = [
    "TASK_MODULES",
    "LineageContext",
    "StagePlanner",
    "bump_lineage_version",
    "cached_ancestors",
    "check_no_nested_use",
    "engine_function",
    "lineage_version",
    "prepare",
    "rdd_infos",
    "shuffle_parents",
    "task_binary",
    "walk",
]

_lineage_version = [0]

# What unpickling the task binaries of most jobs imports on an executor (the RDD base
# class with its mixins, the RDDs of parallelize/range and of map/filter-like steps).
# Executors import these once registered, before their first task (ExecutorSettings
# .preload), so that import does not run inside a task while a job needs the CPU.
TASK_MODULES = ("asyncspark.rdd", "asyncspark.rdds.collection", "asyncspark.rdds.narrow")


class LineageContext(Protocol):
    """What an RDD asks of its context, all of it (``Context`` implements it): the RDD
    never imports the context and uses none of its private members."""

    conf: Config

    def new_rdd_id(self) -> int: ...

    def new_shuffle_id(self) -> int: ...

    async def run_job(self, rdd: RDD[Any], func: Callable[[Iterator[Any]], Any],
                      partitions: Iterable[int] | None = None) -> list[Any]:
        """``func(iterator) -> value`` on each partition (all by default); the values in
        order. Writes the checkpoints marked in the lineage afterwards."""
        ...

    def unpersist_rdd(self, rdd_id: int) -> object:
        """Forget and remove the cached blocks of ``rdd_id`` (in the background)."""

    def getCheckpointDir(self) -> str | None: ...

    def count_pending_checkpoint(self, delta: int) -> None:
        """An RDD was marked for checkpointing (+1) or its checkpoint written (-1)."""


def lineage_version() -> int:
    """Bumped when a checkpoint truncates some RDD's lineage: walks cached before are stale."""
    return _lineage_version[0]


def bump_lineage_version() -> None:
    _lineage_version[0] += 1


def walk(rdd: RDD[Any], follow: Callable[[Dependency], bool] | None = None,
         stop: Callable[[RDD[Any]], bool] | None = None) -> Iterator[RDD[Any]]:
    """Each RDD of ``rdd``'s lineage once (``rdd`` first, then depth first), through the
    dependencies ``follow`` accepts (all by default), not beyond RDDs ``stop`` accepts."""
    seen: set[int] = set()
    stack: list[RDD] = [rdd]
    while stack:
        r = stack.pop()
        if id(r) in seen:
            continue
        seen.add(id(r))
        yield r
        if stop is not None and stop(r):
            continue
        stack.extend(d.rdd for d in r._deps
                     if follow is None or follow(d))


def rdd_infos(rdd: RDD[Any]) -> list[dict[str, Any]]:
    """The lineage of ``rdd`` for the UI: per RDD its id, name, partitions, narrow parents
    and shuffle parents (kept on the RDD until its lineage or a name changes: a job's
    listener events are built on the scheduler's path; the list is not to be changed)."""
    cached = rdd.__dict__.get("_rdd_infos_cache")
    if cached is not None and cached[0] == _lineage_version[0]:
        for ref, d in cached[2]:
            r = ref()  # weak: a checkpoint's truncated ancestors are not kept alive
            if r is None or d["name"] != (r._name or type(r).__name__):
                break
        else:
            return cached[1]
    out: list[dict] = []
    pairs = []
    for r in walk(rdd):
        narrow, shuffle = [], []
        for dep in r.dependencies:
            (shuffle if isinstance(dep, ShuffleDependency) else narrow).append(dep.rdd.id())
        d = {"id": r.id(), "name": r.name() or type(r).__name__,
             "numPartitions": r.getNumPartitions(), "parentIds": narrow,
             "shuffleParentIds": shuffle}
        out.append(d)
        pairs.append((weakref.ref(r), d))
    rdd.__dict__["_rdd_infos_cache"] = (_lineage_version[0], out, pairs)
    return out


def cached_ancestors(rdd: RDD[Any]) -> list[int]:
    """Ids of persisted RDDs (``rdd`` included) whose partition i a task computing ``rdd``'s
    partition i reads (one-to-one dependencies): where their blocks are cached is where
    such a task prefers to run."""
    return [r.id() for r in walk(rdd, lambda d: type(d) is OneToOneDependency) if r.is_cached]


def shuffle_parents(rdd: RDD[Any]) -> list[ShuffleDependency]:
    """The shuffle dependencies reached through narrow ones (cached on the RDD, which is
    immutable, until the lineage version changes)."""
    cached = rdd.__dict__.get("_shuffle_parents_cache")
    if cached is not None and cached[0] == _lineage_version[0]:
        return cached[1]
    found: list[ShuffleDependency] = []
    ids: set[int] = set()
    for r in walk(rdd, lambda d: not isinstance(d, ShuffleDependency)):
        for d in r._deps:
            if isinstance(d, ShuffleDependency) and d.shuffle_id not in ids:
                ids.add(d.shuffle_id)
                found.append(d)
    rdd.__dict__["_shuffle_parents_cache"] = (_lineage_version[0], found)
    return found


async def prepare(rdd: RDD[Any]) -> None:
    """Run the driver-side ``prepare_self`` hooks of the lineage (e.g. zipWithIndex's
    counts, sortByKey's bounds), parents first, each RDD once."""
    await _prepare(rdd, set())


async def _prepare(rdd: RDD[Any], seen: set[int]) -> None:
    if not rdd.needs_prepare or id(rdd) in seen:
        return
    seen.add(id(rdd))
    for d in rdd._deps:
        await _prepare(d.rdd, seen)
    await rdd.prepare_self()


def engine_function(f: Callable) -> bool:
    """A builtin, or a closure-free function of asyncspark itself: it cannot reach a user's
    RDD, so the per-job nested-use search (hot for count/collect) can skip it."""
    if not isinstance(f, types.FunctionType):
        return isinstance(f, (type, types.BuiltinFunctionType))
    return f.__closure__ is None and f.__module__.startswith("asyncspark.")


def check_no_nested_use(rdd: RDD[Any], action_func: Callable | None = None) -> None:
    """Refuse, before anything is sent, functions that use an RDD or the Context.

    On an executor neither works (SPARK-5063): PySpark refuses to pickle them; here the
    lineage's user functions (checked once per RDD) and the action's are searched.
    """
    if not rdd.__dict__.get("_nested_use_checked"):
        for r in walk(rdd):
            for desc, f in r.user_functions():
                serializers.refuse_nested_use(f, desc)
        rdd.__dict__["_nested_use_checked"] = True
    if action_func is not None and not engine_function(action_func):
        serializers.refuse_nested_use(action_func, "the action")


def task_binary(rdd: RDD[Any], func: Callable) -> bytes:
    """``(rdd, func)`` pickled once per stage: plain pickle where it is exactly as good
    (3x cheaper than cloudpickle), else cloudpickle, naming an unpicklable culprit."""
    if not rdd._deps and rdd.plain_picklable() and engine_function(func):
        # e.g. parallelize([1]).count()
        try:
            return pickle.dumps((rdd, func), serializers.PROTOCOL)
        except Exception:  # cloudpickle below pickles it, or says what is wrong
            pass

    def culprits() -> Iterator[tuple[str, Any]]:
        yield ("the action", func)
        for r in walk(rdd):
            yield from r.user_functions()

    return serializers.dumps_closure((rdd, func), f"the lineage of {rdd!r}", culprits())


class StagePlanner:
    """A context's stage graphs: the map-stage task binary of each shuffle, pickled once."""

    def __init__(self) -> None:
        self._map_binaries: dict[int, bytes] = {}

    def map_binary(self, dep: ShuffleDependency) -> bytes:
        """The task binary of a shuffle's map stage, pickled once per shuffle."""
        binary = self._map_binaries.get(dep.shuffle_id)
        if binary is None:
            from .shuffle.writer import ShuffleWriteFunc  # driver-side only (see the imports above)

            binary = task_binary(dep.rdd, ShuffleWriteFunc(dep))
            self._map_binaries[dep.shuffle_id] = binary
        return binary

    def forget(self, shuffle_id: int) -> None:
        """Drop a shuffle's map binary (the ContextCleaner: no longer referenced)."""
        self._map_binaries.pop(shuffle_id, None)

    def shuffle_graph(self, rdd: RDD[Any]) -> tuple[list[int], dict[int, ShuffleInfo]]:
        """The shuffles ``rdd`` reads directly, and every shuffle in its lineage."""
        parents = shuffle_parents(rdd)
        if not parents:
            return [], {}
        from .scheduler.stage import ShuffleInfo  # driver-side only (see the imports above)

        infos: dict[int, ShuffleInfo] = {}
        stack = list(parents)
        while stack:
            dep = stack.pop()
            if dep.shuffle_id in infos:
                continue
            grand = shuffle_parents(dep.rdd)
            infos[dep.shuffle_id] = ShuffleInfo(
                dep.shuffle_id, dep.rdd.id(), dep.rdd.getNumPartitions(),
                dep.partitioner.numPartitions, self.map_binary(dep),
                [g.shuffle_id for g in grand], cached_rdds=cached_ancestors(dep.rdd))
            stack.extend(grand)
        return [d.shuffle_id for d in parents], infos
