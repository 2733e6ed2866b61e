"""The reduce side of the shuffle: find this partition's blocks, read them, decode.

Blocks of map outputs written on this host are read straight from their data files;
the others are fetched from their executors' ``TransportServer`` with at most
``spark.reducer.maxSizeInFlight`` outstanding. A block that cannot be had raises
``FetchFailedError`` naming it; so does a block that is corrupt (a batch whose checksum
does not match, that does not decode, or a block cut inside a batch: ``batch.py``), so
its map output is unregistered and recomputed. The running task's metrics get Spark's shuffle-read
figures: local and remote blocks and bytes, the time spent waiting for remote blocks
(``shuffleFetchWaitTime``, ms) and the records decoded (counted per batch).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import chain, groupby
from typing import Any

from ..errors import CorruptDataError, FetchFailedError
from ..runtime import ExecutorEnv, get_env
from ..taskcontext import TaskContext
from .batch import batch_bodies, decode_batches, decode_body

__all__ = ["count_read_records", "decode_shuffle_body", "read_blocks", "read_records",
           "shuffle_batches", "shuffle_bodies", "shuffle_records"]

_READ = 1 << 20


def _local_block(path: str, offset: int, size: int, shuffle_id: int, map_id: int,
                 reduce_id: int, executor_id: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            left = size
            while left:
                data = f.read(min(left, _READ))
                if not data:
                    raise OSError(f"{path} ends {left} bytes before the block does")
                left -= len(data)
                yield data
    except OSError as exc:
        raise FetchFailedError(
            f"cannot read shuffle block (shuffle {shuffle_id}, map {map_id}, reduce "
            f"{reduce_id}) of executor {executor_id} from {path}: {exc}", shuffle_id, map_id,
            reduce_id, executor_id=executor_id) from exc


def read_blocks(env: ExecutorEnv, shuffle_id: int, reduce_id: int
                ) -> Iterator[tuple[int, str, bytes]]:
    """The raw bytes of every map output's bucket ``reduce_id``, in pieces:
    ``(map_id, executor_id, piece)``, the pieces of one block consecutive."""
    statuses = env.map_outputs.get(shuffle_id)
    if statuses is None:
        raise FetchFailedError(f"no map output locations for shuffle {shuffle_id}",
                               shuffle_id, -1, reduce_id)
    local_reads = env.settings.shuffle_local_read
    remote: dict[tuple, list[int]] = {}
    ctx = TaskContext.get()
    m = ctx._metrics if ctx is not None else {}
    local_blocks = local_bytes = 0
    for map_id, st in enumerate(statuses):
        if st is None:
            raise FetchFailedError(
                f"missing map output (shuffle {shuffle_id}, map {map_id}, reduce "
                f"{reduce_id}): its executor was lost", shuffle_id, map_id, reduce_id)
        executor_id, host, port, path, sizes = st
        size = sizes[reduce_id]
        if not size:
            continue
        if (local_reads and host == env.host) or executor_id == env.executor_id:
            local_blocks += 1
            local_bytes += size
            for piece in _local_block(path, sum(sizes[:reduce_id]), size, shuffle_id,
                                      map_id, reduce_id, executor_id):
                yield map_id, executor_id, piece
        else:
            remote.setdefault((host, port, executor_id), []).append(map_id)
    m["shuffleLocalBlocksFetched"] = m.get("shuffleLocalBlocksFetched", 0) + local_blocks
    m["shuffleLocalBytesRead"] = m.get("shuffleLocalBytesRead", 0) + local_bytes
    if remote:
        yield from _remote_blocks(env, shuffle_id, reduce_id, remote, m)


def _remote_blocks(env: ExecutorEnv, shuffle_id: int, reduce_id: int,
                   remote: dict[tuple, list[int]], metrics: dict
                   ) -> Iterator[tuple[int, str, bytes]]:
    from ..transport.client import fetch_blocks_blocking

    pool = env.client_pool()  # its timeouts: spark.network.timeout, shuffle.connectTimeout
    limit = env.settings.max_bytes_in_flight
    clock = time.perf_counter_ns
    for (host, port, executor_id), map_ids in remote.items():
        blocks = [[m, reduce_id] for m in map_ids]
        wait = nbytes = n = 0
        try:
            it = iter(fetch_blocks_blocking(env.loop, pool, (host, port), shuffle_id, blocks,
                                            limit))
            while True:
                t0 = clock()
                item = next(it, None)
                wait += clock() - t0
                if item is None:
                    break
                block, data = item
                nbytes += len(data)
                n += 1
                yield block[0], executor_id, data
        except FetchFailedError as exc:
            if exc.executor_id is None:  # the scheduler needs to know whose outputs
                exc.executor_id = executor_id
            raise
        finally:
            metrics["shuffleRemoteBlocksFetched"] = (
                metrics.get("shuffleRemoteBlocksFetched", 0) + len(map_ids))
            metrics["shuffleRemoteBytesRead"] = metrics.get("shuffleRemoteBytesRead", 0) + nbytes
            metrics["shuffleFetchWaitTime"] = (metrics.get("shuffleFetchWaitTime", 0)
                                               + wait // 1_000_000)


def _checked_batches(blocks: Iterable[tuple[int, str, bytes]], shuffle_id: int,
                     reduce_id: int) -> Iterator[list]:
    """The batches of ``read_blocks``'s pieces, decoded block by block, so that a corrupt
    one is named in the ``FetchFailedError`` it becomes."""
    for (map_id, executor_id), group in groupby(blocks, _block_of):
        try:
            yield from decode_batches(piece for _, _, piece in group)
        except CorruptDataError as exc:
            raise _corrupt(exc, shuffle_id, reduce_id, map_id, executor_id) from exc


def shuffle_bodies(shuffle_id: int, reduce_id: int
                   ) -> Iterator[tuple[bool, bytes, tuple[int, str]]]:
    """``(marshaled, body, (map_id, executor_id))`` of every batch of reduce partition
    ``reduce_id`` of ``shuffle_id`` (executor side), checked against its checksum but not
    decoded (``decode_shuffle_body`` does, naming the block when it cannot); the records
    are not counted (``count_read_records``)."""
    blocks = read_blocks(get_env(), shuffle_id, reduce_id)
    for block, group in groupby(blocks, _block_of):
        try:
            for marshaled, body in batch_bodies((piece for _, _, piece in group), copy=True):
                yield marshaled, body, block
        except CorruptDataError as exc:
            raise _corrupt(exc, shuffle_id, reduce_id, *block) from exc


def decode_shuffle_body(marshaled: bool, body: bytes, block: tuple[int, str],
                        shuffle_id: int, reduce_id: int) -> list:
    """The records of a body of ``shuffle_bodies``; ``FetchFailedError`` naming its block
    when it does not decode."""
    try:
        return decode_body(marshaled, body)
    except CorruptDataError as exc:
        raise _corrupt(exc, shuffle_id, reduce_id, *block) from exc


def count_read_records(n: int) -> None:
    """Add ``n`` to the running task's ``shuffleReadRecords``."""
    ctx = TaskContext.get()
    if ctx is not None:
        m = ctx._metrics
        m["shuffleReadRecords"] = m.get("shuffleReadRecords", 0) + n


def _corrupt(exc: CorruptDataError, shuffle_id: int, reduce_id: int, map_id: int,
             executor_id: str) -> FetchFailedError:
    return FetchFailedError(
        f"corrupt shuffle block (shuffle {shuffle_id}, map {map_id}, reduce "
        f"{reduce_id}) of executor {executor_id}: {exc}", shuffle_id, map_id,
        reduce_id, executor_id=executor_id)


def _block_of(item: tuple[int, str, bytes]) -> tuple[int, str]:
    return item[0], item[1]


def read_records(pieces: Iterable[bytes]) -> Iterator[Any]:
    """The records of the batches in ``pieces``, one by one (chained at C speed)."""
    return chain.from_iterable(decode_batches(pieces))


def shuffle_records(shuffle_id: int, reduce_id: int) -> Iterator[Any]:
    """Every record of reduce partition ``reduce_id`` of ``shuffle_id`` (executor side),
    chained at C speed from batches checked block by block."""
    return chain.from_iterable(shuffle_batches(shuffle_id, reduce_id))


def shuffle_batches(shuffle_id: int, reduce_id: int) -> Iterator[list]:
    """The decoded batches (lists of records) of reduce partition ``reduce_id`` of
    ``shuffle_id`` (executor side), checked block by block and counted in the task's
    ``shuffleReadRecords``."""
    ctx = TaskContext.get()
    batches = _checked_batches(read_blocks(get_env(), shuffle_id, reduce_id), shuffle_id,
                               reduce_id)
    if ctx is None:
        return batches
    return _counted(batches, ctx._metrics)


def _counted(batches: Iterator[list], metrics: dict) -> Iterator[list]:
    n = 0
    try:
        for batch in batches:
            n += len(batch)
            yield batch
    finally:
        metrics["shuffleReadRecords"] = metrics.get("shuffleReadRecords", 0) + n
