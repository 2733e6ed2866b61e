"""Every configuration key asyncspark honours (``KNOWN_KEYS``: key -> Config field, parser,
default, description) and the parsers of sizes, durations, hosts and the other value kinds.
``conf`` builds the frozen ``Config`` from this table; a new key is one entry here and one
field there."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

from .errors import ConfigError

__all__ = ["KNOWN_KEYS", "parse_bytes", "parse_duration"]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
               "p": 1 << 50, "pb": 1 << 50}
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0, "m": 60.0, "min": 60.0,
               "h": 3600.0, "d": 86400.0}
# Frame lengths are u32 on the wire (transport/codec.py).
_MAX_FRAME_SIZE = 0xFFFFFFFF


def parse_bytes(value: Any, key: str = "value", unit: str = "b") -> int:
    """``"48m"`` -> 50331648. Plain numbers are in ``unit`` (default bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value * _SIZE_UNITS[unit]
    else:
        m = re.fullmatch(r"\s*([0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise ConfigError(f"{key}: cannot parse {value!r} as a size (e.g. 512k, 48m, 1g)")
        n = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower() or unit]
    if n < 0:
        raise ConfigError(f"{key}: size must not be negative, got {value!r}")
    return n


def parse_duration(value: Any, key: str = "value", unit: str = "s") -> float:
    """``"3s"`` -> 3.0, ``"100ms"`` -> 0.1, in seconds. Plain numbers are in ``unit``
    (default seconds)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        s = float(value) * _TIME_UNITS[unit]
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _TIME_UNITS:
            raise ConfigError(f"{key}: cannot parse {value!r} as a duration (e.g. 100ms, 3s)")
        s = float(m.group(1)) * _TIME_UNITS[m.group(2).lower() or unit]
    if not math.isfinite(s):
        raise ConfigError(f"{key}: duration must be finite, got {value!r}")
    if s < 0:
        raise ConfigError(f"{key}: duration must not be negative, got {value!r}")
    return s


def _duration_in(unit: str) -> Any:
    """A duration parser whose plain numbers are in ``unit`` (Spark's per-key default)."""
    def parse(value: Any, key: str) -> float:
        return parse_duration(value, key, unit)
    parse.unit = unit  # type: ignore[attr-defined]
    return parse


def _bytes_in(unit: str) -> Any:
    """A size parser whose plain numbers are in ``unit`` (Spark's per-key default)."""
    def parse(value: Any, key: str) -> int:
        return parse_bytes(value, key, unit)
    parse.unit = unit  # type: ignore[attr-defined]
    return parse


_MILLISECONDS = _duration_in("ms")
_MEBIBYTES = _bytes_in("m")


def _parse_int(value: Any, key: str) -> int:
    # int() alone would turn True into 1 and silently truncate 2.5 to 2.
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if n < 0:
        raise ConfigError(f"{key}: must not be negative, got {value!r}")
    return n


def _parse_float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise ConfigError(f"{key}: expected a finite number >= 0, got {value!r}")
    return x


def _parse_str(value: Any, key: str) -> str:
    return str(value)


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _parse_host(value: Any, key: str) -> str:
    """An IP address or a syntactically valid host name (RFC 1123); whether the name
    resolves is checked when the driver listens."""
    host = str(value).strip()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not host or len(host) > 253 or not all(_HOST_LABEL.fullmatch(p) for p in labels):
        raise ConfigError(f"{key}: {value!r} is neither an IP address nor a host name")
    return host


def _parse_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _parse_scheduler_mode(value: Any, key: str) -> str:
    mode = str(value).strip().upper()
    if mode not in ("FIFO", "FAIR"):
        raise ConfigError(f"{key}: expected FIFO or FAIR, got {value!r}")
    return mode


def _timeout_or_infinity(unit: str) -> Any:
    """A duration parser (plain numbers in ``unit``) that also takes ``infinity``
    (Spark's default of the dynamic-allocation timeouts that never expire)."""
    finite = _duration_in(unit)

    def parse(value: Any, key: str) -> float:
        if str(value).strip().lower() in ("inf", "infinity"):
            return math.inf
        return finite(value, key)
    parse.unit = unit  # type: ignore[attr-defined]
    return parse


def _int_or_infinity(value: Any, key: str) -> int | None:
    """An executor count, or ``infinity`` (None: no limit)."""
    if str(value).strip().lower() in ("inf", "infinity"):
        return None
    return _parse_int(value, key)


def _parse_ratio(value: Any, key: str) -> float:
    x = _parse_float(value, key)
    if not 0 < x <= 1:
        raise ConfigError(f"{key}: expected a number in (0, 1], got {value!r}")
    return x


# key -> (Config field, parser, default, description)
KNOWN_KEYS: dict[str, tuple[str, Any, Any, str]] = {
    "spark.app.name": ("app_name", _parse_str, "asyncspark", "application name"),
    "spark.master": ("master", _parse_str, "local[*]",
                     "local, local[N], local[*], ray, ray://HOST:PORT, slurm, slurm://PARTITION"),
    "spark.default.parallelism": (
        "default_parallelism", _parse_int, None,
        "partitions of parallelize() etc. when not given (default: number of task slots)"),
    "spark.task.maxFailures": (
        "task_max_failures", _parse_int, 4, "attempts of one task before the job fails"),
    "spark.executor.heartbeatInterval": (
        "heartbeat_interval", _MILLISECONDS, 1.0,
        "executor heartbeat period (plain numbers: milliseconds)"),
    "asyncspark.executor.heartbeatTimeout": (
        "heartbeat_timeout", parse_duration, 5.0,
        "an executor silent this long (no heartbeat: hung, or SIGSTOPped) is declared lost, "
        "killed and replaced; at least spark.executor.heartbeatInterval"),
    "spark.stage.maxConsecutiveAttempts": (
        "stage_max_attempts", _parse_int, 4,
        "consecutive attempts of a stage that fail to fetch their input before its jobs "
        "fail"),
    "asyncspark.scheduler.resubmitDelay": (
        "resubmit_delay", parse_duration, 0.2,
        "wait after a fetch failure before resubmitting the failed stages (a burst of "
        "failures makes one resubmission)"),
    "spark.scheduler.mode": (
        "scheduler_mode", _parse_scheduler_mode, "FIFO",
        "FIFO: jobs' task sets run in submission order; FAIR: free slots go to pools of "
        "jobs by weight and minShare (pool of a job: the local property "
        "spark.scheduler.pool)"),
    "spark.scheduler.allocation.file": (
        "allocation_file", _parse_str, None,
        "FAIR mode: the pools (schedulingMode, weight, minShare) in Spark's XML format, or "
        "the same in JSON or TOML (by extension: .json, .toml)"),
    "asyncspark.scheduler.allocation": (
        "allocation", _parse_str, None,
        "FAIR mode: pools as inline JSON, {\"pools\": {name: {\"schedulingMode\": ..., "
        "\"weight\": ..., \"minShare\": ...}}}; added to (and overriding) the file's"),
    "asyncspark.scheduler.maxActiveJobs": (
        "max_active_jobs", _parse_int, 0,
        "most jobs running at once; beyond it an action raises JobRejectedError (or waits "
        "asyncspark.scheduler.admissionTimeout); 0 means unlimited"),
    "asyncspark.scheduler.maxPendingTasks": (
        "max_pending_tasks", _parse_int, 0,
        "most tasks of running jobs not yet finished (a job counts its result tasks and "
        "the map tasks of shuffles it must compute, from submission to its end); beyond "
        "it an action raises JobRejectedError (or waits); 0 means unlimited"),
    "asyncspark.scheduler.admissionTimeout": (
        "admission_timeout", parse_duration, 0.0,
        "how long an action over maxActiveJobs/maxPendingTasks waits for room before "
        "raising JobRejectedError; 0 raises at once (the local property of the same name "
        "overrides it per coroutine)"),
    "spark.driver.maxResultSize": (
        "max_result_size", parse_bytes, 1 << 30,
        "total size of the serialized results of one job's tasks before the job fails; "
        "0 means unlimited"),
    "asyncspark.task.maxDirectResultSize": (
        "max_direct_result_size", parse_bytes, 1 << 20,
        "a task result larger than this is written to a file in its executor's local dir "
        "and read from there by the driver, not sent in the status message (kept below "
        "asyncspark.rpc.maxFrameSize)"),
    "spark.network.timeout": (
        "network_timeout", parse_duration, 120.0,
        "longest wait for a shuffle block server's answer, for a slow reader of a block "
        "server, and for the driver to read an indirect task result (plain numbers: "
        "seconds)"),
    "asyncspark.network.authTimeout": (
        "auth_timeout", parse_duration, 10.0,
        "a connection to any asyncspark server (the driver's control port, block servers, "
        "the broadcast server) whose peer has not authenticated within this time is "
        "dropped"),
    "asyncspark.network.maxUnauthenticatedConnections": (
        "max_unauthenticated", _parse_int, 64,
        "connections per server that may wait to authenticate at once; new ones beyond "
        "that are closed at once"),
    "asyncspark.shuffle.connectTimeout": (
        "shuffle_connect_timeout", parse_duration, 30.0,
        "longest wait to connect to (and authenticate with) another executor's block "
        "server"),
    "spark.local.dir": ("local_dir", _parse_str, None, "scratch directory (default: system temp)"),
    "spark.python.worker.reuse": ("worker_reuse", _parse_bool, True, "always true"),
    "asyncspark.executor.taskSlots": (
        "task_slots", _parse_int, 1, "tasks an executor holds at once (1 runs, rest queue)"),
    "asyncspark.scheduler.shortTaskPipelining": (
        "pipeline_depth", _parse_int, 64,
        "most tasks queued on an executor behind the running one, once a stage's tasks "
        "are known to run shorter than asyncspark.scheduler.shortTaskThreshold (as many "
        "as run in that threshold on average)"),
    "asyncspark.scheduler.shortTaskThreshold": (
        "short_task_threshold", parse_duration, 0.002,
        "mean task run time under which a stage counts as short-task"),
    "asyncspark.shuffle.memoryBudget": (
        "shuffle_memory", parse_bytes, 256 << 20,
        "memory a shuffle task may hold before it spills to disk (per executor)"),
    "asyncspark.storage.memoryBudget": (
        "storage_memory", parse_bytes, 512 << 20,
        "memory an executor gives cached RDD partitions (MEMORY_* levels) before "
        "evicting the least recently used ones (to disk when their level allows)"),
    "spark.locality.wait": (
        "locality_wait", _MILLISECONDS, 3.0,
        "how long a task waits for a free slot on an executor (then host) holding its "
        "cached partition before it runs anywhere; 0 disables the wait (plain numbers: "
        "milliseconds)"),
    "spark.speculation": (
        "speculation", _parse_bool, False,
        "launch a speculative copy of a task that runs much longer than its stage's "
        "finished tasks (the first attempt to finish wins, the others are killed)"),
    "spark.speculation.multiplier": (
        "speculation_multiplier", _parse_float, 3.0,
        "how many times slower than the median finished task a task must be to be "
        "speculated"),
    "spark.speculation.quantile": (
        "speculation_quantile", _parse_float, 0.9,
        "fraction of a stage's tasks that must have finished before speculation starts"),
    "spark.speculation.minTaskRuntime": (
        "speculation_min_runtime", _MILLISECONDS, 0.1,
        "a task runs at least this long before it may be speculated (plain numbers: "
        "milliseconds)"),
    "spark.speculation.interval": (
        "speculation_interval", _MILLISECONDS, 0.1,
        "how often to check for stragglers (plain numbers: milliseconds)"),
    "spark.excludeOnFailure.enabled": (
        "exclude_on_failure", _parse_bool, False,
        "stop giving a task (a stage's tasks) to an executor it (they) failed on"),
    "spark.excludeOnFailure.task.maxTaskAttemptsPerExecutor": (
        "exclude_task_attempts_per_executor", _parse_int, 1,
        "failed attempts of a task on an executor before that task is excluded there"),
    "spark.excludeOnFailure.stage.maxFailedTasksPerExecutor": (
        "exclude_failed_tasks_per_executor", _parse_int, 2,
        "different tasks of a stage failing on an executor before it gets none of them"),
    "spark.reducer.maxSizeInFlight": (
        "max_bytes_in_flight", _MEBIBYTES, 48 << 20,
        "shuffle bytes a reduce task may have requested but not yet consumed (plain "
        "numbers: MiB)"),
    "asyncspark.shuffle.localRead": (
        "shuffle_local_read", _parse_bool, True,
        "read shuffle blocks of executors on the same host straight from their files"),
    "asyncspark.executor.registrationTimeout": (
        "registration_timeout", parse_duration, 30.0,
        "how long executors may take to start and register"),
    "asyncspark.executor.maxReplacementsPerMinute": (
        "max_replacements_per_minute", _parse_int, 10,
        "dead executors replaced per minute before jobs fail"),
    "asyncspark.executor.startBackoff": (
        "start_backoff", parse_duration, 0.5,
        "wait before retrying an executor that failed to start (doubles with each failure)"),
    "asyncspark.executor.maxStartBackoff": (
        "max_start_backoff", parse_duration, 30.0, "longest wait between executor start retries"),
    "asyncspark.executor.maxStartFailures": (
        "max_start_failures", _parse_int, 4,
        "executor starts failing in a row, with no executor left, before start-up fails and "
        "jobs are aborted (starts are still retried)"),
    "spark.executor.instances": (
        "executor_instances", _parse_int, None,
        "executors of a cluster master (ray, slurm): default 2; local[N] says N itself"),
    "spark.executor.cores": ("executor_cores", _parse_int, 1, "CPUs a cluster executor asks for"),
    "spark.executor.memory": (
        "executor_memory", parse_bytes, None, "memory a cluster executor asks for (default: none)"),
    "asyncspark.ray.executorResource": (
        "ray_executor_resource", _parse_str, None,
        "custom Ray resource (one unit per executor) that pins executors to nodes offering it"),
    "asyncspark.ray.nodeIpAddress": (
        "ray_node_ip", _parse_str, None,
        "this driver's address in the Ray cluster, where its machine has several"),
    "asyncspark.ray.placementStrategy": (
        "ray_placement_strategy", _parse_str, "SPREAD",
        "placement group strategy of Ray executors: SPREAD (default), PACK, STRICT_SPREAD"),
    # -- SLURM backend (scheduler/backends/slurm.py) --------------------------------------
    "asyncspark.slurm.partition": (
        "slurm_partition", _parse_str, None,
        "SLURM partition executors' jobs are submitted to (sbatch --partition; the "
        "slurm://PARTITION master says it too); default: the cluster's default partition"),
    "asyncspark.slurm.account": (
        "slurm_account", _parse_str, None,
        "SLURM account executors' jobs are charged to (sbatch --account)"),
    "asyncspark.slurm.timeLimit": (
        "slurm_time_limit", _parse_str, None,
        "time limit of each executor's job in sbatch --time form (e.g. 30, 1:00:00, "
        "2-00:00:00); default: the partition's. A job that reaches it is lost and replaced"),
    "asyncspark.slurm.directives": (
        "slurm_directives", _parse_str, None,
        "extra sbatch options for executors' jobs, one per line or separated by ';' (e.g. "
        "'--qos=short; --constraint=ib'), written as #SBATCH lines of the job script"),
    "asyncspark.slurm.python": (
        "slurm_python", _parse_str, None,
        "the Python interpreter executors' jobs run (python -m asyncspark.executor) on the "
        "nodes; default: the driver's own (sys.executable), as on a shared file system"),
    "asyncspark.slurm.pollInterval": (
        "slurm_poll_interval", parse_duration, 1.0,
        "how often squeue is asked for the states of executors' jobs (5 times as often "
        "while a job is starting)"),
    "asyncspark.slurm.logDirectory": (
        "slurm_log_directory", _parse_str, None,
        "directory (on a file system the nodes share) for each executor job's output "
        "(asyncspark-<app>-<job id>.out); default: none kept (/dev/null)"),
    "asyncspark.slurm.cancelTimeout": (
        "slurm_cancel_timeout", parse_duration, 10.0,
        "how long a cancelled executor job may take to end before its node is asked about "
        "(a node not responding: the executor is lost with its host)"),
    "asyncspark.task.killGracePeriod": (
        "kill_grace_period", parse_duration, 1.0,
        "time a killed task has to stop before its executor is killed and replaced"),
    "asyncspark.rpc.maxFrameSize": (
        "max_frame_size", parse_bytes, 256 << 20, "largest frame a connection accepts"),
    "asyncspark.rpc.host": (
        "rpc_host", _parse_host, "127.0.0.1",
        "address the driver (and its executors) listen on: an IP address or a host name"),
    "asyncspark.eventLoop.uvloop": (
        "use_uvloop", _parse_bool, True, "executors run on uvloop when installed"),
    "spark.ui.enabled": (
        "ui_enabled", _parse_bool, None,
        "serve the web UI and REST API (default: on in an interactive interpreter, off "
        "otherwise)"),
    "spark.ui.port": (
        "ui_port", _parse_int, 4040,
        "port of the web UI (busy: the next 16 are tried); 0 picks a free one"),
    "spark.ui.retainedJobs": ("ui_retained_jobs", _parse_int, 1000,
                              "finished jobs the status store keeps"),
    "spark.ui.retainedStages": ("ui_retained_stages", _parse_int, 1000,
                                "finished stage attempts the status store keeps"),
    "spark.ui.retainedTasks": ("ui_retained_tasks", _parse_int, 100_000,
                               "finished tasks the status store keeps per stage attempt"),
    "spark.ui.showConsoleProgress": (
        "show_console_progress", _parse_bool, None,
        "draw the console progress bar on stderr (default: when stderr is a terminal)"),
    "spark.scheduler.listenerbus.eventqueue.capacity": (
        "listener_queue_capacity", _parse_int, 10_000,
        "events a listener's queue holds before further events are dropped (and counted)"),
    "spark.eventLog.enabled": ("event_log_enabled", _parse_bool, False,
                               "write the listener events to a JSON-lines event log"),
    "spark.eventLog.dir": ("event_log_dir", _parse_str, "/tmp/spark-events",
                           "directory of the event logs (asyncspark history DIR reads them)"),
    "spark.eventLog.compress": ("event_log_compress", _parse_bool, False,
                                "gzip the event log"),
    "asyncspark.trace.tasks": (
        "trace_tasks", _parse_bool, False,
        "record per-task timestamps from submission to result delivery "
        "(asyncspark bench latency --breakdown)"),
    "spark.cleaner.referenceTracking": (
        "cleaner_reference_tracking", _parse_bool, True,
        "the ContextCleaner removes shuffles, broadcasts and cached RDDs once the driver "
        "no longer references them"),
    "spark.cleaner.referenceTracking.blocking": (
        "cleaner_blocking", _parse_bool, True,
        "the cleaner waits for each cached RDD's blocks to be removed before the next "
        "clean-up"),
    # -- TLS (issue 15 item 5): PEM files under Spark 4's names (asyncspark/tls.py) ----
    "spark.ssl.enabled": (
        "ssl_enabled", _parse_bool, False,
        "TLS on every connection: driver and executor control and task channels, shuffle "
        "and cached-block fetches, the broadcast server and (see spark.ssl.ui.enabled) the "
        "web UI"),
    "spark.ssl.certChain": (
        "ssl_cert_chain", _parse_str, None,
        "PEM file of the certificate chain every process presents (Spark's keyStore); "
        "executors on other hosts need it at the same path"),
    "spark.ssl.privateKey": (
        "ssl_private_key", _parse_str, None,
        "PEM file of the private key of spark.ssl.certChain (Spark's keyStore)"),
    "spark.ssl.privateKeyPassword": (
        "ssl_private_key_password", _parse_str, None,
        "password of an encrypted spark.ssl.privateKey (Spark's keyPassword); executors get "
        "it in their environment, and the web UI shows it redacted"),
    "spark.ssl.trustStore": (
        "ssl_trust_store", _parse_str, None,
        "PEM bundle of the CA certificates a peer's certificate must chain to (unset: the "
        "system's CAs); use a CA private to the cluster"),
    "spark.ssl.needClientAuth": (
        "ssl_need_client_auth", _parse_bool, False,
        "mutual TLS: every server requires the client's certificate, chained to "
        "spark.ssl.trustStore (the web UI never asks for one)"),
    "spark.ssl.protocol": (
        "ssl_protocol", _parse_str, "TLSv1.2",
        "lowest TLS version accepted: TLSv1.2 or TLSv1.3"),
    "spark.ssl.enabledAlgorithms": (
        "ssl_enabled_algorithms", _parse_str, None,
        "comma-separated OpenSSL names of the TLS 1.2 cipher suites allowed (unset: "
        "OpenSSL's defaults; TLS 1.3 suites are always OpenSSL's)"),
    "spark.ssl.ui.enabled": (
        "ssl_ui_enabled", _parse_bool, None,
        "serve the web UI and REST API over HTTPS (default: spark.ssl.enabled)"),
    "asyncspark.ssl.checkHostname": (
        "ssl_check_hostname", _parse_bool, False,
        "clients check that the server's certificate names the address they connected to "
        "(off: any certificate chained to spark.ssl.trustStore is accepted, as Spark's RPC "
        "does; the secret handshake inside TLS still authenticates the peer)"),
    # -- dynamic allocation (issue 15): scheduler/allocation.py, backends/dynamic.py --
    "spark.dynamicAllocation.enabled": (
        "dyn_enabled", _parse_bool, False,
        "scale the number of executors with the workload: more while tasks are "
        "backlogged, fewer when executors idle (local[N]: N is the default maximum)"),
    "spark.dynamicAllocation.minExecutors": (
        "dyn_min_executors", _parse_int, 0,
        "dynamic allocation never goes below this many executors"),
    "spark.dynamicAllocation.maxExecutors": (
        "dyn_max_executors", _int_or_infinity, None,
        "dynamic allocation never goes above this many executors (default: infinity; "
        "N for local[N])"),
    "spark.dynamicAllocation.initialExecutors": (
        "dyn_initial_executors", _parse_int, None,
        "executors at start with dynamic allocation (the largest of this, minExecutors "
        "and spark.executor.instances)"),
    "spark.dynamicAllocation.executorIdleTimeout": (
        "dyn_idle_timeout", _duration_in("s"), 60.0,
        "an executor idle this long (no running task, no cached block, no shuffle output) "
        "is removed (plain numbers: seconds)"),
    "spark.dynamicAllocation.cachedExecutorIdleTimeout": (
        "dyn_cached_idle_timeout", _timeout_or_infinity("s"), math.inf,
        "an idle executor holding cached blocks is removed after this long (default: "
        "infinity, never; plain numbers: seconds)"),
    "spark.dynamicAllocation.schedulerBacklogTimeout": (
        "dyn_backlog_timeout", _duration_in("s"), 1.0,
        "tasks waiting for a slot this long make dynamic allocation ask for more executors "
        "(plain numbers: seconds)"),
    "spark.dynamicAllocation.sustainedSchedulerBacklogTimeout": (
        "dyn_sustained_backlog_timeout", _duration_in("s"), None,
        "while the backlog lasts, the target grows again (twice the last step) after this "
        "long (default: schedulerBacklogTimeout; plain numbers: seconds)"),
    "spark.dynamicAllocation.executorAllocationRatio": (
        "dyn_allocation_ratio", _parse_ratio, 1.0,
        "fraction of the executors the unfinished tasks could use that dynamic allocation "
        "asks for (1: one slot per task)"),
    "spark.dynamicAllocation.shuffleTracking.enabled": (
        "dyn_shuffle_tracking", _parse_bool, True,
        "keep executors holding shuffle outputs an active job still needs (there is no "
        "external shuffle service: a removed executor's shuffle files are gone)"),
    "spark.dynamicAllocation.shuffleTracking.timeout": (
        "dyn_shuffle_tracking_timeout", _timeout_or_infinity("ms"), math.inf,
        "an idle executor holding shuffle outputs no active job needs is removed after "
        "this long (default: infinity, kept until the shuffle is cleaned up; plain "
        "numbers: milliseconds)"),
}
