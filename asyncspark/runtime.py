"""The process-wide environment of an executor: what code running in a task can reach.

Owns ``ExecutorSettings`` (the typed settings the driver sends an executor at
registration, with their defaults: those of ``conf.Config``) and ``ExecutorEnv`` (the
executor's identity, scratch directory, settings, the map output locations the driver
sent, its event loop for fetches, and the services the executor installs: the block
manager, the commit client, the broadcast cache and the block client pool factory).

A leaf: nothing here imports the engine. The executor (``executor/executor.py``) builds
the environment, installs the higher-layer services into it, and ``set_env``s it; the
shuffle, storage, RDD, output and broadcast code reaches them through ``get_env()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .conf import Config

__all__ = ["ExecutorEnv", "ExecutorSettings", "current_env", "get_env", "set_env"]

_DEFAULTS = Config()


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """What an executor is told at registration (``Registered.conf``, a msgpack map with
    these field names as keys). Built by the driver from its ``Config``, but for
    ``offheap_dir`` and ``preload``, which the driver passes in."""

    storage_memory: int = _DEFAULTS.storage_memory
    offheap_dir: str | None = None  # the block manager master's off-heap directory
    heartbeat_interval: float = _DEFAULTS.heartbeat_interval
    max_frame_size: int = _DEFAULTS.max_frame_size
    shuffle_memory: int = _DEFAULTS.shuffle_memory
    max_bytes_in_flight: int = _DEFAULTS.max_bytes_in_flight
    shuffle_local_read: bool = _DEFAULTS.shuffle_local_read
    trace_tasks: bool = _DEFAULTS.trace_tasks
    max_result_size: int = _DEFAULTS.max_result_size
    max_direct_result_size: int = _DEFAULTS.max_direct_result_size
    network_timeout: float = _DEFAULTS.network_timeout
    shuffle_connect_timeout: float = _DEFAULTS.shuffle_connect_timeout
    auth_timeout: float = _DEFAULTS.auth_timeout  # the block server's limits for peers
    max_unauthenticated: int = _DEFAULTS.max_unauthenticated  # that did not authenticate
    # Modules the executor imports once registered, before its first task: those that
    # unpickling task binaries imports (named by the driver, planner.TASK_MODULES).
    preload: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, conf: Config, offheap_dir: str | None = None,
                    preload: tuple[str, ...] = ()) -> ExecutorSettings:
        return cls(**{f.name: getattr(conf, f.name) for f in dataclasses.fields(cls)
                      if f.name not in _FROM_DRIVER}, offheap_dir=offheap_dir,
                   preload=tuple(preload))

    def to_wire(self) -> dict[str, Any]:
        """The ``Registered.conf`` map."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_wire(cls, conf: dict[str, Any]) -> ExecutorSettings:
        """The settings in a ``Registered.conf`` map; a missing key keeps its default,
        an unknown one is ignored, numbers are coerced to the field's type (and the
        ``preload`` list to a tuple)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in conf:
                continue
            value = conf[f.name]
            kind = _COERCE.get(str(f.type))
            values[f.name] = kind(value) if kind is not None and value is not None else value
        return cls(**values)


_FROM_DRIVER = frozenset({"offheap_dir", "preload"})  # settings not taken from Config
_COERCE: dict[str, Callable[[Any], Any]] = {"int": int, "float": float, "bool": bool,
                                            "tuple[str, ...]": tuple}


@dataclass
class ExecutorEnv:
    executor_id: str
    host: str
    local_dir: str
    settings: ExecutorSettings = field(default_factory=ExecutorSettings)
    secret: str = ""
    loop: asyncio.AbstractEventLoop | None = None
    block_port: int = 0
    # shuffle id -> per-map-partition statuses ([executor_id, host, port, path, sizes])
    map_outputs: dict[int, list[Any]] = field(default_factory=dict)
    # (shuffle id, map id) -> (data file, offsets) of map outputs written here
    outputs: dict[tuple[int, int], tuple[str, list[int]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Installed by the executor (this module imports none of them):
    block_manager: Any = None  # storage.BlockManager, created at registration
    commits: Any = None  # executor.commit.CommitClient (output commits), at registration
    broadcasts: Any = None  # executor.broadcasts.BroadcastCache, one per executor
    # (env) -> the block client pool (transport.client.TransportClientPool)
    new_client_pool: Callable[[ExecutorEnv], Any] | None = None
    tls_client: Any = None  # the client ssl.SSLContext of its connections (TLS on), or None
    _client_pool: Any = None

    def client_pool(self) -> Any:
        """The executor's block client pool (block servers of other executors and the
        driver's broadcast server), created by ``new_client_pool`` on first use."""
        with self.lock:
            if self._client_pool is None:
                if self.new_client_pool is None:
                    raise RuntimeError("no block client pool installed in this executor")
                self._client_pool = self.new_client_pool(self)
            return self._client_pool


_env: ExecutorEnv | None = None


def set_env(env: ExecutorEnv | None) -> None:
    global _env
    _env = env


def get_env() -> ExecutorEnv:
    if _env is None:
        raise RuntimeError("this code runs only inside an asyncspark executor")
    return _env


def current_env() -> ExecutorEnv | None:
    """The environment if this process is an executor, else None."""
    return _env
