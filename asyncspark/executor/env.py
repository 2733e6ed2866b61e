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

    def setting(self, key: str, default: Any) -> Any:
        return self.conf.get(key, default)


_env: ExecutorEnv | None = None


def set_env(env: ExecutorEnv | None) -> None:
    global _env
    _env = env


def get_env() -> ExecutorEnv:
    if _env is None:
        raise RuntimeError("this code runs only inside an asyncspark executor")
    return _env
