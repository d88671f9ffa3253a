"""LDS: one listener, `gateway`, where gRPC and REST share a port.

codec_type AUTO tells HTTP/2 prior knowledge (gRPC over cleartext) from HTTP/1.1 by the
connection preface, so one port serves both. Routes come by RDS over ADS.
"""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2, protocol_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from controlplane.ir.model import GatewayIR
from controlplane.translate import path_metadata, wellknown
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


def build_listener(gateway: GatewayIR) -> listener_pb2.Listener:
    listener = listener_pb2.Listener(
        name=gateway.listener_name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(
                protocol=address_pb2.SocketAddress.TCP,
                address=gateway.listen_host,
                port_value=gateway.listen_port,
            )
        ),
    )
    chain = listener.filter_chains.add()
    chain.filters.add(
        name=wellknown.HCM_FILTER, typed_config=packed(http_connection_manager(gateway))
    )
    return listener


def http_connection_manager(gateway: GatewayIR) -> hcm_pb2.HttpConnectionManager:
    """The HCM of the gateway listener, routes by RDS (the gateway's route table) over ADS."""
    manager = HCM(
        stat_prefix=gateway.stat_prefix,
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
    manager.rds.route_config_name = gateway.route_config_name
    manager.rds.config_source.CopyFrom(ads_config_source())
    manager.http_filters.extend(
        [
            path_metadata.listener_filter(),
            grpc_stats_filter(),
            hcm_pb2.HttpFilter(
                name=wellknown.ROUTER_FILTER, typed_config=packed(router_pb2.Router())
            ),
        ]
    )
    return manager


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
