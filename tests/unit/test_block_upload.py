"""A cached-block replica bigger than a frame is uploaded in pieces (UploadBlockChunk)
and stored once complete; a piece out of order fails that upload only."""

from __future__ import annotations

import asyncio
import os

from asyncspark.transport.client import TransportClientPool
from asyncspark.transport.messages.blocks import UploadBlockChunk
from asyncspark.transport.server import TransportServer

SECRET = "s3cret"
LEVEL = [False, True, False, False, 2]  # MEMORY_ONLY_SER_2 on the wire
FRAME = 64 << 10


class Store:
    def __init__(self) -> None:
        self.blocks: dict[str, bytes] = {}

    def get_block_bytes(self, block: str) -> bytes | None:
        return self.blocks.get(block)

    def put_block_bytes(self, block: str, level: list, data) -> None:
        self.blocks[block] = bytes(data)


def no_segments(shuffle_id, map_id, reduce_id):
    raise KeyError(map_id)


async def test_a_replica_bigger_than_a_frame_goes_in_pieces():
    store = Store()
    async with TransportServer(SECRET, no_segments, in_memory=True, max_frame_size=FRAME,
                               blocks=store) as server, \
            TransportClientPool(SECRET, max_frame_size=FRAME) as pool:
        data = os.urandom(1 << 20)  # 16 frames' worth
        assert await pool.cached_block(server.address, "rdd_1_0", LEVEL, data) == b""
        assert store.blocks["rdd_1_0"] == data
        small = b"small"
        assert await pool.cached_block(server.address, "rdd_1_1", LEVEL, small) == b""
        assert store.blocks["rdd_1_1"] == small
        # A piece out of order: that upload fails, the connection goes on.
        client = await pool.connect(server.address)
        fut = asyncio.get_running_loop().create_future()
        request_id = client._opens.next_id()
        client._opens.add(fut, request_id=request_id)
        client.proto.send(UploadBlockChunk(request_id, "rdd_1_2", LEVEL, 10, 100, b"x"))
        reply = await asyncio.wait_for(fut, 10)
        assert "bad upload of rdd_1_2" in reply.error
        assert "rdd_1_2" not in store.blocks
        assert await pool.cached_block(server.address, "rdd_1_1") == small
