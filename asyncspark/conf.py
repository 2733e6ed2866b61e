"""Configuration: ``SparkConf`` (mutable, PySpark's API) and ``Config`` (frozen, validated).

Keys keep Spark's names and defaults where Spark has the knob; asyncspark's own knobs live
under ``asyncspark.*``. ``KNOWN_KEYS`` (in ``conf_keys``) is the one table of every key
honoured. A number without a unit is read in the key's default unit, as Spark reads it
(``spark.locality.wait=3000`` is 3000 ms, ``spark.reducer.maxSizeInFlight=48`` is 48 MiB,
``spark.network.timeout=120`` is 120 s); ``asyncspark.*`` durations default to seconds and
sizes to bytes. An unknown ``asyncspark.*`` key is an error; an unknown ``spark.*`` key is
kept (``getConf()`` returns it, as Spark does) with one warning.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .conf_keys import _MAX_FRAME_SIZE, KNOWN_KEYS, parse_bytes, parse_duration
from .errors import ConfigError

__all__ = ["KNOWN_KEYS", "Config", "SparkConf", "parse_bytes", "parse_duration"]

log: logging.Logger = logging.getLogger("asyncspark")


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """The validated, frozen configuration a context runs with."""

    app_name: str = "asyncspark"
    master: str = "local[*]"
    default_parallelism: int | None = None
    task_max_failures: int = 4
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0
    stage_max_attempts: int = 4
    resubmit_delay: float = 0.2
    scheduler_mode: str = "FIFO"
    allocation_file: str | None = None
    allocation: str | None = None
    max_active_jobs: int = 0
    max_pending_tasks: int = 0
    admission_timeout: float = 0.0
    max_result_size: int = 1 << 30
    max_direct_result_size: int = 1 << 20
    network_timeout: float = 120.0
    shuffle_connect_timeout: float = 30.0
    auth_timeout: float = 10.0
    max_unauthenticated: int = 64
    local_dir: str | None = None
    worker_reuse: bool = True
    task_slots: int = 1
    pipeline_depth: int = 64
    shuffle_memory: int = 256 << 20
    storage_memory: int = 512 << 20
    locality_wait: float = 3.0
    max_bytes_in_flight: int = 48 << 20
    shuffle_local_read: bool = True
    short_task_threshold: float = 0.002
    registration_timeout: float = 30.0
    max_replacements_per_minute: int = 10
    kill_grace_period: float = 1.0
    start_backoff: float = 0.5
    max_start_backoff: float = 30.0
    max_start_failures: int = 4
    executor_instances: int | None = None
    executor_cores: int = 1
    executor_memory: int | None = None
    ray_executor_resource: str | None = None
    ray_placement_strategy: str = "SPREAD"
    ray_node_ip: str | None = None
    # SLURM backend (scheduler/backends/slurm.py)
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_time_limit: str | None = None
    slurm_directives: str | None = None
    slurm_python: str | None = None
    slurm_poll_interval: float = 1.0
    slurm_log_directory: str | None = None
    slurm_cancel_timeout: float = 10.0
    max_frame_size: int = 256 << 20
    rpc_host: str = "127.0.0.1"
    use_uvloop: bool = True
    trace_tasks: bool = False
    ui_enabled: bool | None = None
    ui_port: int = 4040
    ui_retained_jobs: int = 1000
    ui_retained_stages: int = 1000
    ui_retained_tasks: int = 100_000
    show_console_progress: bool | None = None
    listener_queue_capacity: int = 10_000
    event_log_enabled: bool = False
    event_log_dir: str = "/tmp/spark-events"
    event_log_compress: bool = False
    speculation: bool = False
    speculation_multiplier: float = 3.0
    speculation_quantile: float = 0.9
    speculation_min_runtime: float = 0.1
    speculation_interval: float = 0.1
    exclude_on_failure: bool = False
    exclude_task_attempts_per_executor: int = 1
    exclude_failed_tasks_per_executor: int = 2
    cleaner_reference_tracking: bool = True
    cleaner_blocking: bool = True
    # TLS (asyncspark/tls.py)
    ssl_enabled: bool = False
    ssl_cert_chain: str | None = None
    ssl_private_key: str | None = None
    ssl_private_key_password: str | None = None
    ssl_trust_store: str | None = None
    ssl_need_client_auth: bool = False
    ssl_protocol: str = "TLSv1.2"
    ssl_enabled_algorithms: str | None = None
    ssl_ui_enabled: bool | None = None
    ssl_check_hostname: bool = False
    # dynamic allocation (issue 15)
    dyn_enabled: bool = False
    dyn_min_executors: int = 0
    dyn_max_executors: int | None = None
    dyn_initial_executors: int | None = None
    dyn_idle_timeout: float = 60.0
    dyn_cached_idle_timeout: float = math.inf
    dyn_backlog_timeout: float = 1.0
    dyn_sustained_backlog_timeout: float | None = None
    dyn_allocation_ratio: float = 1.0
    dyn_shuffle_tracking: bool = True
    dyn_shuffle_tracking_timeout: float = math.inf
    raw: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, Any]]) -> Config:
        values: dict[str, Any] = {}
        raw: dict[str, str] = {}
        for key, value in items:
            raw[key] = str(value)
            spec = KNOWN_KEYS.get(key)
            if spec is None:
                if key.startswith("asyncspark."):
                    raise ConfigError(f"unknown configuration key {key!r}")
                if key.startswith("spark."):  # kept in raw, as Spark does
                    log.warning("configuration key %r is not used by asyncspark (kept in "
                                "getConf())", key)
                continue
            field, parser, _default, _doc = spec
            values[field] = parser(value, key)
        if values.get("task_max_failures", 1) < 1:
            raise ConfigError("spark.task.maxFailures must be at least 1")
        if values.get("task_slots", 1) < 1:
            raise ConfigError("asyncspark.executor.taskSlots must be at least 1")
        if values.get("max_frame_size", 1 << 20) < 1024:
            raise ConfigError("asyncspark.rpc.maxFrameSize must be at least 1k")
        if values.get("max_frame_size", 0) > _MAX_FRAME_SIZE:
            raise ConfigError(
                f"asyncspark.rpc.maxFrameSize must be at most {_MAX_FRAME_SIZE} bytes "
                f"(4g - 1), got {values['max_frame_size']}")
        if values.get("speculation_quantile", 0.0) > 1.0:
            raise ConfigError("spark.speculation.quantile must be between 0 and 1, got "
                              f"{values['speculation_quantile']}")
        if values.get("speculation_interval", 1.0) <= 0:
            raise ConfigError("spark.speculation.interval must be greater than 0")
        for field, key in (
                ("exclude_task_attempts_per_executor",
                 "spark.excludeOnFailure.task.maxTaskAttemptsPerExecutor"),
                ("exclude_failed_tasks_per_executor",
                 "spark.excludeOnFailure.stage.maxFailedTasksPerExecutor")):
            if values.get(field, 1) < 1:
                raise ConfigError(f"{key} must be at least 1")
        if values.get("default_parallelism", 1) == 0:
            raise ConfigError("spark.default.parallelism must be at least 1")
        if values.get("max_start_failures", 1) < 1:
            raise ConfigError("asyncspark.executor.maxStartFailures must be at least 1")
        if values.get("executor_instances", 1) is not None and \
                values.get("executor_instances", 1) < 0:
            raise ConfigError("spark.executor.instances must be at least 0")
        if values.get("executor_cores", 1) < 1:
            raise ConfigError("spark.executor.cores must be at least 1")
        strategy = values.get("ray_placement_strategy", "SPREAD").upper()
        if strategy not in ("SPREAD", "PACK", "STRICT_SPREAD", "STRICT_PACK"):
            raise ConfigError("asyncspark.ray.placementStrategy must be SPREAD, PACK, "
                              f"STRICT_SPREAD or STRICT_PACK, got {strategy!r}")
        if "ray_placement_strategy" in values:
            values["ray_placement_strategy"] = strategy
        if values.get("max_unauthenticated", 1) < 1:
            raise ConfigError("asyncspark.network.maxUnauthenticatedConnections must be at "
                              "least 1")
        if values.get("listener_queue_capacity", 1) < 1:
            raise ConfigError(
                "spark.scheduler.listenerbus.eventqueue.capacity must be at least 1")
        if values.get("ui_port", 0) > 65535:
            raise ConfigError(f"spark.ui.port must be at most 65535, got {values['ui_port']}")
        lo, hi = values.get("dyn_min_executors", 0), values.get("dyn_max_executors")
        if hi is not None and hi < max(1, lo):
            raise ConfigError("spark.dynamicAllocation.maxExecutors must be at least 1 and at "
                              f"least minExecutors ({lo}), got {hi}")
        for field, key in (("dyn_backlog_timeout", "schedulerBacklogTimeout"),
                           ("dyn_sustained_backlog_timeout", "sustainedSchedulerBacklogTimeout")):
            if values.get(field, 1.0) is not None and values.get(field, 1.0) <= 0:
                raise ConfigError(f"spark.dynamicAllocation.{key} must be greater than 0")
        if values.get("stage_max_attempts", 1) < 1:
            raise ConfigError("spark.stage.maxConsecutiveAttempts must be at least 1")
        for field, key in (("heartbeat_interval", "spark.executor.heartbeatInterval"),
                           ("heartbeat_timeout", "asyncspark.executor.heartbeatTimeout"),
                           ("registration_timeout", "asyncspark.executor.registrationTimeout"),
                           ("network_timeout", "spark.network.timeout"),
                           ("shuffle_connect_timeout", "asyncspark.shuffle.connectTimeout"),
                           ("auth_timeout", "asyncspark.network.authTimeout")):
            if values.get(field, 1.0) <= 0:
                raise ConfigError(f"{key} must be greater than 0, got {values[field]}")
        interval = values.get("heartbeat_interval",
                              KNOWN_KEYS["spark.executor.heartbeatInterval"][2])
        timeout = values.get("heartbeat_timeout",
                             KNOWN_KEYS["asyncspark.executor.heartbeatTimeout"][2])
        if timeout <= interval:
            raise ConfigError(
                f"asyncspark.executor.heartbeatTimeout ({timeout:g}s) must be greater than "
                f"spark.executor.heartbeatInterval ({interval:g}s): executors would be "
                "declared lost between two heartbeats")
        return cls(**values, raw=raw)


class SparkConf:
    """PySpark's ``SparkConf``: a mutable bag of settings, chained setters."""

    def __init__(self, loadDefaults: bool = True, _items: Mapping[str, str] | None = None):
        self._conf: dict[str, str] = {}
        if loadDefaults:
            for k, v in os.environ.items():
                if k.startswith("ASYNCSPARK_CONF_"):
                    self._conf[k[len("ASYNCSPARK_CONF_"):].replace("__", ".")] = v
        if _items:
            self._conf.update({k: str(v) for k, v in _items.items()})

    def set(self, key: str, value: Any) -> SparkConf:
        """Set ``key`` (the value is kept as a string); returns the conf.

        >>> SparkConf(False).set("spark.task.maxFailures", 8).get("spark.task.maxFailures")
        '8'
        """
        self._conf[key] = str(value)
        return self

    def setIfMissing(self, key: str, value: Any) -> SparkConf:
        """Set ``key`` only if it is not set yet.

        >>> SparkConf(False).set("a.b", 1).setIfMissing("a.b", 2).get("a.b")
        '1'
        """
        self._conf.setdefault(key, str(value))
        return self

    def setAll(self, pairs: Iterable[tuple[str, Any]]) -> SparkConf:
        """Set every ``(key, value)`` of ``pairs``.

        >>> SparkConf(False).setAll([("a.x", 1), ("a.y", 2)]).getAll()
        [('a.x', '1'), ('a.y', '2')]
        """
        for k, v in pairs:
            self.set(k, v)
        return self

    def setMaster(self, value: str) -> SparkConf:
        """``spark.master``.

        >>> SparkConf(False).setMaster("local[2]").get("spark.master")
        'local[2]'
        """
        return self.set("spark.master", value)

    def setAppName(self, value: str) -> SparkConf:
        """``spark.app.name``.

        >>> SparkConf(False).setAppName("etl").get("spark.app.name")
        'etl'
        """
        return self.set("spark.app.name", value)

    def get(self, key: str, defaultValue: str | None = None) -> str | None:
        """The value of ``key``, or ``defaultValue``.

        >>> SparkConf(False).get("spark.master", "local[*]")
        'local[*]'
        """
        return self._conf.get(key, defaultValue)

    def contains(self, key: str) -> bool:
        """Whether ``key`` is set.

        >>> SparkConf(False).setMaster("local").contains("spark.master")
        True
        """
        return key in self._conf

    def getAll(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` set, in the order they were first set.

        >>> SparkConf(False).setAppName("a").setMaster("local").getAll()
        [('spark.app.name', 'a'), ('spark.master', 'local')]
        """
        return list(self._conf.items())

    def toDebugString(self) -> str:
        """One ``key=value`` line per setting, sorted by key.

        >>> print(SparkConf(False).setMaster("local").setAppName("a").toDebugString())
        spark.app.name=a
        spark.master=local
        """
        return "\n".join(f"{k}={v}" for k, v in sorted(self._conf.items()))
