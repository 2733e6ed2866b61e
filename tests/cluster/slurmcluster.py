"""A real SLURM cluster on this machine, for the cluster tests (Debian's ``slurm-wlm`` and
``munge``; ``.ci/run`` installs them).

One ``munged`` with a key and socket of its own, one ``slurmctld`` and one ``slurmd`` per
node. Debian's slurmd is built without ``--enable-multiple-slurmd``, but two slurmd on
one host still work when each is started as ``slurmd -N NAME`` for a node of its own
``Port``, ``SlurmdSpoolDir`` (``%n``), pid and log file; each node has its own loopback
``NodeAddr`` (127.0.0.21, .22), so executors bind and advertise distinct addresses. The
configuration, state, spool and log directories are in one temporary directory; the
ports are chosen free. Every daemon is started with ``setsid`` and stopped by its
recorded process group (never by name); a job's processes (its ``slurmstepd``, the job
script, the executor) are a session of their own, found and stopped by session id.
``SLURM_CONF`` points this process (and so the SLURM backend's commands) at the cluster
while it runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [c for c in (*DAEMONS, *COMMANDS)
              if shutil.which(c, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]
    if absent:
        return (f"SLURM is not installed ({', '.join(absent)} missing: apt-get install "
                "slurm-wlm munge; .ci/run does)")
    if os.geteuid() != 0:
        return "the SLURM test cluster runs its daemons as root (CI runs as root)"
    return None


def _which(cmd: str) -> str:
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or cmd


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("0.0.0.0", 0))  # the daemons listen on every address
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stat(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()


def members(*, pgid: int | None = None, sid: int | None = None) -> list[int]:
    """Live (not zombie) processes of a process group or a session."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields is None or fields[0] in (b"Z", b"X"):
            continue
        if (pgid is not None and int(fields[2]) == pgid) or \
                (sid is not None and int(fields[3]) == sid):
            out.append(int(entry))
    return out


def session_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class SlurmCluster:
    """``start()`` a controller on ``ctl_ip`` and a slurmd per ``nodes`` (name -> address)."""

    def __init__(self, nodes: dict[str, str], *, ctl_ip: str = "127.0.0.20", cpus: int = 1,
                 slurmd_timeout: int = 10) -> None:
        self.nodes, self.ctl_ip, self.cpus = dict(nodes), ctl_ip, cpus
        self.slurmd_timeout = slurmd_timeout
        self.tmp = tempfile.mkdtemp(prefix="slurm-", dir="/tmp")
        os.chmod(self.tmp, 0o755)  # munge's socket directory must be reachable
        self.conf_path = os.path.join(self.tmp, "slurm.conf")
        self.procs: dict[str, subprocess.Popen] = {}  # "munged", "slurmctld", node names
        self.partition = "asyncspark"
        self.killed: set[str] = set()  # nodes killed on purpose
        self._saved_conf: str | None = None
        self._conf_set = False
        self._ports: dict[str, int] = {}

    # -- start ---------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return os.path.join(self.tmp, *parts)

    def _spawn(self, key: str, argv: list[str]) -> None:
        log = open(self._path(f"{key}.out"), "wb")
        env = dict(os.environ, SLURM_CONF=self.conf_path)
        self.procs[key] = subprocess.Popen(["setsid", *argv], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def _write_conf(self) -> None:
        host = socket.gethostname().split(".")[0]
        ports = _free_ports(2 + len(self.nodes))
        self._ports = {"slurmctld": ports[0], "slurmd": ports[1]}
        lines = [
            "ClusterName=asyncspark",
            f"SlurmctldHost={host}({self.ctl_ip})",
            f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}",
            "AuthType=auth/munge", f"AuthInfo=socket={self._path('munge', 'socket')}",
            "CredType=cred/munge", "SlurmUser=root", "SlurmdUser=root",
            f"StateSaveLocation={self._path('ctld')}",
            f"SlurmdSpoolDir={self._path('spool-%n')}",
            f"SlurmctldPidFile={self._path('slurmctld.pid')}",
            f"SlurmdPidFile={self._path('slurmd-%n.pid')}",
            f"SlurmctldLogFile={self._path('slurmctld.log')}",
            f"SlurmdLogFile={self._path('slurmd-%n.log')}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "LogTimeFormat=iso8601_ms",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            # Batch jobs are scheduled at submission, not up to 3 s later (the default).
            "SchedulerType=sched/builtin", "SchedulerParameters=batch_sched_delay=0",
            "ReturnToService=2",
            f"SlurmdTimeout={self.slurmd_timeout}", "MinJobAge=120", "KillWait=2",
            "MessageTimeout=5", "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none", "MpiDefault=none",
            # A node's CPUs are the configured ones, whatever this machine has.
            "SlurmdParameters=config_overrides",
        ]
        for (name, addr), port in zip(self.nodes.items(), ports[2:], strict=True):
            self._ports[name] = port
            lines.append(f"NodeName={name} NodeAddr={addr} NodeHostname={host} Port={port} "
                         f"CPUs={self.cpus} State=UNKNOWN")
        lines.append(f"PartitionName={self.partition} Nodes={','.join(self.nodes)} "
                     "Default=YES MaxTime=INFINITE State=UP")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout: float = 30.0) -> SlurmCluster:
        os.mkdir(self._path("munge"), 0o755)
        os.mkdir(self._path("ctld"), 0o700)
        key = self._path("munge.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(os.urandom(1024))
        self._write_conf()
        m = self._path("munge")
        self._spawn("munged", [_which("munged"), "-F", "-f", f"--socket={m}/socket",
                               f"--key-file={key}", f"--pid-file={m}/pid",
                               f"--log-file={m}/log", f"--seed-file={m}/seed"])
        self._wait(lambda: os.path.exists(f"{m}/socket"), timeout, "munged")
        self._saved_conf = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = self.conf_path
        self._conf_set = True
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i"])
        self._wait(lambda: self._run("scontrol", "ping").returncode == 0
                   and "UP" in self._run("scontrol", "ping").stdout, timeout, "slurmctld")
        for name in self.nodes:
            self.start_node(name)
        self.wait_idle(list(self.nodes), timeout)
        return self

    def start_node(self, name: str) -> None:
        os.makedirs(self._path(f"spool-{name}"), exist_ok=True)
        self._spawn(name, [_which("slurmd"), "-D", "-N", name])

    def node_states(self) -> dict[str, str]:
        out = self._run("sinfo", "-h", "-N", "-o", "%N %T").stdout
        return dict(line.split(None, 1) for line in out.splitlines() if line.strip())

    def wait_idle(self, names: list[str], timeout: float = 30.0) -> None:
        """Until every node in ``names`` answers and may run jobs (not down, drained,
        failing or not responding)."""
        bad = ("down", "drain", "fail", "unknown", "future", "maint", "reboot", "inval")

        def up():
            states = self.node_states()
            return all(n in states and not states[n].endswith("*")
                       and not any(b in states[n] for b in bad) for n in names)
        try:
            self._wait(up, timeout, f"slurmd {', '.join(names)}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; node states {self.node_states()}") from None

    def _wait(self, cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for key, proc in self.procs.items():
                if proc.poll() is not None and key not in self.killed:
                    raise RuntimeError(f"{key} exited: {self.log(key)[-2000:]}")
            if cond():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not up within {timeout}s: "
                           + " | ".join(self.log(k)[-600:] for k in self.procs))

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([_which(argv[0]), *argv[1:]], capture_output=True, text=True,
                              env=dict(os.environ, SLURM_CONF=self.conf_path), timeout=30,
                              stdin=subprocess.DEVNULL)

    def log(self, key: str) -> str:
        try:
            with open(self._path(f"{key}.out"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- jobs ----------------------------------------------------------------------------

    def jobs(self, states: str = "all") -> list[tuple[str, str, str]]:
        """(job id, state, node list) of every job the controller knows."""
        out = self._run("squeue", "-h", "-t", states, "-O", "JobID:|,State:|,NodeList:|").stdout
        return [tuple(f.strip() for f in line.split("|")[:3])  # type: ignore[misc]
                for line in out.splitlines() if line.strip()]

    def active_jobs(self) -> list[tuple[str, str, str]]:
        return [j for j in self.jobs() if j[1] in ("PENDING", "RUNNING", "COMPLETING",
                                                  "CONFIGURING", "SUSPENDED")]

    def job_processes(self) -> list[int]:
        """Processes of this cluster's jobs still alive: those whose environment names
        this cluster's configuration (slurmstepd, job scripts, executors)."""
        out = []
        needle = f"SLURM_CONF={self.conf_path}".encode()
        daemons = {p.pid for p in self.procs.values()}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            fields = _stat(int(entry))
            if needle in env and fields is not None and fields[0] not in (b"Z", b"X") \
                    and int(fields[3]) not in daemons:
                out.append(int(entry))
        return out

    # -- failures ------------------------------------------------------------------------

    def kill_node(self, name: str, job_pids: list[int] = ()) -> None:
        """SIGKILL a node: its slurmd's process group and the sessions of its jobs
        (each holding a ``slurmstepd``, the job script and its executor), given by a
        process of each (the executors' pids)."""
        self.killed.add(name)
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)  # setsid: the group id is its pid
        proc.wait()
        for pid in job_pids:
            sid = session_of(pid)
            if sid is not None and sid > 1:
                _kill_all(members(sid=sid))

    def restart_node(self, name: str, timeout: float = 30.0) -> None:
        self.killed.discard(name)
        self.start_node(name)
        self.wait_idle([name], timeout)

    # -- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel every job, stop every daemon by its process group (SIGKILL), kill what
        is left of the jobs' sessions, restore ``SLURM_CONF``, remove the directory."""
        try:
            if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
                ids = [j[0] for j in self.active_jobs()]
                if ids:
                    self._run("scancel", *ids)
                deadline = time.monotonic() + 10
                while self.active_jobs() and time.monotonic() < deadline:
                    time.sleep(0.2)
        except (OSError, subprocess.SubprocessError):
            pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        leftovers = self.job_processes()
        for pid in leftovers:
            sid = session_of(pid)
            _kill_all(members(sid=sid) if sid and sid > 1 else [pid])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                any(members(pgid=p.pid) for p in self.procs.values()) or self.job_processes()):
            time.sleep(0.1)
        if self._conf_set and self._saved_conf is None:
            os.environ.pop("SLURM_CONF", None)
        elif self._conf_set:
            os.environ["SLURM_CONF"] = self._saved_conf  # type: ignore[assignment]
        shutil.rmtree(self.tmp, ignore_errors=True)
