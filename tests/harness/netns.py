"""A second "host" for tests: a Linux network namespace joined to this one by a veth pair.

    with network_namespace() as ns:
        agent = ns.process("agent", [...], log_dir)   # runs inside, via `ip netns exec`
        ns.listening()                                # its listening TCP sockets (ss)

The namespace has its own loopback (up) and one interface with `inner_address` (10.77.N.2/24);
this side of the pair has `host_address` (10.77.N.1/24). Processes inside see nothing of this
host's loopback, and this host reaches them only at `inner_address`: what another machine on the
network would see. Names are unique per run (several runs can share the machine) and everything
is removed at the end, also when the block fails. Needs root (CAP_NET_ADMIN), as in CI.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import random
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.harness.processes import ManagedProcess

SUBNET_PREFIX = "10.77"  # 10.77.N.0/24, one N per namespace
NAME_PREFIX = "meshline-test"
# One allocation at a time on this machine: two runs must not pick the same subnet.
_LOCK_PATH = Path(tempfile.gettempdir()) / "meshline-netns.lock"
_NAME = re.compile(rf"^{NAME_PREFIX}-(\d+)-[0-9a-f]+$")
_PIDS = re.compile(r"pid=(\d+)")


@dataclass(frozen=True)
class ListeningSocket:
    """One listening TCP socket as `ss -ltnpH` shows it."""

    host: str  # "0.0.0.0", "::" or "*" for a wildcard
    port: int
    pids: frozenset[int] = frozenset()

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def wildcard(self) -> bool:
        return self.host in ("*", "0.0.0.0", "::")


def parse_listening(text: str) -> list[ListeningSocket]:
    """`ss -ltnpH` lines: state, recv-q, send-q, local address:port, peer, process.

    Local addresses read `127.0.0.1:80`, `[::1]:80`, `*:80`, `[::ffff:10.0.0.1]:80`, or with
    an interface `127.0.0.53%lo:53`.
    """
    sockets = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        host, _, port = fields[3].rpartition(":")
        host = host.strip("[]").split("%", 1)[0]
        if host.startswith("::ffff:"):  # an IPv4 address on an IPv6 socket
            host = host.removeprefix("::ffff:")
        pids = frozenset(int(p) for p in _PIDS.findall(" ".join(fields[5:])))
        sockets.append(ListeningSocket(host, int(port), pids))
    return sockets


def listening_sockets(netns: str | None = None) -> list[ListeningSocket]:
    """Listening TCP sockets of this host, or of network namespace `netns`."""
    command = ["ss", "-ltnpH"]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    return parse_listening(_run(command).stdout)


@dataclass(frozen=True)
class Netns:
    name: str
    host_veth: str
    inner_veth: str
    host_address: str  # this side: what processes inside connect to
    inner_address: str  # inside: what this host (or any other) connects to

    def command(self, args: Sequence[str]) -> list[str]:
        """`args` run inside the namespace (`ip netns exec` execs them: same pid, same group)."""
        return ["ip", "netns", "exec", self.name, *args]

    def process(
        self,
        name: str,
        args: Sequence[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        """A ManagedProcess inside the namespace; the caller stops it, as any other."""
        return ManagedProcess(name, self.command(args), log_dir, env)

    def run(self, args: Sequence[str], timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace and return its output (it must succeed)."""
        return _run(self.command(args), timeout_s)

    def listening(self) -> list[ListeningSocket]:
        return listening_sockets(self.name)


@contextmanager
def network_namespace() -> Iterator[Netns]:
    """Create a namespace with a veth pair and loopback up; remove all of it at the end."""
    _remove_stale()
    token = secrets.token_hex(4)
    with open(_LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        subnet = _free_subnet()
        ns = Netns(
            name=f"{NAME_PREFIX}-{os.getpid()}-{token}",
            host_veth=f"mlh{token}",
            inner_veth=f"mln{token}",
            host_address=f"{subnet}.1",
            inner_address=f"{subnet}.2",
        )
        try:
            _create(ns)
        except BaseException:
            _remove(ns)
            raise
    try:
        yield ns
    finally:
        _remove(ns)


def _create(ns: Netns) -> None:
    steps = [
        ["ip", "netns", "add", ns.name],
        ["ip", "link", "add", ns.host_veth, "type", "veth", "peer", "name", ns.inner_veth],
        ["ip", "link", "set", ns.inner_veth, "netns", ns.name],
        ["ip", "addr", "add", f"{ns.host_address}/24", "dev", ns.host_veth],
        ["ip", "link", "set", ns.host_veth, "up"],
        ["ip", "-n", ns.name, "addr", "add", f"{ns.inner_address}/24", "dev", ns.inner_veth],
        ["ip", "-n", ns.name, "link", "set", ns.inner_veth, "up"],
        ["ip", "-n", ns.name, "link", "set", "lo", "up"],
    ]
    for step in steps:
        _run(step)


def _remove(ns: Netns) -> None:
    """Deleting either end of a veth pair deletes both; the namespace goes with its name."""
    subprocess.run(["ip", "link", "del", ns.host_veth], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)


def _free_subnet() -> str:
    """A 10.77.N that no interface of this host uses (every test namespace's host side has one)."""
    shown = _run(["ip", "-o", "-4", "addr", "show"]).stdout
    taken = set(re.findall(rf"inet {re.escape(SUBNET_PREFIX)}\.(\d+)\.", shown))
    free = [n for n in range(256) if str(n) not in taken]
    if not free:
        raise RuntimeError(f"every {SUBNET_PREFIX}.N.0/24 subnet is in use on this host")
    return f"{SUBNET_PREFIX}.{random.choice(free)}"


def _remove_stale() -> None:
    """Namespaces of test runs that died without cleaning up (killed): their process is gone."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listed.stdout.splitlines():
        name = line.split(" ", 1)[0]
        found = _NAME.match(name)
        if found and not _alive(int(found.group(1))):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(args: Sequence[str], timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        hint = " (network namespaces need root: CAP_NET_ADMIN)" if os.geteuid() != 0 else ""
        raise RuntimeError(
            f"{' '.join(args)} failed with {result.returncode}: {result.stderr.strip()}{hint}"
        )
    return result
