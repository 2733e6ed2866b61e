"""A real multi-node Ray cluster on this machine, for the cluster tests.

Each node is ``ray start --block`` on its own loopback address (127.0.0.x with x >= 2:
Ray rewrites 127.0.0.1 and localhost), started with ``setsid`` so that it is a process
group of its own, and stopped by that recorded group id (never by name). Token
authentication is on, as ``ray start --head`` has it by default from Ray 2.6x: every node
and the driver (this process) share one ``RAY_AUTH_TOKEN`` with ``RAY_AUTH_MODE=token``.
Ray reads the mode when first imported, so the driver's
token is put in this process's environment when this module is imported, before ray.
Dashboard and usage stats are off. Worker nodes have ``--num-cpus=1`` and one unit of
the ``asyncspark_executor`` resource per CPU, so executors land only there (the head has
``head_cpus`` of both, none by default).
"""

from __future__ import annotations

import os
import secrets

# Ray reads RAY_AUTH_MODE when it is first imported: the token every test cluster's nodes
# and this driver share is set here, and the test modules import this module before ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RESOURCE = "asyncspark_executor"
# Ports Ray binds unless told otherwise (the dashboard even with --include-dashboard=false,
# its agent, the client server, metrics, the worker port range): several clusters on one
# machine (CI, concurrent sessions) would collide on them.
RAY_DEFAULT_PORTS = frozenset({6379, 8265, 8076, 10001, 52365, 44217, 44227})
RAY_WORKER_PORT_RANGE = range(10002, 20000)


def free_port(ip: str) -> int:
    """A port the kernel picks as free on ``ip`` now (for a Ray option that would
    otherwise take a fixed default), never one of Ray's defaults (44217 and 44227 lie
    in the kernel's ephemeral range: a pick may land on them)."""
    while True:
        with socket.socket() as s:
            try:
                s.bind((ip, 0))
            except OSError:  # not an address of this namespace (a node in another one)
                s.bind(("", 0))
            port = s.getsockname()[1]
        if port not in RAY_DEFAULT_PORTS:
            return port


RESERVED_PORTS = "/proc/sys/net/ipv4/ip_local_reserved_ports"


def reserve_default_ports() -> str | None:
    """Keep the kernel from picking Ray's default ports for anyone (port 0 binds) while a
    test cluster runs, so a listener on one of them can only be a fixed default: adds
    them to this namespace's ``ip_local_reserved_ports`` and returns the previous value
    for :func:`restore_reserved_ports` (None when the file is not writable: not root)."""
    try:
        with open(RESERVED_PORTS) as f:
            before = f.read().strip()
        ours = {str(p) for p in RAY_DEFAULT_PORTS}
        with open(RESERVED_PORTS, "w") as f:
            f.write(",".join(filter(None, [before, *sorted(ours)])))
    except OSError:
        return None
    return before


def restore_reserved_ports(before: str | None) -> None:
    if before is None:
        return
    try:
        with open(RESERVED_PORTS, "w") as f:
            f.write(before or "\n")
    except OSError:
        pass
_RAY = [sys.executable, "-m", "ray.scripts.scripts"]


def _ray_cli() -> list[str]:
    exe = shutil.which("ray", path=os.path.dirname(sys.executable))
    return [exe] if exe else _RAY


class RayCluster:
    """``start()`` a head on ``head_ip`` and a worker node on each of ``worker_ips``."""

    def __init__(self, head_ip: str, worker_ips: list[str], *, head_cpus: int = 0,
                 prefix=None) -> None:
        self.head_ip, self.worker_ips, self.head_cpus = head_ip, worker_ips, head_cpus
        # prefix(ip): the command prefix a node's `ray start` runs under (netns.py)
        self.prefix = prefix or (lambda ip: [])
        # One token for the session, set before ray is imported (above).
        self.token = os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(16)
        self.tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: socket paths
        self.nodes: dict[str, subprocess.Popen] = {}  # ip -> `ray start --block`
        self.killed: set[str] = set()
        self.address = ""
        self._saved_env: dict[str, str | None] = {}
        self.chosen_ports: dict[str, dict[str, int]] = {}  # ip -> option -> port given
        self.reserved_before: str | None = None  # ip_local_reserved_ports before start()

    @property
    def ips(self) -> set[str]:
        return {self.head_ip, *self.worker_ips}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.auth_env())
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, env.get("PYTHONPATH", "")) if p)
        return env

    def auth_env(self) -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def node_tmp(self, ip: str) -> str:
        """The node's TMPDIR: its "disk" (executor scratch directories go there)."""
        return os.path.join(self.tmp, f"tmp-{ip}")

    def _port_args(self, ip: str, head: bool) -> list[str]:
        """Every port Ray would take a fixed default for, chosen free here; workers on
        ports the kernel picks (``--min/max-worker-port=0``)."""
        options = ["dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                   "metrics-export-port", "runtime-env-agent-port"]
        if head:
            options.append("dashboard-port")  # the Ray client server needs ray[client]: off
        ports = {opt: free_port(ip) for opt in options}
        self.chosen_ports[ip] = ports
        args = [f"--{opt}={port}" for opt, port in ports.items()]
        args += ["--min-worker-port=0", "--max-worker-port=0"]
        if head:
            args.append(f"--dashboard-host={ip}")
        return args

    def _start_node(self, ip: str, args: list[str]) -> None:
        log = open(os.path.join(self.tmp, f"node-{ip}.log"), "wb")
        env = self.env()
        env["TMPDIR"] = self.node_tmp(ip)
        os.makedirs(env["TMPDIR"])
        proc = subprocess.Popen(
            ["setsid", *self.prefix(ip), *_ray_cli(), "start", "--block", f"--node-ip-address={ip}",
             "--disable-usage-stats", *self._port_args(ip, "--head" in args), *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.nodes[ip] = proc

    def start(self, timeout: float = 60.0) -> RayCluster:
        self.reserved_before = reserve_default_ports()
        for key, value in self.auth_env().items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        head = ["--head", "--port=0", f"--num-cpus={self.head_cpus}",
                "--include-dashboard=false", f"--temp-dir={self.tmp}"]
        if self.head_cpus:
            head.append(f'--resources={{"{RESOURCE}": {self.head_cpus}}}')
        self._start_node(self.head_ip, head)
        self.address = self._head_address(timeout)
        self._wait_nodes(1, timeout)
        for i, ip in enumerate(self.worker_ips):  # one at a time: a loaded GCS times out
            self._start_node(ip, [f"--address={self.address}", "--num-cpus=1",
                                  f'--resources={{"{RESOURCE}": 1}}',
                                  f"--temp-dir={self.tmp}"])
            self._wait_nodes(2 + i, timeout)
        return self

    def _head_address(self, timeout: float) -> str:
        """The GCS address the head chose (``--port=0``), from its log."""
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"ray start --address='([^']+)'", self.log(self.head_ip))
            if m:
                return m.group(1)
            if self.nodes[self.head_ip].poll() is not None:
                raise RuntimeError(f"ray head exited: {self.log(self.head_ip)[-2000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"ray head not up within {timeout}s")

    def _wait_nodes(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ip, proc in self.nodes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"ray node {ip} exited: {self.log(ip)[-2000:]}")
            if self.alive_nodes() >= n:
                return
            time.sleep(1.0)
        raise TimeoutError(f"{n} ray nodes not up within {timeout}s")

    def alive_nodes(self) -> int:
        out = subprocess.run(
            [sys.executable, "-c",
             "import ray,sys; ray.init(address=sys.argv[1], _node_ip_address=sys.argv[2],"
             " logging_level='error', log_to_driver=False);"
             "print(sum(1 for n in ray.nodes() if n['Alive']))", self.address, self.head_ip],
            env=self.env(), capture_output=True, text=True, timeout=60)
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def log(self, ip: str) -> str:
        with open(os.path.join(self.tmp, f"node-{ip}.log"), errors="replace") as f:
            return f.read()

    def kill_node(self, ip: str) -> None:
        """SIGKILL a node's whole process group (its raylet, workers, actors)."""
        proc = self.nodes[ip]
        self.killed.add(ip)
        os.killpg(proc.pid, signal.SIGKILL)  # setsid: the group id is its pid
        proc.wait()

    def stop(self) -> None:
        """Stop every node by its process group (SIGKILL: nothing of a test cluster needs
        to be kept), then wait until no member of those groups is left."""
        for proc in self.nodes.values():
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        for pgid in [p.pid for p in self.nodes.values()]:
            _wait_group_gone(pgid, 10.0)
        restore_reserved_ports(self.reserved_before)
        self.reserved_before = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.tmp, ignore_errors=True)


    def listening(self) -> set[tuple[str, int]]:
        """(address, port) of every TCP socket a process of the cluster listens on."""
        pids = {pid for proc in self.nodes.values() for pid in group_members(proc.pid)}
        return listening_sockets(pids)


def listening_sockets(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of the listening TCP sockets of processes ``pids`` (from /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            addr, port = cols[1].split(":")
            raw = bytes.fromhex(addr)
            if width == 4:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                ip = socket.inet_ntop(socket.AF_INET6, b"".join(
                    raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.add((ip, int(port, 16)))
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        _signal_group(pgid, signal.SIGKILL)
        time.sleep(0.1)
