"""The driver's ``BlockManagerMaster``: which executor holds which cached block.

Pure bookkeeping on the driver's event loop (no I/O of its own): executors report
block updates (``BlockUpdates`` on their control connections), ask where a block is
(``BlockQuery``), and the scheduler asks for preferred locations (locality) and drops an
executor's entries when it is lost. Locations are hints: a reader that finds a block
gone falls back to the next location, then to recomputing it from lineage.

It also hands out *computation leases*, so that a partition of a persisted RDD is not
computed twice at the same time, on one executor or across executors: the first
executor asking about a block nobody holds gets the lease and computes it; later askers
wait until the holder reports the block stored (they then read it from the holder) or
releases the lease without storing it, or is lost (the next waiter gets the lease).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BlockManagerMaster", "BlockStatus", "block_id"]

log: logging.Logger = logging.getLogger("asyncspark.storage")

# reply(locations, peers): locations [[executor_id, host, port]], peers likewise
Reply = Callable[[list, list], None]


def block_id(rdd_id: int, split: int) -> str:
    """The id of partition ``split`` of RDD ``rdd_id`` (Spark's ``rdd_<id>_<split>``)."""
    return f"rdd_{rdd_id}_{split}"


def rdd_of(block: str) -> int:
    return int(block.split("_")[1])


@dataclass(slots=True)
class BlockStatus:
    where: str  # "memory", "disk" or "offheap"
    size: int


@dataclass(slots=True)
class _Lease:
    holder: str
    waiters: list[tuple[str, Reply]] = field(default_factory=list)


class BlockManagerMaster:
    def __init__(self, offheap_dir: str | None = None) -> None:
        self.offheap_dir = offheap_dir
        self.executors: dict[str, tuple[str, int]] = {}  # id -> (host, block port)
        self.blocks: dict[str, dict[str, BlockStatus]] = {}
        self.offheap: dict[str, tuple[str, int]] = {}  # block -> (host, size)
        self.leases: dict[str, _Lease] = {}
        # on_update(block, executor_id, where, size) after each applied entry (the UI)
        self.on_update: Callable[[str, str, str, int], None] | None = None

    # -- executors -----------------------------------------------------------------------

    def register_executor(self, executor_id: str, host: str, port: int) -> None:
        self.executors[executor_id] = (host, port)

    def remove_executor(self, executor_id: str) -> None:
        """Forget the executor and the blocks it held (off-heap blocks stay: they live
        on the host, not in the executor); leases it held pass to their waiters."""
        self.executors.pop(executor_id, None)
        for block in [b for b, locs in self.blocks.items() if executor_id in locs]:
            locs = self.blocks[block]
            locs.pop(executor_id, None)
            if not locs:
                del self.blocks[block]
        for block, lease in list(self.leases.items()):
            lease.waiters = [(e, r) for e, r in lease.waiters if e != executor_id]
            if lease.holder == executor_id:
                self._pass_lease(block)

    # -- updates -------------------------------------------------------------------------

    def update(self, updates: Iterable[list[Any]], released: Iterable[str] = (),
               reporter: str | None = None) -> None:
        """Apply ``[block_id, executor_id, where, size]`` entries (``where`` ``""``: the
        block left that executor), then release the reporter's leases on ``released``."""
        notify = self.on_update
        for block, executor_id, where, size in updates:
            if notify is not None:
                notify(block, executor_id, where, size)
            if where == "offheap":
                host = self.executors.get(executor_id, ("", 0))[0]
                self.offheap[block] = (host, size)
                continue
            if not where:
                locs = self.blocks.get(block)
                if locs is not None:
                    locs.pop(executor_id, None)
                    if not locs:
                        del self.blocks[block]
                continue
            if executor_id not in self.executors:
                continue  # reported after the executor was lost
            self.blocks.setdefault(block, {})[executor_id] = BlockStatus(where, size)
        for block in released:
            lease = self.leases.get(block)
            if lease is not None and (reporter is None or lease.holder == reporter):
                self._pass_lease(block)

    def _pass_lease(self, block: str) -> None:
        """The holder is done with ``block``: waiters read it where it now is, or the
        first live waiter computes it."""
        lease = self.leases.pop(block)
        waiters = lease.waiters
        while waiters:
            executor_id, reply = waiters.pop(0)
            if executor_id not in self.executors:
                continue
            locations = self.locations(block, exclude=executor_id)
            if locations:
                self._reply(reply, locations, self.peers(executor_id))
                for e, r in waiters:
                    self._reply(r, self.locations(block, exclude=e), self.peers(e))
                return
            self.leases[block] = _Lease(executor_id, waiters)
            self._reply(reply, [], self.peers(executor_id))
            return

    @staticmethod
    def _reply(reply: Reply, locations: list, peers: list) -> None:
        try:
            reply(locations, peers)
        except ConnectionError as exc:
            log.debug("cannot answer a block query: %s", exc)

    # -- queries -------------------------------------------------------------------------

    def query(self, executor_id: str, block: str, lease: bool, reply: Reply) -> None:
        """Answer where ``block`` is (other than on the asker). With ``lease``, when it
        is nowhere: grant the asker the lease (empty answer: compute it), or, if another
        live executor is computing it, answer once that one is done."""
        locations = self.locations(block, exclude=executor_id)
        if locations or not lease:
            reply(locations, self.peers(executor_id))
            return
        current = self.leases.get(block)
        if current is None or current.holder == executor_id:
            self.leases[block] = _Lease(executor_id, current.waiters if current else [])
            reply([], self.peers(executor_id))
            return
        current.waiters.append((executor_id, reply))

    def locations(self, block: str, exclude: str | None = None) -> list[list[Any]]:
        """``[[executor_id, host, port]]`` of live executors holding ``block``, memory
        copies first."""
        locs = self.blocks.get(block)
        if not locs:
            return []
        found = []
        for executor_id, _ in sorted(locs.items(), key=lambda kv: kv[1].where != "memory"):
            address = self.executors.get(executor_id)
            if executor_id != exclude and address is not None:
                found.append([executor_id, address[0], address[1]])
        return found

    def peers(self, executor_id: str) -> list[list[Any]]:
        """The other live executors' ``[executor_id, host, port]`` (replica targets)."""
        return [[e, h, p] for e, (h, p) in sorted(self.executors.items()) if e != executor_id]

    def status(self, block: str) -> dict[str, BlockStatus]:
        """Where ``block`` is: executor id (or ``"offheap"``) -> ``BlockStatus``."""
        out = dict(self.blocks.get(block, {}))
        if block in self.offheap:
            out["offheap"] = BlockStatus("offheap", self.offheap[block][1])
        return out

    def rdd_blocks(self, rdd_id: int) -> dict[str, dict[str, BlockStatus]]:
        prefix = f"rdd_{rdd_id}_"
        names = {b for b in self.blocks if b.startswith(prefix)}
        names.update(b for b in self.offheap if b.startswith(prefix))
        return {b: self.status(b) for b in sorted(names)}

    def preferred_locations(self, rdd_ids: list[int], partitions: list[int]
                            ) -> list[list[tuple[str | None, str]]] | None:
        """Per partition, ``(executor_id, host)`` pairs holding one of its cached blocks
        (``executor_id`` None for an off-heap copy: any executor of that host); None
        when no partition has any."""
        if not rdd_ids or (not self.blocks and not self.offheap):
            return None
        out: list[list[tuple[str | None, str]]] = []
        any_pref = False
        for p in partitions:
            prefs: list[tuple[str | None, str]] = []
            for rdd in rdd_ids:
                b = block_id(rdd, p)
                for executor_id in self.blocks.get(b, ()):
                    address = self.executors.get(executor_id)
                    if address is not None:
                        prefs.append((executor_id, address[0]))
                if b in self.offheap:
                    prefs.append((None, self.offheap[b][0]))
            any_pref = any_pref or bool(prefs)
            out.append(prefs)
        return out if any_pref else None

    # -- unpersist -----------------------------------------------------------------------

    def remove_rdd(self, rdd_id: int) -> set[str]:
        """Forget every block of ``rdd_id``; the live executors that held some."""
        prefix = f"rdd_{rdd_id}_"
        holders: set[str] = set()
        for block in [b for b in self.blocks if b.startswith(prefix)]:
            holders.update(e for e in self.blocks.pop(block) if e in self.executors)
        for block in [b for b in self.offheap if b.startswith(prefix)]:
            del self.offheap[block]
        return holders
