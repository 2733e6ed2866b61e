"""Scheduling pools for ``spark.scheduler.mode=FAIR``: their configuration and the order
in which the task scheduler core offers free slots to task sets.

Spark's model. In FAIR mode the root pool is FAIR between *pools*; each pool orders
its own task sets FIFO (earlier job, then earlier stage) or FAIR. A pool has a
``weight`` (its share relative to the other pools) and a ``minShare`` (task slots it
should get before weights count). Spark's FairSchedulingAlgorithm: a schedulable
running fewer tasks than its minShare ("needy") comes first, needy ones by running /
minShare; the others by running / weight; ties by name (between task sets of a FAIR
pool: by (job, stage), the FIFO order, where Spark compares generated names).

The pool of a job is its local property ``spark.scheduler.pool`` (``"default"``
when unset). Pools come from ``spark.scheduler.allocation.file`` (Spark's XML format,
or the same in JSON or TOML, by the file's extension) and/or the inline JSON of
``asyncspark.scheduler.allocation``, in code. The default pool is FAIR between its
jobs (Spark's is FIFO) unless configured otherwise; a pool a job names that is not
configured is created with Spark's defaults (FIFO, weight 1, minShare 0).

The order is computed for each launch, from the running counts at that moment, so a
short job gets the next free slot while a long one holds the others. FIFO mode does
not use this module at all (the core's ``_ordered`` list).
"""

from __future__ import annotations

import itertools
import json
import os
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .task_set_manager import TaskSetManager

__all__ = ["DEFAULT_POOL", "FAIR", "FIFO", "POOL_KEY", "Pool", "PoolSpec", "PoolTree",
           "load_allocation_file", "parse_allocation", "pools_from_config"]

FIFO, FAIR = "FIFO", "FAIR"
POOL_KEY = "spark.scheduler.pool"
DEFAULT_POOL = "default"
_MODES = (FIFO, FAIR)


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """One pool's configuration (Spark's allocation file entries)."""

    name: str
    schedulingMode: str = FIFO
    weight: int = 1
    minShare: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a scheduler pool needs a non-empty name, got {self.name!r}")
        if self.schedulingMode not in _MODES:
            raise ConfigError(f"pool {self.name!r}: schedulingMode must be FIFO or FAIR, "
                              f"got {self.schedulingMode!r}")
        for field, low in (("weight", 1), ("minShare", 0)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"pool {self.name!r}: {field} must be an integer >= {low}, "
                                  f"got {value!r}")


def _spec(name: Any, fields: Mapping[str, Any], source: str) -> PoolSpec:
    unknown = set(fields) - {"name", "schedulingMode", "weight", "minShare"}
    if unknown:
        raise ConfigError(f"{source}: pool {name!r}: unknown setting(s) "
                          f"{', '.join(sorted(unknown))} (expected schedulingMode, weight, "
                          "minShare)")
    mode = str(fields.get("schedulingMode", FIFO)).strip().upper()
    weight = _int(fields.get("weight", 1), name, "weight", source)
    min_share = _int(fields.get("minShare", 0), name, "minShare", source)
    try:
        return PoolSpec(name, mode, weight, min_share)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _int(value: Any, pool: Any, field: str, source: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{source}: pool {pool!r}: {field} must be an integer, "
                          f"got {value!r}") from None


def _from_mapping(data: Any, source: str) -> dict[str, PoolSpec]:
    """``{"pools": {name: {...}}}`` or ``{"pools": [{"name": ..., ...}]}``."""
    if not isinstance(data, Mapping) or set(data) - {"pools"}:
        raise ConfigError(f"{source}: expected one top-level key 'pools' (a table of pools "
                          "by name, or a list of pools with a 'name' each)")
    pools = data.get("pools", {})
    if isinstance(pools, Mapping):
        entries = [(name, fields) for name, fields in pools.items()]
    elif isinstance(pools, list):
        entries = [(p.get("name") if isinstance(p, Mapping) else None, p) for p in pools]
    else:
        raise ConfigError(f"{source}: 'pools' must be a table or a list, got "
                          f"{type(pools).__name__}")
    out: dict[str, PoolSpec] = {}
    for name, fields in entries:
        if not isinstance(fields, Mapping):
            raise ConfigError(f"{source}: pool {name!r}: expected a table of settings, got "
                              f"{fields!r}")
        if name in out:
            raise ConfigError(f"{source}: pool {name!r} is defined twice")
        spec = _spec(name, fields, source)
        out[spec.name] = spec
    return out


def _from_xml(text: str, source: str) -> dict[str, PoolSpec]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ConfigError(f"{source}: not valid XML: {exc}") from None
    if root.tag != "allocations":
        raise ConfigError(f"{source}: the root element must be <allocations>, got "
                          f"<{root.tag}>")
    out: dict[str, PoolSpec] = {}
    for pool in root:
        if pool.tag != "pool":
            raise ConfigError(f"{source}: unexpected element <{pool.tag}> in <allocations> "
                              "(expected <pool name=...>)")
        name = pool.get("name")
        fields = {child.tag: (child.text or "").strip() for child in pool}
        if name in out:
            raise ConfigError(f"{source}: pool {name!r} is defined twice")
        spec = _spec(name, fields, source)
        out[spec.name] = spec
    return out


def parse_allocation(text: str, fmt: str, source: str = "allocation") -> dict[str, PoolSpec]:
    """Pools from ``text`` in format ``fmt`` (``"xml"``, ``"json"`` or ``"toml"``)."""
    if fmt == "xml":
        return _from_xml(text, source)
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: not valid JSON: {exc}") from None
        return _from_mapping(data, source)
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        return _from_mapping(data, source)
    raise ConfigError(f"{source}: unknown allocation format {fmt!r} (xml, json or toml)")


def load_allocation_file(path: str) -> dict[str, PoolSpec]:
    """Pools from a file: Spark's XML, or JSON / TOML by the extension (.json, .toml)."""
    key = f"spark.scheduler.allocation.file {path!r}"
    ext = os.path.splitext(path)[1].lower()
    fmt = {".json": "json", ".toml": "toml"}.get(ext, "xml")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read it: {exc.strerror or exc}") from None
    return parse_allocation(text, fmt, key)


def pools_from_config(conf: Any) -> PoolTree | None:
    """The pool tree of a context's ``Config``; None in FIFO mode (the default), where,
    as in Spark, the allocation file is not read."""
    if conf.scheduler_mode != FAIR:
        return None
    specs: dict[str, PoolSpec] = {}
    if conf.allocation_file:
        specs.update(load_allocation_file(conf.allocation_file))
    if conf.allocation:
        specs.update(parse_allocation(conf.allocation, "json",
                                      "asyncspark.scheduler.allocation"))
    return PoolTree(specs)


class Pool:
    """A pool and the task sets (``TaskSetManager``s) submitted to it."""

    __slots__ = ("min_share", "mode", "name", "tsms", "weight")

    def __init__(self, spec: PoolSpec) -> None:
        self.name: str = spec.name
        self.mode: str = spec.schedulingMode
        self.weight: int = spec.weight
        self.min_share: int = spec.minShare
        self.tsms: list[TaskSetManager] = []

    @property
    def running(self) -> int:
        return sum([len(t.running) for t in self.tsms])

    def ordered_tsms(self) -> Iterator[TaskSetManager]:
        """Its task sets that may launch a task (pending, or a speculatable copy), in
        the pool's order; the others could not take a slot anyway. The first is found
        in one pass (an offer is usually taken by it); the rest are sorted only if it
        had no task for the offer."""
        # FIFO: by (job, stage). FAIR: FairSchedulingAlgorithm with minShare 0 and
        # weight 1 per task set, i.e. fewest running tasks, ties FIFO.
        fifo = self.mode == FIFO
        best = None
        best_running = 0
        best_priority = (0, 0)
        candidates = 0
        for t in self.tsms:  # one pass, no key tuples: it runs for every launch
            if t.zombie or not (t.pending or (t.spec is not None and t.spec.pending)):
                continue
            candidates += 1
            priority = t.taskset.priority
            if fifo:
                if best is None or priority < best_priority:
                    best, best_priority = t, priority
                continue
            running = len(t.running)
            if best is None or running < best_running or (
                    running == best_running and priority < best_priority):
                best, best_running, best_priority = t, running, priority
        if best is None:
            return
        yield best
        if candidates > 1:
            rest = [t for t in self.tsms if t is not best and not t.zombie and (
                t.pending or (t.spec is not None and t.spec.pending))]
            rest.sort(key=_priority if fifo else _fair_tsm_key)
            yield from rest


def _fair_tsm_key(tsm: Any) -> tuple[int, tuple[int, int]]:
    return (len(tsm.running), tsm.taskset.priority)


def _priority(tsm: Any) -> tuple[int, int]:
    return tsm.taskset.priority


def _pool_key(pool: Pool) -> tuple[int, float, str]:
    return fair_key(pool.running, pool.min_share, pool.weight, pool.name)


def fair_key(running: int, min_share: int, weight: int, name: str) -> tuple[int, float, str]:
    """Spark's FairSchedulingAlgorithm comparator as a sort key (smaller runs first)."""
    if running < min_share:
        return (0, running / max(min_share, 1), name)
    return (1, running / weight, name)


class PoolTree:
    """The root pool (FAIR between pools) and its pools, created on first use."""

    def __init__(self, specs: Mapping[str, PoolSpec] | None = None) -> None:
        self.specs: dict[str, PoolSpec] = dict(specs or {})
        self.specs.setdefault(DEFAULT_POOL, PoolSpec(DEFAULT_POOL, FAIR))
        self.pools: dict[str, Pool] = {name: Pool(s) for name, s in self.specs.items()}
        self._pool_of: dict[int, Pool] = {}  # id(tsm) -> its pool

    def pool(self, name: str) -> Pool:
        pool = self.pools.get(name)
        if pool is None:  # not configured: Spark's defaults
            pool = self.pools[name] = Pool(PoolSpec(name))
        return pool

    def add(self, tsm: Any) -> None:
        name = tsm.taskset.properties.get(POOL_KEY) or DEFAULT_POOL
        pool = self.pool(str(name))
        pool.tsms.append(tsm)
        self._pool_of[id(tsm)] = pool

    def remove(self, tsm: Any) -> None:
        pool = self._pool_of.pop(id(tsm), None)
        if pool is not None:
            pool.tsms.remove(tsm)

    def pool_of(self, tsm: Any) -> str | None:
        pool = self._pool_of.get(id(tsm))
        return pool.name if pool is not None else None

    def ordered(self) -> Iterator[TaskSetManager]:
        """Task sets in the order free slots are offered to them, right now."""
        active = [p for p in self.pools.values() if p.tsms]
        if len(active) == 1:
            return active[0].ordered_tsms()
        active.sort(key=_pool_key)
        return itertools.chain.from_iterable(p.ordered_tsms() for p in active)

    def snapshot(self) -> list[dict[str, Any]]:
        """Each pool's settings and load (for a status page or a test)."""
        return [{"name": p.name, "schedulingMode": p.mode, "weight": p.weight,
                 "minShare": p.min_share, "runningTasks": p.running,
                 "stages": [t.taskset.stage_id for t in p.tsms]}
                for p in self.pools.values()]
