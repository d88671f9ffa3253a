"""The IR dataclasses. Frozen, so a gateway's IR can be compared and hashed.

A gateway serves each deployment through one *backend* per model version it runs (its own
version, split legs, a mirror). A backend lists *tiers* in Envoy priority order: the region's
own workers and other regions' gateways, as policy ordered them. Forwarded requests (those
that come in on the peer listener) are served only by `local_endpoints`, never forwarded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from controlplane.ir import names
from controlplane.ir.names import NO_CLUSTERS, ClusterNames
from controlplane.policy.access import AccessSettings, JwtIssuer, RateSettings
from controlplane.policy.settings import (
    STRATEGY_DEFAULT,
    HealthCheckSettings,
    OutlierSettings,
    RetrySettings,
)
from meshline import wire
from meshline.edge_tls import EdgeTlsMode
from meshline.keys import DeploymentKey

TIER_LOCAL = "local"
TIER_GATEWAY = "gateway"
# The control plane's activator: last, and only while the region to serve is cold.
TIER_ACTIVATOR = "activator"


@dataclass(frozen=True)
class Endpoint:
    """One worker process, or another region's gateway, as seen by a gateway."""

    worker_id: str
    host: str
    grpc_port: int
    http_port: int
    healthy: bool = True
    # Replaced or unwanted: Envoy stops sending new requests but lets in-flight ones finish.
    draining: bool = False


@dataclass(frozen=True)
class Tier:
    """The hosts of one region inside a backend, at one Envoy priority."""

    region: str
    kind: str  # TIER_LOCAL: the region's own workers; TIER_GATEWAY: another region's Envoy
    priority: int
    endpoints: tuple[Endpoint, ...] = ()
    # Percent of its priority's traffic (below 100 only while offload shares priority 0).
    share: int = 100


@dataclass(frozen=True)
class Backend:
    """One model version of a deployment on one gateway."""

    track: str  # "" = the deployment's own version; else the version name
    version: str
    weight: int = 100  # percent of unpinned requests
    mirror_percent: float = 0.0
    tiers: tuple[Tier, ...] = ()
    # This region's own workers of the version; None when the region does not run it.
    local_endpoints: tuple[Endpoint, ...] | None = ()
    # The cold region whose first worker the activator waits for ("" = no activator tier).
    wakes: str = ""
    # The clients' clusters (every tier), and the clusters of this region's own workers only
    # (forwarded requests): named by the route that holds the backend.
    clusters: ClusterNames = NO_CLUSTERS
    local_clusters: ClusterNames = NO_CLUSTERS

    @property
    def activator(self) -> Endpoint | None:
        return next((e for t in self.tiers if t.kind == TIER_ACTIVATOR for e in t.endpoints), None)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for tier in self.tiers for e in tier.endpoints)


@dataclass(frozen=True)
class DeploymentRoute:
    """One deployment in one environment, served by one gateway."""

    deployment: str
    environment: str
    backends: tuple[Backend, ...] = ()
    strategy: str = STRATEGY_DEFAULT
    hash_header: str = ""
    request_timeout_s: float = 30.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    health_check: HealthCheckSettings = field(default_factory=HealthCheckSettings)
    outlier: OutlierSettings = field(default_factory=OutlierSettings)
    offload_percent: int = 0
    # Runs nothing: every request gets "deployment X is deactivated".
    deactivated: bool = False
    # Who may call it (checked by the entry gateway, never again after a hop) and how often.
    access: AccessSettings = field(default_factory=AccessSettings)
    rate: RateSettings = field(default_factory=RateSettings)
    # The base of every Envoy name of this route (route, virtual host, clusters): assigned
    # here, once, from the naming scheme in `controlplane.ir.names`; translate reads it.
    name: str = ""

    def __post_init__(self) -> None:
        name = self.name or names.route_base(self.deployment, self.environment)
        object.__setattr__(self, "name", name)
        if any(not b.clusters.grpc or not b.local_clusters.grpc for b in self.backends):
            object.__setattr__(self, "backends", tuple(_named(b, name) for b in self.backends))

    @staticmethod
    def local(
        deployment: str,
        environment: str,
        endpoints: Sequence[Endpoint],
        region: str = "local",
        version: str = "v1",
        **settings: object,
    ) -> DeploymentRoute:
        """A deployment served only by this gateway's own workers, one version."""
        eps = tuple(endpoints)
        backend = Backend("", version, 100, 0.0, (Tier(region, TIER_LOCAL, 0, eps),), eps)
        return DeploymentRoute(deployment, environment, (backend,), **settings)  # type: ignore[arg-type]

    @property
    def key(self) -> DeploymentKey:
        return DeploymentKey(self.environment, self.deployment)

    @property
    def authority(self) -> str:
        """The `:authority` gRPC clients name it by (a routing key, not an Envoy name)."""
        return wire.authority(self.deployment, self.environment)

    def backend(self, track: str) -> Backend | None:
        return next((b for b in self.backends if b.track == track), None)

    @property
    def main(self) -> Backend:
        return next(b for b in self.backends if not b.track)

    @property
    def served_here(self) -> bool:
        return any(b.local_endpoints is not None for b in self.backends)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every host of every backend (workers and gateways)."""
        return tuple(e for b in self.backends for e in b.endpoints)


def _named(backend: Backend, base: str) -> Backend:
    return replace(
        backend,
        clusters=backend.clusters
        if backend.clusters.grpc
        else names.backend_clusters(base, backend.track),
        local_clusters=backend.local_clusters
        if backend.local_clusters.grpc
        else names.backend_clusters(base, backend.track, local=True),
    )


@dataclass(frozen=True)
class PublicKey:
    """The public half of one working API key secret (the Ed25519 key that signed it)."""

    key_id: str
    x: str  # base64url raw public key, the JWK's `x`


@dataclass(frozen=True)
class Issuer:
    """An identity provider whose tokens a gateway verifies, with the Envoy names it needs."""

    issuer: str
    jwks: str = ""
    jwks_uri: str = ""
    provider_name: str = ""
    # The cluster Envoy fetches `jwks_uri` through ("" with inline keys).
    cluster_name: str = ""

    def __post_init__(self) -> None:
        if not self.provider_name:
            object.__setattr__(self, "provider_name", names.jwt_provider(self.issuer))
        if self.jwks_uri and not self.cluster_name:
            object.__setattr__(self, "cluster_name", names.jwks_cluster(self.issuer))

    @staticmethod
    def of(issuer: JwtIssuer) -> Issuer:
        return Issuer(issuer.issuer, issuer.jwks, issuer.jwks_uri)


@dataclass(frozen=True)
class Credentials:
    """The API key secrets a gateway takes (the public half of each)."""

    keys: tuple[PublicKey, ...] = ()


@dataclass(frozen=True)
class GatewayTls:
    """A gateway's mesh identity for the peer path (forwarded requests, both ways): its
    certificate chain, the private key (PEM; the control plane holds it in memory only, so it
    is never shown), and the CA bundle a peer gateway's certificate must chain to."""

    certificate_chain: str
    private_key: str = field(repr=False)
    trusted_ca: str = ""
    serial: str = ""  # hex, for status: which certificate Envoy ACKed
    expires_at: float = 0.0  # Unix time


@dataclass(frozen=True)
class PeerPath:
    """How a gateway takes requests other regions' gateways forward (its peer listener) and
    sends them to theirs. mTLS on both sides with `tls`: only a client with a certificate of
    the mesh CA naming a region is served there, and only there does a request count as
    forwarded. `plaintext` is a benchmark-only switch (no TLS at all), never a default."""

    host: str = ""
    port: int = 0  # 0: no peer listener (nothing can be forwarded here)
    tls: GatewayTls | None = None
    # Every region whose gateway this one may forward to (each gets a TLS socket that checks
    # that region's identity), whether its agent reports now or not: the clusters stay the
    # same while regions come and go.
    peers: tuple[str, ...] = ()
    plaintext: bool = False


@dataclass(frozen=True)
class EdgeTls:
    """TLS on a gateway's public listener, for clients (API keys and JWTs stay their
    credential: no client certificate is asked). mesh-ca: `certificate` (from the edge CA, for
    the names clients dial) goes to Envoy over SDS; files: Envoy reads the SDS file the agent
    wrote at `sds_path` on its host, which names the user's certificate and key. `secret_name`:
    the SDS secret the listener asks for, assigned here from `controlplane.ir.names`."""

    mode: EdgeTlsMode
    certificate: GatewayTls | None = None
    sds_path: str = ""
    secret_name: str = ""

    def __post_init__(self) -> None:
        if self.mode is EdgeTlsMode.MESH_CA and self.certificate is None:
            raise ValueError("edge TLS mode mesh-ca needs the gateway's certificate")
        if self.mode is EdgeTlsMode.FILES and not self.sds_path.startswith("/"):
            raise ValueError(
                f"edge TLS from files needs the absolute path of the agent's SDS file, not "
                f"{self.sds_path!r}"
            )
        if not self.secret_name:
            name = (
                names.EDGE_CERTIFICATE_SECRET
                if self.mode is EdgeTlsMode.MESH_CA
                else names.EDGE_FILES_SECRET
            )
            object.__setattr__(self, "secret_name", name)


@dataclass(frozen=True)
class GatewayIR:
    """Everything one region's Envoy serves."""

    region: str
    listen_host: str
    listen_port: int
    routes: tuple[DeploymentRoute, ...] = ()
    credentials: Credentials = field(default_factory=Credentials)
    peer: PeerPath = field(default_factory=PeerPath)
    # TLS for clients on the public listener (None: plain text).
    edge: EdgeTls | None = None
    listener_name: str = names.LISTENER_NAME
    route_config_name: str = names.ROUTE_CONFIG_NAME
    stat_prefix: str = names.STAT_PREFIX
    peer_listener_name: str = names.PEER_LISTENER_NAME
    peer_route_config_name: str = names.PEER_ROUTE_CONFIG_NAME

    @property
    def issuers(self) -> tuple[Issuer, ...]:
        """The identity providers the routes' access rules name, once each (apply keeps one
        issuer to one set of keys). Derived from the routes, so a config narrowed to some
        routes (an offline check of one deployment) holds only their providers."""
        found = {i.issuer: i for r in self.routes for i in r.access.issuers}
        return tuple(Issuer.of(found[name]) for name in sorted(found))

    @property
    def trusted_hops(self) -> int:
        """x-forwarded-for hops the listener trusts: the one count every firewall agrees on
        (apply refuses two different ones)."""
        return max((f.trusted_hops for r in self.routes for f in r.access.firewalls), default=0)


@dataclass(frozen=True)
class NetworkIR:
    """All gateways of the network."""

    gateways: tuple[GatewayIR, ...] = ()

    def gateway(self, region: str) -> GatewayIR | None:
        return next((g for g in self.gateways if g.region == region), None)
