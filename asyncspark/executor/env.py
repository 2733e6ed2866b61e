"""What code running inside an executor can reach: its identity, scratch directory,
settings, the map output locations the driver sent, and its event loop (for fetches)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExecutorEnv", "get_env", "set_env"]


@dataclass
class ExecutorEnv:
    executor_id: str
    host: str
    local_dir: str
    conf: dict = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    block_port: int = 0
    # shuffle id -> per-map-partition statuses ([executor_id, host, port, path, sizes])
    map_outputs: dict[int, list] = field(default_factory=dict)
    block_client: Any = None  # TransportClientPool, created on first remote fetch
    # (shuffle id, map id) -> (data file, offsets) of map outputs written here
    outputs: dict[tuple[int, int], tuple[str, list[int]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    block_manager: Any = None  # storage.BlockManager, created at registration
    commits: Any = None  # commit.CommitClient (output commits), created at registration

    def setting(self, key: str, default: Any) -> Any:
        return self.conf.get(key, default)

    def client_pool(self) -> Any:
        """The executor's ``TransportClientPool`` (block servers of other executors),
        created on first use."""
        with self.lock:
            if self.block_client is None:
                from ..transport.client import TransportClientPool
                from ..transport.codec import DEFAULT_MAX_FRAME_SIZE

                # Bounded waits: spark.network.timeout for every answer,
                # asyncspark.shuffle.connectTimeout to connect and authenticate.
                self.block_client = TransportClientPool(
                    self.setting("secret", ""),
                    max_frame_size=self.setting("max_frame_size", DEFAULT_MAX_FRAME_SIZE),
                    connect_timeout=float(self.setting("shuffle_connect_timeout", 30.0)),
                    io_timeout=float(self.setting("network_timeout", 120.0)))
            return self.block_client


_env: ExecutorEnv | None = None


def set_env(env: ExecutorEnv | None) -> None:
    global _env
    _env = env


def get_env() -> ExecutorEnv:
    if _env is None:
        raise RuntimeError("this code runs only inside an asyncspark executor")
    return _env
