"""Edge TLS: how a region's gateway serves TLS to clients, in the words the agent (which asks
for it in its hello), the control plane (which configures Envoy's client listener) and the CLI
(which dials it) share.

Bottom layer, so no side retypes a mode or the name of the secret in the agent's SDS file.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from meshline.host_names import dialled_name

# In the control plane's state dir, beside the mesh CA's `ca.crt`: the certificate of the edge
# CA, which signs the certificates gateways serve clients (mode "mesh-ca"). Public: what clients
# of those gateways trust. Nothing that talks to the control plane or to the mesh trusts it.
EDGE_CA_CERT_FILE = "edge-ca.crt"


class EdgeTlsMode(StrEnum):
    """`AgentHello.edge_tls.mode` and `RegionStatus.edge_tls` ("" = plain text)."""

    # A server certificate made by the control plane and signed by its edge CA (never the mesh
    # CA: the name says where it comes from, the control plane of the mesh), over SDS on the ADS
    # stream, for the names clients dial (the gateway's --host and each --tls-name); renewed
    # like the peer ones.
    MESH_CA = "mesh-ca"
    # The user's certificate chain and key on the agent's host (--tls-cert/--tls-key), which
    # Envoy reads and watches through the SDS file the agent writes.
    FILES = "files"


def edge_tls_mode(text: str) -> EdgeTlsMode | None:
    """The mode `text` names; None for "" (plain text). ValueError naming the modes otherwise."""
    if not text:
        return None
    try:
        return EdgeTlsMode(text)
    except ValueError:
        modes = ", ".join(repr(m.value) for m in EdgeTlsMode)
        raise ValueError(f"edge TLS mode {text!r} is not one of {modes}") from None


# The one Secret in the SDS file an agent writes for mode "files": the client listener's TLS
# context asks for it by this name (its `sds_config` is that file's path).
FILES_SECRET = "meshline-edge-files"


def edge_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names a gateway's mesh-CA certificate is for: IP addresses and DNS names, in the
    order given, without repeats (DNS names lowercased, IPv6 without brackets). An unspecified
    address (0.0.0.0, ::) is no name a client dials: left out. ValueError naming the first
    name that is neither an IP address nor a DNS name."""
    found: dict[str, None] = {}
    for given in names:
        name = dialled_name(given)
        if name is not None:
            found[str(name)] = None
    return tuple(found)
