"""mTLS of the peer path: a gateway's SDS secrets, the TLS its peer listener requires, and the
TLS its clusters use to reach other regions' gateways and the control plane's activator.

Envoy gets two secrets over SDS (the same ADS stream): the gateway's certificate with its key,
and the mesh CA bundle. Both names are fixed, so a rotated certificate is the same resource with
new content: Envoy swaps it into every TLS context that names it without touching a listener
or a cluster, and connections already open keep going.

- The peer listener requires a client certificate that chains to the mesh CA and names a
  region (URI SAN `spiffe://meshline/region/<name>`).
- A cluster that may forward to other regions has one TLS socket per peer region, each checking
  that the server's certificate names exactly that region; a host selects its socket by its
  metadata (only other regions' gateways and the activator carry it), so workers stay plain
  on loopback. Active health checks use the socket of the host they probe.
- Every cluster (the `~local` twins too) has a TLS socket to the activator, checking that the
  server names the control plane (`spiffe://meshline/controlplane`); the activator requires
  the gateway's certificate. Always there, so that a deployment going cold or warm changes
  EDS only, never a cluster.
"""

from __future__ import annotations

import re

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import struct_pb2

from controlplane.ir import names
from controlplane.ir.model import GatewayIR
from controlplane.translate import wellknown
from controlplane.translate.clusters import ads_config_source
from controlplane.translate.pb import packed
from meshline import wire

# The key, in a host's `envoy.transport_socket_match` metadata, that names its gateway's region.
PEER_MATCH_KEY = "meshline-peer"
# The key (and its one value) that the activator's host carries there.
ACTIVATOR_MATCH_KEY = "meshline-activator"
ACTIVATOR_MATCH_VALUE = "controlplane"
# What the mesh certificate of any region names (the peer listener takes every region).
REGION_ID_PATTERN = "^" + re.escape(wire.region_spiffe_id("")) + "[^/]+$"
# Both ends are Envoy: no reason to speak anything older.
TLS_VERSION = common_pb2.TlsParameters.TLSv1_3
ALPN_GRPC = ("h2",)
ALPN_HTTP = ("http/1.1",)
ALPN_PEER_LISTENER = ("h2", "http/1.1")
REDACTED = "[redacted]"


def secrets(gateway: GatewayIR) -> dict[str, secret_pb2.Secret]:
    """The gateway's SDS secrets by name (none without TLS on its peer path)."""
    tls = gateway.peer.tls
    if tls is None:
        return {}
    certificate = secret_pb2.Secret(name=names.CERTIFICATE_SECRET)
    certificate.tls_certificate.certificate_chain.inline_string = tls.certificate_chain
    certificate.tls_certificate.private_key.inline_string = tls.private_key
    trusted = secret_pb2.Secret(name=names.TRUSTED_CA_SECRET)
    trusted.validation_context.trusted_ca.inline_string = tls.trusted_ca
    return {s.name: s for s in (certificate, trusted)}


def peer_listener_socket() -> base_pb2.TransportSocket:
    """The peer listener's TLS: a client certificate of the mesh CA naming a region, or no
    connection."""
    context = tls_pb2.DownstreamTlsContext()
    context.require_client_certificate.value = True
    _common(context.common_tls_context, _san_matcher(safe_regex=REGION_ID_PATTERN))
    context.common_tls_context.alpn_protocols.extend(ALPN_PEER_LISTENER)
    return _socket(context)


def peer_socket_matches(
    gateway: GatewayIR, *, grpc: bool
) -> list[cluster_pb2.Cluster.TransportSocketMatch]:
    """A cluster's TLS socket per peer region (gRPC clusters speak h2, REST ones HTTP/1.1)."""
    if gateway.peer.tls is None:
        return []
    out = []
    for region in gateway.peer.peers:
        context = tls_pb2.UpstreamTlsContext()
        _common(context.common_tls_context, _san_matcher(exact=wire.region_spiffe_id(region)))
        context.common_tls_context.alpn_protocols.extend(ALPN_GRPC if grpc else ALPN_HTTP)
        match = cluster_pb2.Cluster.TransportSocketMatch(
            name=names.peer_transport_socket(region), transport_socket=_socket(context)
        )
        match.match.update({PEER_MATCH_KEY: region})
        out.append(match)
    return out


def activator_socket_matches(
    gateway: GatewayIR, *, grpc: bool
) -> list[cluster_pb2.Cluster.TransportSocketMatch]:
    """A cluster's TLS socket to the activator (none without the gateway's certificate: the
    activator would refuse it, and build_network then gives it no activator tier)."""
    if gateway.peer.tls is None:
        return []
    context = tls_pb2.UpstreamTlsContext()
    _common(context.common_tls_context, _san_matcher(exact=wire.CONTROLPLANE_SPIFFE_ID))
    context.common_tls_context.alpn_protocols.extend(ALPN_GRPC if grpc else ALPN_HTTP)
    match = cluster_pb2.Cluster.TransportSocketMatch(
        name=names.ACTIVATOR_TRANSPORT_SOCKET, transport_socket=_socket(context)
    )
    match.match.update({ACTIVATOR_MATCH_KEY: ACTIVATOR_MATCH_VALUE})
    return [match]


def activator_host_metadata() -> struct_pb2.Struct:
    """What the activator's host carries, so its cluster picks the activator's socket."""
    metadata = struct_pb2.Struct()
    metadata.update({ACTIVATOR_MATCH_KEY: ACTIVATOR_MATCH_VALUE})
    return metadata


def peer_host_metadata(region: str) -> struct_pb2.Struct:
    """What a host of `region`'s gateway carries, so its cluster picks that region's socket."""
    metadata = struct_pb2.Struct()
    metadata.update({PEER_MATCH_KEY: region})
    return metadata


def redacted(secret: secret_pb2.Secret) -> secret_pb2.Secret:
    """`secret` without its private key (for dumps and golden files), as Envoy shows it."""
    copy = secret_pb2.Secret()
    copy.CopyFrom(secret)
    if copy.HasField("tls_certificate"):
        copy.tls_certificate.private_key.inline_string = REDACTED
    return copy


def static_socket(socket: base_pb2.TransportSocket) -> base_pb2.TransportSocket:
    """`socket` naming static secrets instead of SDS ones over ADS (for a bootstrap that holds
    the secrets in static_resources); a secret from a file (edge TLS from the user's files)
    stays where it is."""
    upstream = tls_pb2.UpstreamTlsContext()
    downstream = tls_pb2.DownstreamTlsContext()
    context = upstream if socket.typed_config.Is(upstream.DESCRIPTOR) else downstream
    socket.typed_config.Unpack(context)
    common = context.common_tls_context
    for config in common.tls_certificate_sds_secret_configs:
        if not config.sds_config.HasField("path_config_source"):
            config.ClearField("sds_config")
    if common.HasField("combined_validation_context"):
        combined = common.combined_validation_context
        combined.validation_context_sds_secret_config.ClearField("sds_config")
    return _socket(context)


def _common(common: common_pb2.CommonTlsContext, san: common_pb2.SubjectAltNameMatcher) -> None:
    # Envoy's clients stop at TLS 1.2 unless told otherwise.
    common.tls_params.tls_minimum_protocol_version = TLS_VERSION
    common.tls_params.tls_maximum_protocol_version = TLS_VERSION
    common.tls_certificate_sds_secret_configs.add(
        name=names.CERTIFICATE_SECRET, sds_config=ads_config_source()
    )
    combined = common.combined_validation_context
    combined.default_validation_context.match_typed_subject_alt_names.append(san)
    combined.validation_context_sds_secret_config.CopyFrom(
        secret_pb2.SdsSecretConfig(name=names.TRUSTED_CA_SECRET, sds_config=ads_config_source())
    )


def _san_matcher(*, exact: str = "", safe_regex: str = "") -> common_pb2.SubjectAltNameMatcher:
    matcher = (
        string_pb2.StringMatcher(exact=exact)
        if exact
        else string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=safe_regex))
    )
    return common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.URI, matcher=matcher
    )


def _socket(
    context: tls_pb2.UpstreamTlsContext | tls_pb2.DownstreamTlsContext,
) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(
        name=wellknown.TLS_TRANSPORT_SOCKET, typed_config=packed(context)
    )
