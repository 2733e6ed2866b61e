"""The executor's ``BlockManager``: cached partitions of persisted RDDs.

``RDD.iterator`` calls ``get_or_compute`` for an RDD with a storage level. Under a
per-block lock (one computation of a block at a time in this process) it looks in this
executor's memory store, disk store and the host's off-heap store, then asks the driver
(``BlockQuery``) where else the block is and fetches it from that executor's block
server; when nobody has it, the driver grants this executor the computation lease (or
makes it wait while another executor computes the block, so the two do not compute it
twice), and the partition is computed from lineage, stored as its level says,
replicated to ``replication - 1`` other executors through their block servers, and
reported (``BlockUpdates``, which also gives the lease back).

Memory is LRU under ``asyncspark.storage.memoryBudget``: blocks evicted for a newer one
go to disk when their level uses disk, else are dropped (and recomputed from lineage
when next needed). Every store and the driver's locations are hints a reader checks:
a block missing where it was said to be is looked for elsewhere, then recomputed.

Runs on the task thread (``get_or_compute``) and in the block server's worker threads
(``get_block_bytes``, ``put_block_bytes``); one lock guards the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..pending import PendingRequests
from ..runtime import get_env
from ..sizes import estimate_size
from ..threads import call_on_loop
from ..transport.messages.blocks import BlockQuery, BlockUpdates
from .disk_store import DiskStore
from .level import StorageLevel
from .master import block_id as make_block_id
from .memory_store import MemoryEntry, MemoryStore

__all__ = ["BlockManager", "DriverLink", "get_or_compute"]

log: logging.Logger = logging.getLogger("asyncspark.storage")

_QUERY_TIMEOUT = 600.0  # waiting for another executor to finish computing a block
_REQUEST_TIMEOUT = 120.0


def _dumps(values: list) -> bytes:
    from ..serializers import dumps_result

    return dumps_result(values)


class DriverLink:
    """The executor's side of the block messages on its control connection; its
    methods are called from threads other than the loop's and block until done."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        self.loop = loop
        self.conn = conn
        self._pending = PendingRequests()  # BlockQuery id -> (block_id, lease)

    def send(self, msg: Any) -> None:
        """Write ``msg`` on the control connection (from any thread but the loop's)."""
        async def write() -> None:
            self.conn.send(msg)

        call_on_loop(self.loop, write(), _REQUEST_TIMEOUT,
                     f"cannot send {type(msg).__name__} to the driver within "
                     f"{_REQUEST_TIMEOUT}s")

    def send_soon(self, msg: Any) -> None:
        """Queue ``msg`` for the loop to write (any thread; does not wait)."""
        def write() -> None:
            with contextlib.suppress(ConnectionError):
                self.conn.send(msg)

        self.loop.call_soon_threadsafe(write)

    def query(self, block_id: str, lease: bool) -> tuple[list[list[Any]], list[list[Any]]]:
        """``(locations, peers)`` for ``block_id`` from the driver."""
        async def ask() -> tuple[list, list]:
            fut = self.loop.create_future()
            # Left in place if we stop waiting: a lease granted after that is given back.
            request_id = self._pending.add(fut, (block_id, lease))
            self.conn.send(BlockQuery(request_id, block_id, lease))
            return await fut

        return call_on_loop(self.loop, ask(), _QUERY_TIMEOUT,
                            f"the driver did not say where block {block_id} is within "
                            f"{_QUERY_TIMEOUT}s")

    def on_locations(self, msg: Any) -> None:
        """Loop thread: a ``BlockLocations`` answer arrived."""
        entry = self._pending.pop(msg.request_id)
        if entry is None:
            return
        fut, (block_id, lease) = entry
        if not fut.done():
            fut.set_result((msg.locations, msg.peers))
        elif lease and not msg.locations:  # nobody will compute it here: give it back
            with contextlib.suppress(ConnectionError):
                self.conn.send(BlockUpdates([], [block_id]))


class BlockManager:
    def __init__(self, executor_id: str, host: str, local_dir: str, memory_budget: int,
                 offheap_dir: str | None = None, link: DriverLink | None = None,
                 pool_factory: Callable[[], Any] | None = None) -> None:
        self.executor_id = executor_id
        self.host = host
        self.memory: MemoryStore = MemoryStore(memory_budget)
        self.disk: DiskStore = DiskStore(os.path.join(local_dir, "blocks"))
        self.offheap: DiskStore | None = DiskStore(offheap_dir) if offheap_dir else None
        self.link = link
        self._pool_factory = pool_factory
        self._lock = threading.Lock()  # guards the stores
        self._block_locks: dict[str, list] = {}  # block -> [lock, users]
        self._locks_lock = threading.Lock()

    # -- per-block locks -----------------------------------------------------------------

    @contextlib.contextmanager
    def _block_lock(self, block: str) -> Iterator[None]:
        with self._locks_lock:
            entry = self._block_locks.get(block)
            if entry is None:
                entry = self._block_locks[block] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._locks_lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._block_locks[block]

    # -- the task path -------------------------------------------------------------------

    def get_or_compute(self, rdd: Any, split: int, task_ctx: Any) -> list:
        level: StorageLevel = rdd._storage_level
        block = make_block_id(rdd.id(), split)
        with self._block_lock(block):
            values = self.get_local(block)
            if values is not None:
                return values
            peers: list = []
            leased = False  # the driver's answer: nobody has it, compute it here
            if self.link is not None:
                try:
                    locations, peers = self.link.query(block, lease=True)
                    leased = not locations
                except Exception as exc:  # the driver is unreachable: compute it ourselves
                    log.warning("block query for %s failed: %r", block, exc)
                    locations = []
                for executor_id, host, port in locations:
                    data = self._fetch_remote(block, executor_id, host, port)
                    if data is not None:
                        return pickle.loads(data)
            updates: list = []
            try:
                values = list(rdd.compute(split, task_ctx))
                updates = self.put(block, values, level, peers)
            finally:
                if leased or updates:
                    self._report(updates, [block] if leased else [])
            return values

    def _report(self, updates: list, released: list) -> None:
        if self.link is None:
            return
        try:
            self.link.send(BlockUpdates(updates, released))
        except Exception as exc:
            log.warning("cannot report block updates to the driver: %r", exc)

    def _fetch_remote(self, block: str, executor_id: str, host: str, port: int
                      ) -> bytes | None:
        pool = self._pool()
        if pool is None:
            return None
        try:
            return self._on_loop(pool.cached_block((host, port), block))
        except Exception as exc:
            log.info("cannot fetch block %s from executor %s: %r", block, executor_id, exc)
            return None

    def _pool(self) -> Any:
        return self._pool_factory() if self._pool_factory is not None else None

    def _on_loop(self, coro: Any) -> Any:
        assert self.link is not None
        return call_on_loop(self.link.loop, coro, _REQUEST_TIMEOUT + 5,
                            f"a block transfer did not finish within {_REQUEST_TIMEOUT + 5}s")

    # -- local stores --------------------------------------------------------------------

    def get_local(self, block: str) -> list[Any] | None:
        """The block's records from this executor's stores or the host's off-heap one."""
        with self._lock:
            entry = self.memory.get(block)
        if entry is not None:
            return entry.value if entry.deserialized else pickle.loads(entry.value)
        data = self.disk.get(block)
        if data is None and self.offheap is not None:
            data = self.offheap.get(block)
        return None if data is None else pickle.loads(data)

    def put(self, block: str, values: list[Any], level: StorageLevel,
            peers: list[list[Any]] | tuple[()] = ()) -> list[Any]:
        """Store a computed partition as ``level`` says, replicate it; the updates
        (``[block, executor_id, where, size]``) to report."""
        updates: list = []
        data: bytes | None = None
        stored = False
        if level.useOffHeap and self.offheap is not None:
            data = _dumps(values)
            try:
                updates.append([block, self.executor_id, "offheap", self.offheap.put(block, data)])
                stored = True
            except OSError as exc:
                log.warning("cannot write block %s off-heap (%s): %r", block,
                            self.offheap.root, exc)
        if not stored and level.useMemory:
            if level.deserialized:
                entry = MemoryEntry(values, estimate_size(values), True, level)
            else:
                data = data if data is not None else _dumps(values)
                entry = MemoryEntry(data, len(data), False, level)
            stored, more = self._put_memory(block, entry)
            updates.extend(more)
        if not stored and level.useDisk:
            data = data if data is not None else _dumps(values)
            updates.append([block, self.executor_id, "disk", self.disk.put(block, data)])
            stored = True
        if stored and level.replication > 1 and not level.useOffHeap:
            data = data if data is not None else _dumps(values)
            self._replicate(block, data, level, peers)
        return updates

    def _put_memory(self, block: str, entry: MemoryEntry) -> tuple[bool, list]:
        updates = []
        with self._lock:
            stored, evicted = self.memory.put(block, entry)
            for victim_id, victim in evicted:
                if victim.level.useDisk:
                    data = _dumps(victim.value) if victim.deserialized else victim.value
                    updates.append([victim_id, self.executor_id, "disk",
                                    self.disk.put(victim_id, data)])
                else:
                    updates.append([victim_id, self.executor_id, "", 0])
        if stored:
            updates.append([block, self.executor_id, "memory", entry.size])
        return stored, updates

    def _replicate(self, block: str, data: bytes, level: StorageLevel, peers: list) -> None:
        pool = self._pool()
        if pool is None:
            return
        wanted = level.replication - 1
        flags = [level.useDisk, level.useMemory, level.useOffHeap, level.deserialized, 1]
        for executor_id, host, port in peers:
            if not wanted:
                break
            try:
                self._on_loop(pool.cached_block((host, port), block, flags, data))
            except Exception as exc:
                log.warning("cannot replicate block %s to executor %s: %r", block,
                            executor_id, exc)
                continue
            wanted -= 1
        if wanted:
            log.warning("block %s has %d fewer replicas than its storage level asks",
                        block, wanted)

    # -- the block server's side ---------------------------------------------------------

    def get_block_bytes(self, block: str) -> bytes | None:
        """Worker thread: the block pickled, for a remote reader; None if not here."""
        with self._lock:
            entry = self.memory.get(block)
        if entry is not None:
            return _dumps(entry.value) if entry.deserialized else entry.value
        return self.disk.get(block)

    def put_block_bytes(self, block: str, level_flags: list[Any], data: bytes) -> None:
        """Worker thread: store a replica another executor sent; reported to the
        driver before the upload is acknowledged."""
        level = StorageLevel.from_wire(level_flags)
        updates: list = []
        stored = False
        if level.useMemory:
            if level.deserialized:
                values = pickle.loads(data)
                entry = MemoryEntry(values, estimate_size(values), True, level)
            else:
                entry = MemoryEntry(bytes(data), len(data), False, level)
            stored, updates = self._put_memory(block, entry)
        if not stored and level.useDisk:
            updates.append([block, self.executor_id, "disk", self.disk.put(block, data)])
            stored = True
        if not stored:
            raise MemoryError(f"block {block} ({len(data)} bytes) does not fit in this "
                              "executor's memory budget and its level does not use disk")
        if self.link is not None:
            self.link.send_soon(BlockUpdates(updates, []))

    # -- removal -------------------------------------------------------------------------

    def remove_rdd(self, rdd_id: int) -> int:
        """Drop every block of ``rdd_id`` held here; how many."""
        prefix = f"rdd_{rdd_id}_"
        with self._lock:
            gone = [b for b in self.memory.block_ids() if b.startswith(prefix)]
            for b in gone:
                self.memory.remove(b)
        return len(gone) + len(self.disk.remove_rdd(rdd_id))

    def usage(self) -> dict[str, Any]:
        """What this executor holds (for tests and diagnostics)."""
        with self._lock:
            in_memory = self.memory.block_ids()
            used = self.memory.used
        return {"memory": in_memory, "memory_used": used, "disk": self.disk.block_ids()}


def get_or_compute(rdd: Any, split: int, task_ctx: Any) -> Iterator[Any]:
    """``RDD.iterator`` of a persisted RDD, on an executor."""
    try:
        manager = get_env().block_manager
    except RuntimeError:  # not in an executor
        manager = None
    if manager is None:  # no executor block manager (e.g. a test calling compute directly)
        return rdd.compute(split, task_ctx)
    return iter(manager.get_or_compute(rdd, split, task_ctx))
