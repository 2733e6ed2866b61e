"""SLURM's command line, as the SLURM backend (``slurm.py``) uses it: the executor job
script, the ``sbatch`` options, ``squeue``'s answer parsed, and ``SlurmJobs``, which
submits, polls and cancels one application's jobs.

Every SLURM command runs as an asyncio subprocess (never blocking the event loop), as
dask-jobqueue drives its job queue: ``sbatch --parsable`` submits (the script on its
standard input, so no script file exists on the driver's disk), one ``squeue`` per poll
answers for all of the application's jobs (found by their common job name), ``scancel``
cancels. A job ``squeue`` no longer lists (older than the controller's ``MinJobAge``) is
asked of ``sacct`` where accounting is on.

The job script starts ``python -m asyncspark.executor`` only when the driver says so
(``SIGUSR1`` to the batch shell, ``scancel --batch --signal=USR1``): first it makes the
executor's private scratch directory on the node, forks the executor-to-be and publishes
its process id and the node's address (``NodeAddr``) in the job's ``Comment``, which the
driver reads from ``squeue``. So the driver knows which process will register, and where,
before it does (``ExecutorManager`` accepts only a registration whose executor id and
process id it was told of). The shell waits for the executor, removes the scratch
directory and exits with the executor's status (a signal ``n`` as ``128 + n``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["JobRow", "SlurmError", "SlurmJobs", "job_script", "parse_directives",
           "parse_squeue", "wait_status_to_code"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

COMMENT_TAG = "asyncspark-executor"
# squeue's fields, '|'-separated (no padding without a width): the comment is last but one
# so that a stray '|' in a foreign comment cannot shift the others.
SQUEUE_FORMAT = "JobID:|,State:|,NodeList:|,exit_code:|,Reason:|,Comment:|"
# States in which a job's processes may still run (squeue's long names).
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                           "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING",
                           "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"})
_STARTED_STATES = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING"})

_SCRIPT = r"""#!/bin/sh
#SBATCH --job-name={name}
{directives}
# An asyncspark executor (asyncspark/scheduler/backends/slurm_jobs.py): its secret and
# driver address are in the environment, never here.
addr=${{ASYNCSPARK_BIND_HOST:-$(scontrol -o show node "$SLURMD_NODENAME" 2>/dev/null \
    | sed -n 's/.* NodeAddr=\([^ ]*\).*/\1/p')}}
[ -n "$addr" ] || addr=$(hostname)
base=${{ASYNCSPARK_SLURM_SCRATCH:-${{TMPDIR:-/tmp}}}}
umask 077
mkdir -p "$base" && root=$(mktemp -d "$base/asyncspark-slurm-$SLURM_JOB_ID-XXXXXX") \
    || exit 97
export ASYNCSPARK_BIND_HOST="$addr"
export ASYNCSPARK_LOCAL_DIR="$root/executor-$ASYNCSPARK_EXECUTOR_ID"
export ASYNCSPARK_PARENT_PID=$$
mkdir -m 700 "$ASYNCSPARK_LOCAL_DIR" || {{ rm -rf "$root"; exit 97; }}
child=
trap ': > "$root/go"' USR1
trap '[ -n "$child" ] && kill -KILL "$child" 2>/dev/null' TERM
(
    trap - USR1 TERM
    while [ ! -e "$root/go" ]; do sleep 0.05; done
    exec "$ASYNCSPARK_PYTHON" -m asyncspark.executor
) &
child=$!
if ! scontrol update JobId="$SLURM_JOB_ID" Comment="{tag} $child $addr"; then
    kill -KILL "$child"; rm -rf "$root"; exit 98
fi
code=0
while :; do
    wait "$child"; code=$?
    kill -0 "$child" 2>/dev/null || break
done
rm -rf "$root"
exit "$code"
"""


class SlurmError(RuntimeError):
    """A SLURM command failed (its name, exit code and error output)."""


def parse_directives(text: str | None) -> list[str]:
    """``asyncspark.slurm.directives``: sbatch options, one per line or ';'-separated,
    each starting with '-' (``#SBATCH`` may be written in front)."""
    out = []
    for part in re.split(r"[;\n]", text or ""):
        part = part.strip()
        if part.startswith("#SBATCH"):
            part = part[len("#SBATCH"):].strip()
        if not part:
            continue
        if not part.startswith("-") or "\n" in part:
            raise ConfigError(f"asyncspark.slurm.directives: {part!r} is not an sbatch "
                              "option (e.g. --qos=short)")
        out.append(part)
    return out


def job_script(name: str, directives: list[str]) -> str:
    """The executor's job script (see the module docstring)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"bad job name {name!r}")
    lines = "\n".join(f"#SBATCH {d}" for d in directives)
    return _SCRIPT.format(name=name, directives=lines, tag=COMMENT_TAG)


def wait_status_to_code(status: int | None) -> int | None:
    """squeue's ``exit_code`` (a wait status) as ``Popen.returncode``: -n for signal n,
    the job script's ``128 + n`` (its executor killed by signal n) as -n too."""
    if status is None:
        return None
    if status & 0x7F:
        return -(status & 0x7F)
    code = (status >> 8) & 0xFF
    if 128 < code < 128 + 65:
        return -(code - 128)
    return code


@dataclass
class JobRow:
    """One job as squeue (or sacct) reports it."""

    job_id: str
    state: str
    node: str = ""
    status: int | None = None  # the wait status, once ended
    reason: str = ""
    pid: int = 0  # from the job's comment, once its executor is forked
    host: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def parse_squeue(text: str) -> dict[str, JobRow]:
    """squeue's ``-h -O SQUEUE_FORMAT`` output, by job id."""
    rows = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) < 6:
            continue
        job_id, state, node, status, reason = (f.strip() for f in fields[:5])
        comment = "|".join(fields[5:]).rstrip("|").strip()
        row = JobRow(job_id, state.split()[0].upper() if state else "UNKNOWN",
                     "" if node in ("", "(null)") else node,
                     int(status) if status.isdigit() else None,
                     "" if reason in ("None", "(null)") else reason)
        parts = comment.split()
        if len(parts) == 3 and parts[0] == COMMENT_TAG and parts[1].isdigit():
            row.pid, row.host = int(parts[1]), parts[2]
        rows[job_id] = row
    return rows


def _parse_sacct(job_id: str, text: str) -> JobRow | None:
    """``sacct -n -P -X -o State,ExitCode,NodeList``: ExitCode is ``code:signal``."""
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        state = fields[0].split()[0].upper()
        code, _, sig = fields[1].partition(":")
        status = None
        if code.isdigit() and sig.isdigit():
            status = int(sig) & 0x7F if int(sig) else (int(code) & 0xFF) << 8
        return JobRow(job_id, state, fields[2], status)
    return None


async def run_command(*argv: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
                      timeout: float = 60.0) -> str:  # noqa: ASYNC109 - a subprocess's bound
    """Run a SLURM command off the loop (an asyncio subprocess); its standard output, or
    ``SlurmError`` naming the command and what it said."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.PIPE if stdin is not None
            else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise SlurmError(f"{argv[0]}: cannot run it: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException as exc:  # cancelled or timed out: the command goes too
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if isinstance(exc, TimeoutError):
            raise SlurmError(f"{argv[0]} did not answer within {timeout:g}s") from None
        raise
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        msg = "; ".join(line.strip() for line in text.splitlines() if line.strip())
        raise SlurmError(f"{argv[0]} exited with code {proc.returncode}: {msg}")
    return out.decode(errors="replace")


class _Job:
    __slots__ = ("announced", "cancelled_at", "ended", "executor_id", "job_id", "missing",
                 "row")

    def __init__(self, job_id: str, executor_id: str) -> None:
        loop = asyncio.get_running_loop()
        self.job_id, self.executor_id = job_id, executor_id
        self.row = JobRow(job_id, "PENDING")
        self.announced: asyncio.Future[JobRow] = loop.create_future()  # pid and host known
        self.ended: asyncio.Future[tuple[JobRow, bool, str]] = loop.create_future()
        self.cancelled_at: float | None = None
        self.missing = 0  # polls in a row that did not list it


class SlurmJobs:
    """One application's executor jobs: ``submit``, ``cancel``, and a poller that
    resolves each job's ``announced`` and ``ended`` futures from squeue."""

    def __init__(self, name: str, *, poll_interval: float, cancel_timeout: float) -> None:
        self.name = name
        self.poll_interval: float = max(0.05, poll_interval)
        self.cancel_timeout = cancel_timeout
        self.jobs: dict[str, _Job] = {}
        self.polls: int = 0
        self._wake = asyncio.Event()
        self._poller: asyncio.Task | None = None
        self._closed = False

    async def submit(self, script: str, options: list[str], env: dict[str, str],
                     export: list[str], executor_id: str) -> _Job:
        out = await run_command("sbatch", "--parsable", f"--export={','.join(export)}",
                                *options, env=env, stdin=script.encode())
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmError(f"sbatch answered {out.strip()!r}, not a job id")
        job = _Job(job_id, executor_id)
        self.jobs[job_id] = job
        if self._poller is None and not self._closed:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll_loop(), name=f"asyncspark-slurm-poll-{self.name}")
        self._wake.set()
        return job

    async def go(self, job: _Job) -> None:
        """Tell the job's script to start its executor."""
        await run_command("scancel", "--batch", "--signal=USR1", job.job_id)

    async def cancel(self, job: _Job) -> None:
        if job.ended.done():
            return
        if job.cancelled_at is None:
            job.cancelled_at = time.monotonic()
        try:
            await run_command("scancel", job.job_id)
        finally:
            self._wake.set()

    def cancel_all_now(self) -> None:
        """Synchronously cancel every job not known to have ended (interpreter exit)."""
        import subprocess

        ids = [j.job_id for j in self.jobs.values() if not j.ended.done()]
        if ids:
            try:
                subprocess.run(["scancel", *ids], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("scancel %s: %s", " ".join(ids), exc)

    async def close(self) -> None:
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None

    # -- polling -------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        failures = 0
        while not self._closed:
            self._wake.clear()
            if any(not j.ended.done() for j in self.jobs.values()):
                try:
                    await self.poll()
                    failures = 0
                except SlurmError as exc:
                    failures += 1
                    log.warning("squeue failed (%d in a row): %s", failures, exc)
            busy = any(not j.ended.done() and (not j.announced.done() or j.cancelled_at)
                       for j in self.jobs.values())
            interval = self.poll_interval / 5 if busy else self.poll_interval
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
                await asyncio.sleep(min(0.05, interval))  # a burst of submits: one squeue
            except TimeoutError:
                pass

    async def poll(self) -> None:
        """One squeue for all jobs of this application; resolve what it tells."""
        out = await run_command("squeue", "--me", "-h", "-t", "all", f"--name={self.name}",
                                "-O", SQUEUE_FORMAT)
        self.polls += 1
        rows = parse_squeue(out)
        for job in list(self.jobs.values()):
            if job.ended.done():
                self.jobs.pop(job.job_id, None)
                continue
            row = rows.get(job.job_id)
            if row is None:
                job.missing += 1
                if job.missing >= 2:  # purged from the controller: ask accounting
                    row = await self._sacct(job.job_id)
                    if row is None:
                        self._end(job, JobRow(job.job_id, "UNKNOWN", job.row.node), False,
                                  "is no longer known to squeue or sacct")
                        continue
                else:
                    continue
            job.missing = 0
            await self._update(job, row)

    async def _update(self, job: _Job, row: JobRow) -> None:
        if not row.pid and job.row.pid:
            row.pid, row.host = job.row.pid, job.row.host
        job.row = row
        if row.pid and row.state in _STARTED_STATES and not job.announced.done():
            job.announced.set_result(row)
        if not row.active:
            self._end(job, row, row.state == "NODE_FAIL", "")
            return
        if job.cancelled_at is not None and row.node:
            waited = time.monotonic() - job.cancelled_at
            if waited > self.cancel_timeout:
                down = await self._node_down(row.node)
                if down:
                    self._end(job, row, True, f"was cancelled, and its node {row.node} "
                                              f"is {down}")
                elif waited > 3 * self.cancel_timeout:
                    log.warning("SLURM job %s (node %s) did not end %.0fs after scancel; "
                                "given up", job.job_id, row.node, waited)
                    self._end(job, row, False, f"did not end {waited:.0f}s after scancel")

    def _end(self, job: _Job, row: JobRow, host_lost: bool, how: str) -> None:
        if not job.announced.done():
            job.announced.set_exception(SlurmError(
                f"SLURM job {job.job_id} ended ({row.state}"
                f"{', ' + row.reason if row.reason else ''}) before its executor started"))
            job.announced.exception()  # retrieved: a cancelled start may not wait for it
        if not job.ended.done():
            job.ended.set_result((row, host_lost, how))
        self.jobs.pop(job.job_id, None)

    async def _sacct(self, job_id: str) -> JobRow | None:
        try:
            out = await run_command("sacct", "-n", "-P", "-X", "-j", job_id,
                                    "-o", "State,ExitCode,NodeList", timeout=20)
        except SlurmError as exc:
            log.debug("sacct -j %s: %s", job_id, exc)
            return None
        return _parse_sacct(job_id, out)

    async def _node_down(self, node: str) -> str:
        """Why ``node`` cannot run anything ("DOWN", "NOT_RESPONDING"...), or ''."""
        try:
            out = await run_command("scontrol", "-o", "show", "node", node, timeout=20)
        except SlurmError as exc:
            return f"unknown to scontrol ({exc})"
        m = re.search(r"\bState=(\S+)", out)
        state = m.group(1) if m else ""
        bad = [s for s in ("DOWN", "NOT_RESPONDING", "FAIL") if s in state] or \
            (["NOT_RESPONDING"] if state.endswith("*") else [])
        return state if bad else ""


def sbatch_options(*, cores: int, memory: int | None, partition: str | None,
                   account: str | None, time_limit: str | None, output: str) -> list[str]:
    """The sbatch options of one executor's job (the directives go in its script)."""
    opts = ["--nodes=1", "--ntasks=1", f"--cpus-per-task={cores}", f"--output={output}",
            "--no-requeue"]
    if memory:
        opts.append(f"--mem={max(1, -(-memory // (1 << 20)))}M")
    for flag, value in (("--partition", partition), ("--account", account),
                        ("--time", time_limit)):
        if value:
            opts.append(f"{flag}={value}")
    return opts


def exported_names(env: dict[str, str], wanted: list[str]) -> list[str]:
    """The names of ``wanted`` set in ``env`` (sbatch --export takes names only; a name
    with a ',' or '=' could not be passed)."""
    out = []
    for name in wanted:
        if name in env and name not in out:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ConfigError(f"executor environment variable {name!r} cannot be "
                                  "exported to a SLURM job")
            out.append(name)
    return out
