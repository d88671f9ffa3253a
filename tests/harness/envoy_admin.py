"""Read a real Envoy's admin `/clusters` (plain text) as tests and benchmarks need it."""

from __future__ import annotations

import urllib.request

HostStats = dict[str, str]  # stat name (hostname, health_flags, rq_active, weight, ...) → value


def read_clusters(admin: str, timeout_s: float = 5.0) -> dict[tuple[str, str], HostStats]:
    """(cluster, host address) → that host's stats, from `http://{admin}/clusters`.

    Host lines read `{cluster}::{address}::{stat}::{value}`; cluster-wide lines have no address
    and are left out.
    """
    with urllib.request.urlopen(f"http://{admin}/clusters", timeout=timeout_s) as response:
        lines = response.read().decode().splitlines()
    hosts: dict[tuple[str, str], HostStats] = {}
    for line in lines:
        parts = line.split("::")
        if len(parts) == 4 and ":" in parts[1]:
            hosts.setdefault((parts[0], parts[1]), {})[parts[2]] = parts[3]
    return hosts
