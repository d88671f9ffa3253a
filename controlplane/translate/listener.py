"""LDS: the public listener, `gateway`, where clients call, and the peer listener, `peer`, where
other regions' gateways forward requests; on each, gRPC and REST share a port.

codec_type AUTO tells HTTP/2 prior knowledge (gRPC over cleartext) from HTTP/1.1 by the
connection preface, or by ALPN under TLS (the public listener's edge TLS, when the region has
it, or the peer listener's mTLS), so one port serves both. Routes come by RDS over ADS,
a table of its own per listener: the public one checks every caller and never serves a
forwarded request; the peer one serves only forwarded requests, from the region's own workers,
to clients that showed a mesh certificate naming a region (`tls.py`), whose entry gateway
already checked the caller (its `x-meshline-principal` is kept).
"""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2, protocol_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from controlplane.ir import names
from controlplane.ir.model import GatewayIR
from controlplane.translate import access, denials, edge_tls, path_metadata, tls, wellknown
from controlplane.translate.clusters import ads_config_source, http2_options
from controlplane.translate.pb import boolean, duration, packed

HCM = hcm_pb2.HttpConnectionManager

# Generous for inference (long model calls are bounded by each route's timeout instead).
STREAM_IDLE_TIMEOUT_S = 300.0
CONNECTION_IDLE_TIMEOUT_S = 3600.0
REQUEST_HEADERS_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 5.0
INFERENCE_SERVICE = "inference.GRPCInferenceService"
INFERENCE_METHODS = ("ModelInfer", "ModelStreamInfer")


def build_listeners(gateway: GatewayIR) -> list[listener_pb2.Listener]:
    """The public listener, and the peer listener when the gateway has one."""
    listeners = [build_listener(gateway)]
    if gateway.peer.port:
        listeners.append(build_peer_listener(gateway))
    return listeners


def build_listener(gateway: GatewayIR) -> listener_pb2.Listener:
    """Clients' listener: plain text, or TLS with the edge certificate (`edge_tls.py`)."""
    listener = _listener(gateway.listener_name, gateway.listen_host, gateway.listen_port)
    chain = listener.filter_chains.add()
    if gateway.edge is not None:
        chain.transport_socket.CopyFrom(edge_tls.listener_socket(gateway.edge))
    chain.filters.add(
        name=wellknown.HCM_FILTER, typed_config=packed(http_connection_manager(gateway))
    )
    return listener


def build_peer_listener(gateway: GatewayIR) -> listener_pb2.Listener:
    """Where other regions' gateways forward: mTLS with the mesh certificates, or (the
    benchmark-only switch) plain text. ValueError for a peer listener with neither."""
    peer = gateway.peer
    if peer.tls is None and not peer.plaintext:
        raise ValueError(
            f"gateway {gateway.region!r}: its peer listener needs the region's certificate "
            "(mTLS); plain text is a benchmark-only switch"
        )
    listener = _listener(gateway.peer_listener_name, peer.host, peer.port)
    chain = listener.filter_chains.add()
    if peer.tls is not None:
        chain.transport_socket.CopyFrom(tls.peer_listener_socket())
    chain.filters.add(
        name=wellknown.HCM_FILTER, typed_config=packed(peer_connection_manager(gateway))
    )
    return listener


def _listener(name: str, host: str, port: int) -> listener_pb2.Listener:
    """One socket per listener, not SO_REUSEPORT (Envoy's default on Linux): with reuse_port, a
    second Envoy (another meshline on the same machine) binds the same port without an error
    and the kernel splits clients between the two gateways, each missing the other's keys and
    routes. Without it, the second bind fails and the control plane sees the NACK."""
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(
                protocol=address_pb2.SocketAddress.TCP, address=host, port_value=port
            )
        ),
        enable_reuse_port=boolean(False),
    )


def _manager(stat_prefix: str, route_config_name: str) -> hcm_pb2.HttpConnectionManager:
    """What both listeners' HCMs share: codecs, timeouts, routes by RDS over ADS."""
    manager = HCM(
        stat_prefix=stat_prefix,
        codec_type=HCM.AUTO,
        http2_protocol_options=http2_options(),
        common_http_protocol_options=protocol_pb2.HttpProtocolOptions(
            idle_timeout=duration(CONNECTION_IDLE_TIMEOUT_S)
        ),
        stream_idle_timeout=duration(STREAM_IDLE_TIMEOUT_S),
        request_headers_timeout=duration(REQUEST_HEADERS_TIMEOUT_S),
        drain_timeout=duration(DRAIN_TIMEOUT_S),
        use_remote_address=boolean(True),
        normalize_path=boolean(True),
        merge_slashes=True,
    )
    manager.rds.route_config_name = route_config_name
    manager.rds.config_source.CopyFrom(ads_config_source())
    return manager


def http_connection_manager(gateway: GatewayIR) -> hcm_pb2.HttpConnectionManager:
    """The HCM of the public listener, routes by RDS (the gateway's route table) over ADS."""
    manager = _manager(gateway.stat_prefix, gateway.route_config_name)
    # A firewall rule that trusts proxies in front of the gateway reads the client's address
    # from x-forwarded-for this many hops from the right.
    manager.xff_num_trusted_hops = gateway.trusted_hops
    manager.local_reply_config.CopyFrom(denials.local_reply_config())
    # Refusals before anything else, in this order: a claimed forward, the caller's address,
    # the credential, the access rules on the verified identity, the rate.
    manager.http_filters.extend(
        [
            path_metadata.listener_filter(),
            hcm_pb2.HttpFilter(
                name=names.FORWARDED_FILTER, typed_config=packed(access.forged_forwards())
            ),
            hcm_pb2.HttpFilter(
                name=names.FIREWALL_FILTER, typed_config=packed(access.empty_rules())
            ),
            _discovered(names.JWT_AUTHN_FILTER, jwt_pb2.JwtAuthentication),
            hcm_pb2.HttpFilter(name=names.ACCESS_FILTER, typed_config=packed(access.empty_rules())),
            _discovered(names.RATE_LIMIT_FILTER, local_rate_limit_pb2.LocalRateLimit),
            grpc_stats_filter(),
            _router(),
        ]
    )
    return manager


def peer_connection_manager(gateway: GatewayIR) -> hcm_pb2.HttpConnectionManager:
    """The HCM of the peer listener: forwarded requests were checked at their entry gateway,
    and the TLS handshake proved the sender is one."""
    manager = _manager(names.PEER_STAT_PREFIX, gateway.peer_route_config_name)
    manager.http_filters.extend([grpc_stats_filter(), _router()])
    return manager


def _router() -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(
        name=wellknown.ROUTER_FILTER, typed_config=packed(router_pb2.Router())
    )


def _discovered(name: str, message: type[Message]) -> hcm_pb2.HttpFilter:
    """A filter whose config comes by ECDS: Envoy subscribes to the resource named like the
    filter."""
    http_filter = hcm_pb2.HttpFilter(name=name)
    discovery = http_filter.config_discovery
    discovery.config_source.CopyFrom(ads_config_source())
    discovery.type_urls.append(f"type.googleapis.com/{message.DESCRIPTOR.full_name}")
    return http_filter


def grpc_stats_filter() -> hcm_pb2.HttpFilter:
    """Per-cluster gRPC outcome counters (`cluster.X.grpc.<service>.<method>.failure`): a gRPC
    error travels in HTTP 200 trailers, invisible to the 5xx counters canary analysis reads."""
    config = grpc_stats_pb2.FilterConfig()
    # Only the inference calls, by name: counting every method a client names would let any
    # client grow Envoy's stats without bound.
    config.individual_method_stats_allowlist.services.add(
        name=INFERENCE_SERVICE, method_names=list(INFERENCE_METHODS)
    )
    return hcm_pb2.HttpFilter(name=wellknown.GRPC_STATS_FILTER, typed_config=packed(config))
