"""Whether the edge TLS an agent's hello asks for can be configured: a known mode, the SDS
file's absolute path (files), the names to certify (mesh-ca). Pure; the hello check refuses a
stream whose hello fails it, naming the field, before anything is configured."""

from __future__ import annotations

from meshline.edge_tls import EdgeTlsMode, edge_names, edge_tls_mode
from meshline.v1 import agent_pb2

# The SANs one edge certificate may carry (an agent's --host and its --tls-name flags).
MAX_EDGE_NAMES = 32


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
