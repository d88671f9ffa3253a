"""The naming scheme of every resource a gateway's Envoy gets: the one place names are made.

The IR model applies it when a route is built (`DeploymentRoute`, `Backend`, `GatewayIR`
carry their names as fields); translate writes those names into Envoy resources, and what
reads Envoy's state or an agent's report about it finds the names in the IR (`ClusterIndex`).
Nothing parses a name back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from meshline.edge_tls import FILES_SECRET

LISTENER_NAME = "gateway"
ROUTE_CONFIG_NAME = "gateway"
STAT_PREFIX = "gateway"
# The peer listener: where other regions' gateways forward requests (mTLS), with its own
# route table (forwarded requests only).
PEER_LISTENER_NAME = "peer"
PEER_ROUTE_CONFIG_NAME = "peer"
PEER_STAT_PREFIX = "peer"
# The SDS secrets of a gateway: its mesh certificate with its key, and the CAs it trusts.
CERTIFICATE_SECRET = "meshline-gateway-certificate"
TRUSTED_CA_SECRET = "meshline-mesh-ca"
# Edge TLS: the certificate the public listener serves clients, from the mesh CA over SDS on the
# ADS stream, or from the SDS file an agent writes naming the user's files (fixed by the agent).
EDGE_CERTIFICATE_SECRET = "meshline-edge-certificate"
EDGE_FILES_SECRET = FILES_SECRET

# The listener's own HTTP filters (instances of Envoy filters, named by us): per-route configs
# are keyed by these names, so a route can switch each one's rules. The listener-level configs
# of jwt_authn and the rate limit change while Envoy runs (keys, limits): they come by ECDS as
# resources of these same names, so an update reaches the next request on every open
# connection too. `meshline.forwarded` refuses a request that claims to be forwarded on the
# public listener (no route ever switches it off).
FORWARDED_FILTER = "meshline.forwarded"
FIREWALL_FILTER = "meshline.firewall"
JWT_AUTHN_FILTER = "meshline.jwt_authn"
ACCESS_FILTER = "meshline.access"
RATE_LIMIT_FILTER = "meshline.rate"
# The jwt_authn provider of meshline's own API keys.
MESHLINE_KEYS_PROVIDER = "meshline-keys"

_GRPC_SUFFIX = ".grpc"
_HTTP_SUFFIX = ".http"
_TRACK_SEPARATOR = "@"
_LOCAL_MARK = "~local"

# The EDS hostname of the control plane's activator in the clusters of cold backends.
ACTIVATOR_HOSTNAME = "activator"
# The cluster transport socket (mTLS to the activator) that its host selects by its metadata.
ACTIVATOR_TRANSPORT_SOCKET = "activator"


@dataclass(frozen=True)
class ClusterNames:
    """The two Envoy clusters of one set of hosts: gRPC (OIP v2 over h2c) and REST (HTTP/1.1)."""

    grpc: str = ""
    http: str = ""

    @property
    def pair(self) -> tuple[str, str]:
        return (self.grpc, self.http)


NO_CLUSTERS = ClusterNames()


def route_base(deployment: str, environment: str) -> str:
    """`{deployment}.{environment}`: the base of a deployment's route, virtual host and
    cluster names, and the `:authority` gRPC clients may name it by."""
    return f"{deployment}.{environment}"


def backend_clusters(base: str, track: str, *, local: bool = False) -> ClusterNames:
    """`{base}[@{track}][~local].grpc|.http`: `@track` names a split or mirror leg (the
    deployment's own version has none); `~local` the clusters of the region's own workers
    only, which forwarded requests use."""
    name = f"{base}{_TRACK_SEPARATOR}{track}" if track else base
    if local:
        name = f"{name}{_LOCAL_MARK}"
    return ClusterNames(f"{name}{_GRPC_SUFFIX}", f"{name}{_HTTP_SUFFIX}")


def authority_virtual_host(base: str) -> str:
    """Virtual host for gRPC clients that name the deployment in `:authority`."""
    return f"authority.{base}"


def route_name(base: str, kind: str) -> str:
    """One route of a deployment (shows in Envoy stats and the admin config dump)."""
    return f"{base}.{kind}"


def gateway_hostname(region: str) -> str:
    """The EDS hostname of `region`'s gateway as a host of other gateways' clusters."""
    return f"gateway.{region}"


def peer_transport_socket(region: str) -> str:
    """The cluster transport socket (mTLS to `region`'s peer listener) that its gateway's
    hosts select by their metadata."""
    return f"peer.{region}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def jwt_provider(issuer: str) -> str:
    """The jwt_authn provider of a user's identity provider (an issuer URL is no name)."""
    return f"issuer-{_short_hash(issuer)}"


def jwks_cluster(issuer: str) -> str:
    """The cluster a gateway fetches an issuer's JWKS through."""
    return f"jwks-{_short_hash(issuer)}"
