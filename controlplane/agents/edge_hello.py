"""Whether the edge TLS an agent's hello asks for can be configured: a known mode, the SDS
file's absolute path (files), the names to certify (mesh-ca), none of them the control plane's
own. Pure; the hello check refuses a stream whose hello fails it, naming the field, before
anything is configured.

The names of an edge certificate are what the region's agent claims: the control plane cannot
know which hosts a region really serves. Edge certificates come from the edge CA, which nothing
that talks to the control plane trusts, so even a name of the control plane would not let a
region pose as it; refusing those names anyway keeps such a certificate from existing at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from meshline.edge_tls import EdgeTlsMode, edge_names, edge_tls_mode
from meshline.v1 import agent_pb2

# The SANs one edge certificate may carry (an agent's --host and its --tls-name flags).
MAX_EDGE_NAMES = 32
LOCALHOST = "localhost"


def edge_tls_problem(edge: agent_pb2.EdgeTls) -> str | None:
    """What is wrong with `edge` (None: nothing)."""
    try:
        mode = edge_tls_mode(edge.mode)
    except ValueError as exc:
        return f"edge_tls.mode: {exc}"
    if mode is None:
        if edge.sds_path or edge.names:
            return "edge_tls: sds_path and names need a mode ('mesh-ca' or 'files')"
        return None
    if mode is EdgeTlsMode.FILES:
        if not edge.sds_path.startswith("/"):
            return (
                f"edge_tls.sds_path {edge.sds_path!r}: mode 'files' needs the absolute path of "
                "the SDS file on the gateway's host"
            )
        return None
    if len(edge.names) > MAX_EDGE_NAMES:
        return f"edge_tls.names: {len(edge.names)} names, at most {MAX_EDGE_NAMES}"
    try:
        names = edge_names(edge.names)
    except ValueError as exc:
        return f"edge_tls.names: {exc}"
    if not names:
        return "edge_tls.names: mode 'mesh-ca' needs a DNS name or IP address clients dial"
    return None


def controlplane_names(hosts: Iterable[str]) -> frozenset[str]:
    """The names (as `edge_names` writes them) no edge certificate may carry: the control
    plane's listen hosts and advertised names. Loopback stays allowed: a loopback name reaches
    only the client's own host, and a region on the control plane's host (`meshline up`)
    serves its clients there too. An unspecified address names nothing. ValueError naming a
    host that is neither an IP address nor a DNS name."""
    return frozenset(_same_host(name) for name in edge_names(hosts) if not _loopback(name))


def claimed_controlplane_names(edge: agent_pb2.EdgeTls, reserved: frozenset[str]) -> str | None:
    """Why `edge` may not be certified because it names the control plane (None: it does
    not). Checked after `edge_tls_problem`: names it cannot read are its to refuse."""
    if edge.mode != EdgeTlsMode.MESH_CA.value or not reserved:
        return None
    try:
        names = edge_names(edge.names)
    except ValueError:
        return None
    claimed = [name for name in names if _same_host(name) in reserved]
    if not claimed:
        return None
    return (
        f"edge_tls.names: {', '.join(claimed)} "
        f"{'is a name' if len(claimed) == 1 else 'are names'} of the control plane, which no "
        "gateway's certificate may carry; drop it from the agent's --tls-name (or --host)"
    )


def _loopback(name: str) -> bool:
    if name == LOCALHOST or name.endswith(f".{LOCALHOST}"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _same_host(name: str) -> str:
    """An IPv4-mapped IPv6 address as the IPv4 address it names; other names as they are."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return name
