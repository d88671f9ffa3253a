"""jwt_authn: who a caller is, from `authorization: Bearer <token>`.

One provider verifies meshline's own API keys (a local JWKS holding the public key of every
secret that works now: a revoked or rotated-out secret is simply no longer there), and one per
identity provider the access rules name (its JWKS inline, or fetched by Envoy from `jwks_uri`
through a cluster of its own and refreshed). Every provider writes the verified payload to the
same dynamic metadata key, where the access rules (RBAC) and rate limits read it; the token is
not forwarded upstream.

The filter's config comes by ECDS: a new key or a revocation reaches the next request on every
open connection, without a listener change. Each route names a requirement: a credential from
any provider, or (when every access rule lets anonymous callers in) none at all; a credential
sent must be valid either way.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, http_uri_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2, empty_pb2

from controlplane.ir import names
from controlplane.ir.model import Credentials, DeploymentRoute, GatewayIR, Issuer, PublicKey
from controlplane.translate.access import PAYLOAD_KEY
from controlplane.translate.pb import duration, packed
from meshline import wire
from meshline.jwk import public_jwk

REQUIRE_CREDENTIAL = "credential"
ALLOW_ANONYMOUS = "credential-or-anonymous"
JWKS_FETCH_TIMEOUT_S = 5.0
# Envoy refetches an identity provider's keys this often (never on an unknown `kid`): publish a
# new key this long before signing with it.
JWKS_CACHE_S = 60.0
CLOCK_SKEW_S = 30
JWT_CACHE_SIZE = 1000
_TLS_SOCKET = "envoy.transport_sockets.tls"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Envoy refuses a JWKS without keys: while no API key works, the provider holds this public key,
# whose private half was thrown away the moment it was made (nothing it could sign exists).
PLACEHOLDER_KEY = PublicKey("meshline-no-key", "TnsphbzqAbmFzXY1u3ezd8JymkfwIrxx3JONEtM6ySA")


def jwt_authn_config(gateway: GatewayIR) -> jwt_pb2.JwtAuthentication:
    config = jwt_pb2.JwtAuthentication()
    own = config.providers[names.MESHLINE_KEYS_PROVIDER]
    own.CopyFrom(_provider(wire.MESHLINE_ISSUER))
    own.local_jwks.inline_string = _keys_jwks(gateway.credentials)
    issuers = gateway.issuers
    for issuer in issuers:
        provider = config.providers[issuer.provider_name]
        provider.CopyFrom(_provider(issuer.issuer))
        if issuer.jwks_uri:
            remote = provider.remote_jwks
            remote.http_uri.CopyFrom(
                http_uri_pb2.HttpUri(
                    uri=issuer.jwks_uri,
                    cluster=issuer.cluster_name,
                    timeout=duration(JWKS_FETCH_TIMEOUT_S),
                )
            )
            remote.cache_duration.CopyFrom(duration(JWKS_CACHE_S))
            # Fetch at start, not on the first request (which would wait for it).
            remote.async_fetch.SetInParent()
        else:
            provider.local_jwks.inline_string = issuer.jwks
    providers = [names.MESHLINE_KEYS_PROVIDER, *(i.provider_name for i in issuers)]
    any_provider = [jwt_pb2.JwtRequirement(provider_name=p) for p in providers]
    config.requirement_map[REQUIRE_CREDENTIAL].CopyFrom(_any_of(any_provider))
    missing = jwt_pb2.JwtRequirement(allow_missing=empty_pb2.Empty())
    config.requirement_map[ALLOW_ANONYMOUS].CopyFrom(_any_of([*any_provider, missing]))
    return config


def _any_of(requirements: list[jwt_pb2.JwtRequirement]) -> jwt_pb2.JwtRequirement:
    if len(requirements) == 1:
        return requirements[0]
    either = jwt_pb2.JwtRequirement()
    either.requires_any.requirements.extend(requirements)
    return either


def _provider(issuer: str) -> jwt_pb2.JwtProvider:
    provider = jwt_pb2.JwtProvider(
        issuer=issuer,
        forward=False,
        payload_in_metadata=PAYLOAD_KEY,
        clock_skew_seconds=CLOCK_SKEW_S,
    )
    # A token verified once is not verified again until it expires (per worker thread, LRU).
    # Revoking a meshline key still holds at once: a new key set is a new filter config (ECDS),
    # which starts with an empty cache. An identity provider that drops a key from its JWKS
    # stops new tokens of it at the next refetch; tokens already seen pass until their `exp`.
    provider.jwt_cache_config.jwt_cache_size = JWT_CACHE_SIZE
    provider.from_headers.add(name="authorization", value_prefix="Bearer ")
    return provider


def _keys_jwks(credentials: Credentials) -> str:
    keys = [public_jwk(k.x, k.key_id) for k in credentials.keys or (PLACEHOLDER_KEY,)]
    return json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))


def route_requirement(route: DeploymentRoute) -> any_pb2.Any:
    """The per-route config naming the route's requirement."""
    name = ALLOW_ANONYMOUS if route.access.anonymous else REQUIRE_CREDENTIAL
    return packed(jwt_pb2.PerRouteConfig(requirement_name=name))


def jwks_clusters(gateway: GatewayIR) -> list[cluster_pb2.Cluster]:
    """One cluster per identity provider whose keys Envoy fetches."""
    return [_jwks_cluster(i) for i in gateway.issuers if i.jwks_uri]


def _jwks_cluster(issuer: Issuer) -> cluster_pb2.Cluster:
    url = urlsplit(issuer.jwks_uri)
    secure = url.scheme == "https"
    host = url.hostname or ""
    port = url.port or (443 if secure else 80)
    cluster = cluster_pb2.Cluster(
        name=issuer.cluster_name,
        type=cluster_pb2.Cluster.LOGICAL_DNS,
        dns_lookup_family=cluster_pb2.Cluster.V4_PREFERRED,
        connect_timeout=duration(JWKS_FETCH_TIMEOUT_S),
    )
    cluster.load_assignment.CopyFrom(
        endpoint_pb2.ClusterLoadAssignment(
            cluster_name=issuer.cluster_name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(
                                address=address_pb2.Address(
                                    socket_address=address_pb2.SocketAddress(
                                        address=host, port_value=port
                                    )
                                )
                            )
                        )
                    ]
                )
            ],
        )
    )
    if secure:
        tls = tls_pb2.UpstreamTlsContext(sni=host)
        # The identity provider's certificate must chain to the system's trusted CAs and name
        # its host: a JWKS from anyone else would let them mint tokens.
        validation = tls.common_tls_context.validation_context
        validation.trusted_ca.filename = SYSTEM_CA_BUNDLE
        validation.match_typed_subject_alt_names.add(
            san_type=common_pb2.SubjectAltNameMatcher.DNS,
            matcher=string_pb2.StringMatcher(exact=host),
        )
        cluster.transport_socket.CopyFrom(
            base_pb2.TransportSocket(name=_TLS_SOCKET, typed_config=packed(tls))
        )
    return cluster
