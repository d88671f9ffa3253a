"""The peer path in translate's output: the peer listener, its route table, the TLS sockets to
other regions' gateways and the SDS secrets (what golden files show, stated as properties)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from controlplane.ir.model import GatewayIR, PeerPath
from controlplane.translate import translate_gateway, wellknown
from controlplane.translate.dump import resources_to_yaml
from controlplane.translate.static_bootstrap import static_bootstrap
from controlplane.translate.tls import PEER_MATCH_KEY, REGION_ID_PATTERN
from meshline import wire
from tests.controlplane.translate.cases import ENTRY_OUTSIDE_PLACEMENT, FAILOVER_THREE_REGIONS
from tests.controlplane.translate.fixed_tls import gateway_tls


def _manager(listener: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager:
    manager = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    return manager


def _downstream(listener: listener_pb2.Listener) -> tls_pb2.DownstreamTlsContext:
    context = tls_pb2.DownstreamTlsContext()
    listener.filter_chains[0].transport_socket.typed_config.Unpack(context)
    return context


def test_peer_listener_requires_a_mesh_certificate_naming_a_region() -> None:
    resources = translate_gateway(FAILOVER_THREE_REGIONS)
    assert list(resources.listeners) == ["gateway", "peer"]
    assert list(resources.routes) == ["gateway", "peer"]
    peer = resources.listeners["peer"]
    assert peer.address.socket_address.port_value == 11000
    context = _downstream(peer)
    assert context.require_client_certificate.value
    common = context.common_tls_context
    assert [c.name for c in common.tls_certificate_sds_secret_configs] == [
        "meshline-gateway-certificate"
    ]
    combined = common.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == "meshline-mesh-ca"
    [san] = combined.default_validation_context.match_typed_subject_alt_names
    assert san.matcher.safe_regex.regex == REGION_ID_PATTERN
    assert _manager(peer).rds.route_config_name == "peer"
    # The public listener takes no TLS and refuses the hop marker before routing.
    public = resources.listeners["gateway"]
    assert not public.filter_chains[0].HasField("transport_socket")
    assert [f.name for f in _manager(public).http_filters][:3] == [
        "envoy.filters.http.header_to_metadata",
        "meshline.forwarded",
        "meshline.firewall",
    ]


@pytest.mark.parametrize("pattern_input", ["eu-west", "us-east", "a"])
def test_region_id_pattern_takes_each_region_and_nothing_else(pattern_input: str) -> None:
    assert re.fullmatch(REGION_ID_PATTERN, wire.region_spiffe_id(pattern_input))
    assert not re.fullmatch(REGION_ID_PATTERN, wire.region_spiffe_id(pattern_input) + "/x")
    assert not re.fullmatch(REGION_ID_PATTERN, wire.CONTROLPLANE_SPIFFE_ID)
    assert not re.fullmatch(REGION_ID_PATTERN, wire.region_spiffe_id(""))


def test_forwarded_routes_only_on_the_peer_table() -> None:
    resources = translate_gateway(FAILOVER_THREE_REGIONS)
    public = [r.name for v in resources.routes["gateway"].virtual_hosts for r in v.routes]
    peer = [r.name for v in resources.routes["peer"].virtual_hosts for r in v.routes]
    assert not [name for name in public if ".hop." in name or name.startswith("hop.")]
    assert peer[-3:] == [
        "hop.http.probe.unknown",
        "peer.not-forwarded.grpc",
        "peer.not-forwarded.http",
    ]
    hop_routes = [r for v in resources.routes["peer"].virtual_hosts for r in v.routes][:-3]
    assert hop_routes and all(
        r.route.cluster.endswith(("~local.grpc", "~local.http")) for r in hop_routes
    )
    # The entry gateway's principal is kept there; on the public table every client route
    # replaces it.
    assert all(wire.PRINCIPAL_HEADER not in r.request_headers_to_remove for r in hop_routes)


def test_clusters_reach_each_peer_by_its_own_identity() -> None:
    resources = translate_gateway(FAILOVER_THREE_REGIONS)
    cluster = resources.clusters["fraud.production.grpc"]
    matches = {m.name: m for m in cluster.transport_socket_matches}
    assert set(matches) == {"peer.eu-central", "peer.us-east", "activator"}  # test_activator_path
    for region in ("eu-central", "us-east"):
        match = matches[f"peer.{region}"]
        assert dict(match.match) == {PEER_MATCH_KEY: region}
        context = tls_pb2.UpstreamTlsContext()
        match.transport_socket.typed_config.Unpack(context)
        common = context.common_tls_context
        [san] = (
            common.combined_validation_context.default_validation_context.match_typed_subject_alt_names
        )
        assert san.matcher.exact == wire.region_spiffe_id(region)
        assert list(common.alpn_protocols) == ["h2"]
    http = resources.clusters["fraud.production.http"].transport_socket_matches[0]
    context = tls_pb2.UpstreamTlsContext()
    http.transport_socket.typed_config.Unpack(context)
    assert list(context.common_tls_context.alpn_protocols) == ["http/1.1"]
    # Forwarded requests go to the region's own workers only: plain, no peer socket.
    local = resources.clusters["fraud.production~local.grpc"]
    assert [m.name for m in local.transport_socket_matches] == ["activator"]
    # Health checks pick the socket of the host they probe (no criteria of their own).
    assert not cluster.health_checks[0].HasField("transport_socket_match_criteria")


def test_only_peer_gateway_hosts_select_a_tls_socket() -> None:
    resources = translate_gateway(FAILOVER_THREE_REGIONS)
    hosts = {
        lb.endpoint.hostname: lb
        for locality in resources.endpoints["fraud.production.grpc"].endpoints
        for lb in locality.lb_endpoints
    }
    for name, lb in hosts.items():
        metadata = lb.metadata.filter_metadata
        if name.startswith("gateway."):
            selected = dict(metadata[wellknown.TRANSPORT_SOCKET_MATCH_METADATA])
            assert selected == {PEER_MATCH_KEY: name.removeprefix("gateway.")}
        else:
            assert wellknown.TRANSPORT_SOCKET_MATCH_METADATA not in metadata


def test_secrets_go_first_and_never_show_the_private_key() -> None:
    resources = translate_gateway(ENTRY_OUTSIDE_PLACEMENT)
    tls = gateway_tls("us-east")
    assert list(resources.secrets) == ["meshline-gateway-certificate", "meshline-mesh-ca"]
    certificate = resources.secrets["meshline-gateway-certificate"].tls_certificate
    assert certificate.private_key.inline_string == tls.private_key  # what Envoy gets
    assert next(iter(resources.by_type_url())) == wellknown.SECRET_TYPE_URL
    dumped = resources_to_yaml(resources)
    assert "PRIVATE KEY" not in dumped and "[redacted]" in dumped
    assert tls.certificate_chain.splitlines()[1] in dumped
    assert "PRIVATE KEY" not in repr(ENTRY_OUTSIDE_PLACEMENT)


def test_static_bootstrap_holds_the_secrets_and_names_them_statically() -> None:
    bootstrap = static_bootstrap(translate_gateway(FAILOVER_THREE_REGIONS))
    assert [s.name for s in bootstrap.static_resources.secrets] == [
        "meshline-gateway-certificate",
        "meshline-mesh-ca",
    ]
    peer = next(li for li in bootstrap.static_resources.listeners if li.name == "peer")
    common = _downstream(peer).common_tls_context
    assert not common.tls_certificate_sds_secret_configs[0].HasField("sds_config")
    assert not common.combined_validation_context.validation_context_sds_secret_config.HasField(
        "sds_config"
    )
    cluster = next(
        c for c in bootstrap.static_resources.clusters if c.name == "fraud.production.grpc"
    )
    context = tls_pb2.UpstreamTlsContext()
    cluster.transport_socket_matches[0].transport_socket.typed_config.Unpack(context)
    assert not context.common_tls_context.tls_certificate_sds_secret_configs[0].HasField(
        "sds_config"
    )


def test_plain_text_peer_path_is_only_the_explicit_switch() -> None:
    without_tls = dataclasses.replace(
        FAILOVER_THREE_REGIONS, peer=PeerPath("0.0.0.0", 11000, None, ("eu-central",))
    )
    with pytest.raises(ValueError, match="benchmark-only"):
        translate_gateway(without_tls)
    plain = dataclasses.replace(
        FAILOVER_THREE_REGIONS,
        peer=PeerPath("0.0.0.0", 11000, None, ("eu-central",), plaintext=True),
    )
    resources = translate_gateway(plain)
    assert resources.secrets == {}
    assert not resources.listeners["peer"].filter_chains[0].HasField("transport_socket")
    assert not resources.clusters["fraud.production.grpc"].transport_socket_matches


def test_no_peer_listener_without_a_port() -> None:
    gateway = GatewayIR("eu", "0.0.0.0", 10000)
    resources = translate_gateway(gateway)
    assert list(resources.listeners) == ["gateway"] and list(resources.routes) == ["gateway"]
