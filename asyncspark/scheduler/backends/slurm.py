"""SlurmBackend: executors as SLURM batch jobs (``Context("slurm")``,
``Context("slurm://PARTITION")``).

A ``ClusterBackend`` (``cluster.py``): SLURM only provides the processes, as a queue
does for dask-jobqueue. Each executor is one ``sbatch`` job (one node, one task,
``--cpus-per-task`` = ``spark.executor.cores``, ``--mem`` = ``spark.executor.memory``,
``asyncspark.slurm.partition`` / ``account`` / ``timeLimit`` / ``directives``) running the
unchanged ``python -m asyncspark.executor`` (``asyncspark.slurm.python``, by default the
driver's own interpreter, as on a shared file system). Custom resources of the
``ExecutorSpec`` (Ray's) are not used: GRES and constraints are asked for with
``asyncspark.slurm.directives`` (``--gres=gpu:1``). One job per executor rather than a
job array: executors come and go one at a time (a lost one is replaced, a scale-down
cancels chosen ones), each with its own new id, and a job's state is its executor's;
an array's tasks share one script and one environment, so every task would need its
executor id from ``SLURM_ARRAY_TASK_ID`` and a replacement could not join the array.

The driver's address, the executor id and the per-application secret reach the job only
in its environment: ``sbatch --export`` of named variables of sbatch's own environment
(never its arguments, which every user sees, nor the job script, which SLURM keeps on
the nodes' spool directories). The script goes to sbatch on its standard input: no
script file is written on the driver's side at all. The job binds its executor to the
node's ``NodeAddr`` (``slurm_jobs.py`` describes the script and its start handshake).

Loss is the first of: the executor's connection dropping or its heartbeat timing out
(``manager.py``, which then cancels the job), or the job's state in ``squeue`` (polled
every ``asyncspark.slurm.pollInterval`` as an asyncio subprocess, never blocking the
loop; ``sacct`` for jobs squeue has forgotten) leaving the running states: its exit
status becomes the ``Lost`` exit code; ``NODE_FAIL``, or a cancelled job whose node does
not respond, is ``host_lost``. Cancelled with ``scancel``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import uuid

from ...conf import Config
from ...errors import ConfigError
from .cluster import (
    BIND_HOST_ENV,
    DRIVER_ENV,
    EXECUTOR_ID_ENV,
    LOCAL_DIR_ENV,
    ExecutorSpec,
    ProcessAllocator,
    executor_environment,
)
from .local import _app_dir
from .manager import describe_exit
from .slurm_jobs import (
    JobRow,
    SlurmError,
    SlurmJobs,
    exported_names,
    job_script,
    parse_directives,
    sbatch_options,
    wait_status_to_code,
)

__all__ = ["SlurmBackend"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

_STOP_GRACE_S = 3.0  # how long a closing backend waits for executors told to stop
COMMANDS = ("sbatch", "squeue", "scancel", "scontrol")
# What an executor's job gets from sbatch's environment (where set), besides spec.env.
_EXPORTED = ["ASYNCSPARK_SECRET", DRIVER_ENV, EXECUTOR_ID_ENV, "ASYNCSPARK_PYTHON",
             "ASYNCSPARK_UVLOOP", "ASYNCSPARK_DRIVER_PATH", "ASYNCSPARK_SLURM_SCRATCH",
             "PYTHONHASHSEED", "PATH", "HOME", "PYTHONPATH", "LANG",
             "LC_ALL", "VIRTUAL_ENV", "TMPDIR"]
_STATES = {"TIMEOUT": "reached its time limit (asyncspark.slurm.timeLimit)",
           "NODE_FAIL": "lost its node", "PREEMPTED": "was preempted",
           "OUT_OF_MEMORY": "ran out of memory (spark.executor.memory)",
           "BOOT_FAIL": "could not boot its node", "DEADLINE": "reached its deadline"}


class _Handle:
    __slots__ = ("executor_id", "job")

    def __init__(self, executor_id: str, job) -> None:
        self.executor_id, self.job = executor_id, job


class SlurmBackend(ProcessAllocator):
    """Executors as SLURM batch jobs (see the module docstring)."""

    def __init__(self, conf: Config, partition: str | None = None) -> None:
        super().__init__(start_backoff=conf.start_backoff,
                         max_start_backoff=conf.max_start_backoff)
        if partition and conf.slurm_partition and partition != conf.slurm_partition:
            raise ConfigError(f"master slurm://{partition} names another partition than "
                              f"asyncspark.slurm.partition={conf.slurm_partition!r}")
        self.conf = conf
        self.partition: str | None = partition or conf.slurm_partition
        self.directives: list[str] = parse_directives(conf.slurm_directives)
        self.python: str = conf.slurm_python or sys.executable
        self.log_dir: str | None = conf.slurm_log_directory
        self.name: str = f"asyncspark-{uuid.uuid4().hex[:12]}"  # every job of this application
        self.jobs: SlurmJobs = SlurmJobs(self.name, poll_interval=conf.slurm_poll_interval,
                              cancel_timeout=conf.slurm_cancel_timeout)
        self.handles: dict[str, _Handle] = {}
        self._host: str | None = None
        self._closing = False
        self.local_root = _app_dir(conf.local_dir)  # the driver's, private

    # -- connection ----------------------------------------------------------------------

    async def connect(self) -> None:
        if self._host is None:
            self._host = await asyncio.to_thread(self._check)  # file system, DNS

    def _check(self) -> str:
        missing = [c for c in COMMANDS if shutil.which(c) is None]
        if missing:
            raise ConfigError(f"master {self.conf.master!r} needs SLURM's commands on PATH: "
                              f"{', '.join(missing)} not found")
        if self.log_dir is not None and not os.path.isdir(self.log_dir):
            raise ConfigError(f"asyncspark.slurm.logDirectory {self.log_dir!r} is not a "
                              "directory")
        # Where executors on other nodes reach the driver: asyncspark.rpc.host when set,
        # else this machine's name (never loopback).
        return self.conf.raw.get("asyncspark.rpc.host") or socket.getfqdn()

    def advertise_host(self) -> str:
        if self._host is None:
            raise RuntimeError("SlurmBackend.connect() first")
        return self._host

    async def start(self, driver_address: tuple[str, int], secret: str) -> None:
        await self.connect()
        await super().start(driver_address, secret)

    # -- processes -----------------------------------------------------------------------

    def _environment(self, executor_id: str, spec: ExecutorSpec) -> tuple[dict, list[str]]:
        from ...logs import LOG_LEVEL_ENV, effective_level

        extra = {
            "ASYNCSPARK_PYTHON": self.python,
            "ASYNCSPARK_UVLOOP": "1" if self.conf.use_uvloop else "0",
            # Executors import what the driver can import (a shared file system).
            "ASYNCSPARK_DRIVER_PATH": os.pathsep.join(p or os.getcwd() for p in sys.path),
            LOG_LEVEL_ENV: str(min(effective_level(), logging.INFO)),
            **spec.env,
        }
        scratch = self.conf.raw.get("spark.local.dir")
        if scratch:
            extra["ASYNCSPARK_SLURM_SCRATCH"] = scratch
        env = executor_environment(
            os.environ, driver=self.driver, secret=self.secret,  # type: ignore[arg-type]
            executor_id=executor_id, bind_host="", local_dir="", parent_pid=None, extra=extra)
        for key in (BIND_HOST_ENV, LOCAL_DIR_ENV):  # the job script sets them on its node
            env.pop(key, None)
        return env, exported_names(env, [*_EXPORTED, LOG_LEVEL_ENV, *spec.env])

    async def _spawn(self, executor_id: str, spec: ExecutorSpec):
        assert self.driver is not None, "start() first"
        env, export = self._environment(executor_id, spec)
        output = (os.path.join(self.log_dir, f"{self.name}-%j.out") if self.log_dir
                  else "/dev/null")
        options = sbatch_options(
            cores=spec.cores, memory=spec.memory, partition=self.partition,
            account=self.conf.slurm_account, time_limit=self.conf.slurm_time_limit,
            output=output)
        job = await self.jobs.submit(job_script(self.name, self.directives), options, env,
                                     export, executor_id)
        log.info("executor %s is SLURM job %s", executor_id, job.job_id)
        handle = _Handle(executor_id, job)
        self.handles[executor_id] = handle
        try:
            row: JobRow = await job.announced
        except BaseException:  # failed, or stopped while it waited in the queue
            self.handles.pop(executor_id, None)
            await self._cancel_and_wait(job)
            raise
        return handle, row.host, row.pid

    async def _cancel_and_wait(self, job) -> None:
        try:
            await self.jobs.cancel(job)
        except SlurmError as exc:
            log.warning("cancelling SLURM job %s: %s", job.job_id, exc)
        bound = 3 * self.jobs.cancel_timeout + 10.0
        try:
            await asyncio.wait_for(asyncio.shield(job.ended), bound)
        except TimeoutError:
            log.warning("SLURM job %s did not end within %.0fs of scancel", job.job_id, bound)

    async def _wait(self, handle: _Handle) -> tuple[int | None, bool, str]:
        job = handle.job
        try:
            if not job.ended.done() and job.cancelled_at is None:
                try:  # the driver has been told of it (Launched): the executor may start
                    await self.jobs.go(job)
                except SlurmError as exc:  # ended or cancelled meanwhile: its state tells
                    (log.debug if job.cancelled_at is not None else log.warning)(
                        "starting the executor of SLURM job %s: %s", job.job_id, exc)
            row, host_lost, how = await job.ended
        finally:
            self.handles.pop(handle.executor_id, None)
        code = wait_status_to_code(row.status)
        where = f"SLURM job {job.job_id}" + (f" on {row.node}" if row.node else "")
        if not how:
            how = _STATES.get(row.state) or (
                f"ended {row.state}" + (f": its executor {describe_exit(code)}"
                                        if code is not None else ""))
        return code, host_lost, f"({where}) {how}"

    async def _terminate(self, handle: _Handle) -> None:
        job = handle.job
        if self._closing and not job.ended.done():  # told to stop: give it a moment
            try:
                await asyncio.wait_for(asyncio.shield(job.ended), _STOP_GRACE_S)
                return
            except TimeoutError:
                pass
        await self.jobs.cancel(job)

    async def close(self) -> None:
        self._closing = True
        await super().close()

    async def _release(self) -> None:
        await self.jobs.close()
        await asyncio.to_thread(shutil.rmtree, self.local_root, True)

    def release_now(self) -> None:
        """Synchronously (interpreter exit, SIGTERM, ``stop()``'s last step): cancel every
        job not known to have ended and remove the driver's scratch directory."""
        self._closed = True
        self.jobs.cancel_all_now()
        shutil.rmtree(self.local_root, ignore_errors=True)
