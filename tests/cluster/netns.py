"""Network namespaces for the Ray cluster tests: worker nodes each in a namespace of
their own, joined to the test process's namespace by a veth pair on a bridge.

``Netns.make(n)`` creates, by names carrying a random tag of this run, a bridge with the
first address of a private test subnet (the head node and the driver use it), and ``n``
namespaces, each with its loopback up and one end of a veth pair holding the next
address (the other end on the bridge). Executors started in them reach the driver only
through the bridge: an executor advertising a loopback address cannot be reached, so a
leak fails the tests. ``remove()`` deletes what ``make`` created, by those names, and
nothing else. Needs root and iproute2 (``.ci/run`` installs iproute2 when missing);
``available()`` says why not when it cannot work.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess

__all__ = ["Netns", "available"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def available() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2 is not installed)"
    probe = f"asyncspark-probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> str:
    """A 10.213.X /24 no interface here has an address in (concurrent runs differ)."""
    used = _ip("-4", "-o", "addr", "show").stdout
    for _ in range(64):
        subnet = f"10.213.{secrets.randbelow(256)}"
        if f" {subnet}." not in used:
            return subnet
    raise RuntimeError("no free 10.213.X.0/24 test subnet")


class Netns:
    """A bridge and namespaces made for one test module (see the module docstring)."""

    def __init__(self, subnet: str | None = None) -> None:
        self.tag = secrets.token_hex(2)  # interface names: at most 15 characters
        self.subnet = subnet or _free_subnet()
        self.bridge = f"asbr{self.tag}"
        self.bridge_ip = f"{self.subnet}.1"
        self.namespaces: list[str] = []
        self.links: list[str] = []  # root-side veth ends
        self.ips: list[str] = []

    def make(self, n: int) -> Netns:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self.links.append(self.bridge)
            _ip("addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(n):
                ns = f"asyncspark-{self.tag}-w{i}"
                host, peer = f"asv{self.tag}{i}", f"asp{self.tag}{i}"
                ip = f"{self.subnet}.{11 + i}"
                _ip("netns", "add", ns)
                self.namespaces.append(ns)
                _ip("link", "add", host, "type", "veth", "peer", "name", peer)
                self.links.append(host)
                _ip("link", "set", peer, "netns", ns)
                _ip("link", "set", host, "master", self.bridge)
                _ip("link", "set", host, "up")
                _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", peer)
                _ip("-n", ns, "link", "set", peer, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                self.ips.append(ip)
        except BaseException:
            self.remove()
            raise
        return self

    def exec_prefix(self, ip: str) -> list[str]:
        """The command prefix that runs a program in the namespace holding ``ip``."""
        return ["ip", "netns", "exec", self.namespaces[self.ips.index(ip)]]

    def remove(self) -> None:
        """Delete the namespaces (their veth ends go with them), the root-side veth ends
        and the bridge: only what ``make`` created, by name."""
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)
        for link in reversed(self.links):
            if _ip("link", "show", link, check=False).returncode == 0:
                _ip("link", "del", link, check=False)
        self.namespaces, self.links, self.ips = [], [], []
