"""The storage layer without processes: memory and disk stores, the executor's
BlockManager (threads, no driver) and the driver's BlockManagerMaster (leases)."""

from __future__ import annotations

import os
import pickle
import threading

import pytest

from asyncspark import StorageLevel
from asyncspark.storage.block_manager import BlockManager
from asyncspark.storage.disk_store import DiskStore
from asyncspark.storage.master import BlockManagerMaster
from asyncspark.storage.memory_store import MemoryEntry, MemoryStore


def entry(size: int, level=StorageLevel.MEMORY_ONLY) -> MemoryEntry:
    return MemoryEntry([0] * 3, size, True, level)


# -- MemoryStore -------------------------------------------------------------------------

def test_memory_store_evicts_least_recently_used_first():
    store = MemoryStore(100)
    assert store.put("rdd_1_0", entry(40)) == (True, [])
    assert store.put("rdd_1_1", entry(40))[0]
    store.get("rdd_1_0")  # now rdd_1_1 is the least recently used
    stored, evicted = store.put("rdd_1_2", entry(40))
    assert stored
    assert [b for b, _ in evicted] == ["rdd_1_1"]
    assert store.block_ids() == ["rdd_1_0", "rdd_1_2"]
    assert store.used == 80


def test_memory_store_refuses_an_entry_bigger_than_the_budget_without_evicting():
    store = MemoryStore(100)
    store.put("rdd_1_0", entry(60))
    assert store.put("rdd_1_1", entry(101)) == (False, [])
    assert store.block_ids() == ["rdd_1_0"]
    assert store.used == 60
    assert store.remove("rdd_1_0").size == 60
    assert store.used == 0


# -- DiskStore -------------------------------------------------------------------------

def test_disk_store_round_trip_and_remove_rdd(tmp_path):
    store = DiskStore(str(tmp_path / "blocks"))
    assert store.get("rdd_3_0") is None
    assert store.block_ids() == []
    assert store.put("rdd_3_0", b"abc") == 3
    store.put("rdd_3_1", b"de")
    store.put("rdd_4_0", b"f")
    assert store.get("rdd_3_0") == b"abc"
    assert sorted(store.remove_rdd(3)) == ["rdd_3_0", "rdd_3_1"]
    assert store.block_ids() == ["rdd_4_0"]
    assert not [n for n in os.listdir(tmp_path / "blocks") if n.startswith(".")]
    with pytest.raises(ValueError, match="not a block id"):
        store.path("../etc")


# -- BlockManager --------------------------------------------------------------------------

class CountingRDD:
    """What get_or_compute needs of an RDD: id, storage level, compute()."""

    def __init__(self, rdd_id: int, level: StorageLevel, n: int = 100,
                 gate: threading.Event | None = None) -> None:
        self._id = rdd_id
        self._storage_level = level
        self.n = n
        self.computed: list[int] = []
        self.gate = gate

    def id(self) -> int:
        return self._id

    def compute(self, split, ctx):
        self.computed.append(split)
        if self.gate is not None:
            self.gate.wait(10)
        return iter(range(split * self.n, (split + 1) * self.n))


@pytest.fixture
def manager(tmp_path):
    return BlockManager("exec-1", "host", str(tmp_path / "local"), 1 << 20,
                        str(tmp_path / "shm"))


def test_each_level_stores_where_it_says(manager):
    cases = [(StorageLevel(False, True, False, True), "memory"),
             (StorageLevel.MEMORY_ONLY_SER, "memory"),
             (StorageLevel.DISK_ONLY, "disk"), (StorageLevel.MEMORY_AND_DISK, "memory"),
             (StorageLevel.OFF_HEAP, "offheap")]
    for rdd_id, (level, where) in enumerate(cases):
        rdd = CountingRDD(rdd_id, level)
        first = manager.get_or_compute(rdd, 0, None)
        again = manager.get_or_compute(rdd, 0, None)
        assert first == again == list(range(100))
        assert rdd.computed == [0], level
        block = f"rdd_{rdd_id}_0"
        if where == "memory":
            e = manager.memory.get(block)
            assert e is not None
            assert e.deserialized == level.deserialized
            assert isinstance(e.value, list if level.deserialized else bytes)
            assert e.size > 100 if level.deserialized else e.size == len(e.value)
        elif where == "disk":
            assert manager.disk.contains(block)
            assert block not in manager.memory
        else:
            assert manager.offheap.contains(block)
            assert block not in manager.memory


def test_serialized_entries_are_smaller_than_deserialized_ones(manager):
    live = StorageLevel(False, True, False, True)  # what RDD.persist(MEMORY_ONLY) keeps
    manager.get_or_compute(CountingRDD(1, live), 0, None)
    manager.get_or_compute(CountingRDD(2, StorageLevel.MEMORY_ONLY_SER), 0, None)
    assert manager.memory.get("rdd_2_0").size < manager.memory.get("rdd_1_0").size


SIZE = len(pickle.dumps(list(range(500)), 5))  # a serialized 500-record block
BUDGET = 2 * SIZE + SIZE // 2  # room for two


def test_memory_only_drops_evicted_blocks_and_recomputes_them(tmp_path):
    bm = BlockManager("e", "h", str(tmp_path), BUDGET)
    rdd = CountingRDD(7, StorageLevel.MEMORY_ONLY_SER, n=500)
    for split in range(3):
        bm.get_or_compute(rdd, split, None)
    assert bm.usage()["memory"] == ["rdd_7_1", "rdd_7_2"]
    assert bm.usage()["disk"] == []
    assert bm.get_or_compute(rdd, 0, None) == list(range(500))
    assert rdd.computed == [0, 1, 2, 0]  # evicted, so computed again from lineage


def test_memory_and_disk_spills_evicted_blocks_to_disk(tmp_path):
    bm = BlockManager("e", "h", str(tmp_path), BUDGET)
    rdd = CountingRDD(8, StorageLevel.MEMORY_AND_DISK_SER, n=500)
    updates = [u for split in range(3) for u in bm.put(
        f"rdd_8_{split}", list(rdd.compute(split, None)), rdd._storage_level)]
    assert ["rdd_8_0", "e", "disk"] in [u[:3] for u in updates]
    assert bm.usage()["disk"] == ["rdd_8_0"]
    rdd.computed.clear()
    assert bm.get_or_compute(rdd, 0, None) == list(range(500))
    assert rdd.computed == []  # read back from disk


def test_a_block_bigger_than_memory_goes_to_disk_when_the_level_allows(tmp_path):
    bm = BlockManager("e", "h", str(tmp_path), 100)
    assert bm.put("rdd_1_0", list(range(1000)), StorageLevel.MEMORY_ONLY) == []
    assert bm.get_local("rdd_1_0") is None
    [update] = bm.put("rdd_2_0", list(range(1000)), StorageLevel.MEMORY_AND_DISK)
    assert update[:3] == ["rdd_2_0", "e", "disk"]
    assert bm.get_local("rdd_2_0") == list(range(1000))


def test_a_block_is_never_computed_twice_at_once(manager):
    gate = threading.Event()
    rdd = CountingRDD(9, StorageLevel.MEMORY_ONLY, gate=gate)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(
        manager.get_or_compute(rdd, 0, None))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert rdd.computed == [0]
    assert results == [list(range(100))] * 4
    assert manager._block_locks == {}


def test_replica_upload_and_remote_read_bytes(manager):
    data = pickle.dumps(list(range(10)), 5)
    manager.put_block_bytes("rdd_5_1", StorageLevel.MEMORY_ONLY.to_wire(), data)
    assert manager.get_local("rdd_5_1") == list(range(10))
    assert pickle.loads(manager.get_block_bytes("rdd_5_1")) == list(range(10))
    assert manager.get_block_bytes("rdd_5_2") is None


def test_remove_rdd_frees_memory_and_disk(manager):
    manager.get_or_compute(CountingRDD(3, StorageLevel.MEMORY_ONLY), 0, None)
    manager.get_or_compute(CountingRDD(3, StorageLevel.MEMORY_ONLY), 1, None)
    manager.get_or_compute(CountingRDD(4, StorageLevel.DISK_ONLY), 0, None)
    manager.get_or_compute(CountingRDD(5, StorageLevel.MEMORY_ONLY), 0, None)
    assert manager.remove_rdd(3) == 2
    assert manager.remove_rdd(4) == 1
    usage = manager.usage()
    assert usage["memory"] == ["rdd_5_0"]
    assert usage["disk"] == []
    assert usage["memory_used"] == manager.memory.get("rdd_5_0").size


# -- BlockManagerMaster --------------------------------------------------------------------

@pytest.fixture
def master():
    m = BlockManagerMaster()
    m.register_executor("a", "h1", 1001)
    m.register_executor("b", "h1", 1002)
    m.register_executor("c", "h2", 1003)
    return m


def test_locations_memory_first_and_executor_loss(master):
    master.update([["rdd_1_0", "a", "disk", 10], ["rdd_1_0", "b", "memory", 20]])
    assert master.locations("rdd_1_0") == [["b", "h1", 1002], ["a", "h1", 1001]]
    assert master.locations("rdd_1_0", exclude="b") == [["a", "h1", 1001]]
    master.remove_executor("b")
    assert master.locations("rdd_1_0") == [["a", "h1", 1001]]
    master.update([["rdd_1_0", "a", "", 0]])
    assert master.status("rdd_1_0") == {}
    master.update([["rdd_1_1", "b", "memory", 5]])  # from an executor already lost
    assert master.status("rdd_1_1") == {}


def test_leases_make_other_askers_wait_for_the_computing_executor(master):
    answers: dict[str, list] = {}

    def reply(who):
        return lambda locations, peers: answers.setdefault(who, []).append(locations)

    master.query("a", "rdd_2_0", True, reply("a"))
    assert answers == {"a": [[]]}  # a computes it
    master.query("b", "rdd_2_0", True, reply("b"))
    master.query("c", "rdd_2_0", True, reply("c"))
    assert "b" not in answers
    assert "c" not in answers
    master.update([["rdd_2_0", "a", "memory", 10]], ["rdd_2_0"], reporter="a")
    assert answers["b"] == [[["a", "h1", 1001]]]
    assert answers["c"] == [[["a", "h1", 1001]]]
    assert master.leases == {}


def test_a_lease_passes_on_when_its_holder_fails_or_is_lost(master):
    answers: dict[str, list] = {}
    for who in "abc":
        master.query(who, "rdd_2_0", True,
                     lambda locs, peers, who=who: answers.setdefault(who, []).append(locs))
    master.update([], ["rdd_2_0"], reporter="a")  # a failed without storing it
    assert answers == {"a": [[]], "b": [[]]}  # b computes it now
    master.remove_executor("b")
    assert answers["c"] == [[]]
    assert master.leases["rdd_2_0"].holder == "c"


def test_preferred_locations_and_remove_rdd(master):
    assert master.preferred_locations([1], [0, 1]) is None
    master.update([["rdd_1_0", "a", "memory", 1], ["rdd_1_1", "c", "offheap", 1]])
    assert master.preferred_locations([1], [0, 1, 2]) == [[("a", "h1")], [(None, "h2")], []]
    assert master.remove_rdd(1) == {"a"}
    assert master.preferred_locations([1], [0, 1]) is None
