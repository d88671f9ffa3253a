"""Edge TLS: the TLS the public listener serves clients, and its SDS secret.

The listener asks for one certificate by name: from the control plane over ADS (mode mesh-ca: a
server certificate of the control plane's edge CA, never the mesh CA, rotated as the same
secret with new content, so Envoy swaps it in with no listener change and connections already
open keep going), or from the SDS file
the agent wrote on the gateway's host (mode files: it names the user's certificate and key;
Envoy watches them and loads a replaced pair). ALPN offers h2 and http/1.1, so gRPC and REST
keep sharing the port; no client certificate is asked (clients show API keys or JWTs).
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2

from controlplane.ir.model import EdgeTls, GatewayIR
from controlplane.translate import wellknown
from controlplane.translate.clusters import ads_config_source
from controlplane.translate.pb import packed
from meshline.edge_tls import EdgeTlsMode

ALPN_EDGE = ("h2", "http/1.1")
# Clients are anyone's: TLS 1.2 still, nothing older.
MIN_TLS_VERSION = common_pb2.TlsParameters.TLSv1_2


def secrets(gateway: GatewayIR) -> dict[str, secret_pb2.Secret]:
    """The edge certificate with its key, when the control plane makes it (mode mesh-ca: its
    edge CA signs it)."""
    edge = gateway.edge
    if edge is None or edge.certificate is None or edge.mode is not EdgeTlsMode.MESH_CA:
        return {}
    secret = secret_pb2.Secret(name=edge.secret_name)
    secret.tls_certificate.certificate_chain.inline_string = edge.certificate.certificate_chain
    secret.tls_certificate.private_key.inline_string = edge.certificate.private_key
    return {secret.name: secret}


def certificate_source(edge: EdgeTls) -> config_source_pb2.ConfigSource:
    """Where Envoy gets the edge secret: the ADS stream, or the agent's SDS file."""
    if edge.mode is EdgeTlsMode.MESH_CA:
        return ads_config_source()
    source = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    source.path_config_source.path = edge.sds_path
    return source


def listener_socket(edge: EdgeTls) -> base_pb2.TransportSocket:
    """The public listener's TLS."""
    context = tls_pb2.DownstreamTlsContext()
    common = context.common_tls_context
    common.tls_params.tls_minimum_protocol_version = MIN_TLS_VERSION
    common.alpn_protocols.extend(ALPN_EDGE)
    common.tls_certificate_sds_secret_configs.add(
        name=edge.secret_name, sds_config=certificate_source(edge)
    )
    return base_pb2.TransportSocket(
        name=wellknown.TLS_TRANSPORT_SOCKET, typed_config=packed(context)
    )
