"""The activator in translate's output: every cluster reaches it by mTLS with the gateway's
certificate, checking the control plane's identity; only its host selects that socket, and a
deployment going cold or warm changes its endpoints, never a cluster."""

from __future__ import annotations

import dataclasses

import pytest
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from controlplane.ir import TIER_ACTIVATOR
from controlplane.ir.model import GatewayIR, PeerPath
from controlplane.translate import translate_gateway, wellknown
from controlplane.translate.tls import ACTIVATOR_MATCH_KEY, ACTIVATOR_MATCH_VALUE
from meshline import wire
from tests.controlplane.translate.cases import COLD_AND_DEACTIVATED

CLUSTERS = (
    "fraud.production.grpc",
    "fraud.production.http",
    "fraud.production~local.grpc",
    "fraud.production~local.http",
)


def _activator_context(gateway: GatewayIR, cluster: str) -> tls_pb2.UpstreamTlsContext:
    resources = translate_gateway(gateway)
    [match] = [
        m for m in resources.clusters[cluster].transport_socket_matches if m.name == "activator"
    ]
    assert dict(match.match) == {ACTIVATOR_MATCH_KEY: ACTIVATOR_MATCH_VALUE}
    context = tls_pb2.UpstreamTlsContext()
    match.transport_socket.typed_config.Unpack(context)
    return context


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_cluster_reaches_the_activator_as_the_control_plane(cluster: str) -> None:
    common = _activator_context(COLD_AND_DEACTIVATED, cluster).common_tls_context
    [san] = (
        common.combined_validation_context.default_validation_context.match_typed_subject_alt_names
    )
    assert san.san_type == common_pb2.SubjectAltNameMatcher.URI
    assert san.matcher.exact == wire.CONTROLPLANE_SPIFFE_ID
    assert common.combined_validation_context.validation_context_sds_secret_config.name == (
        "meshline-mesh-ca"
    )
    # The gateway's own certificate: the activator asks for it.
    assert [c.name for c in common.tls_certificate_sds_secret_configs] == [
        "meshline-gateway-certificate"
    ]
    assert common.tls_params.tls_minimum_protocol_version == common_pb2.TlsParameters.TLSv1_3
    assert list(common.alpn_protocols) == (["h2"] if cluster.endswith(".grpc") else ["http/1.1"])


def test_only_the_activator_host_selects_its_socket() -> None:
    resources = translate_gateway(COLD_AND_DEACTIVATED)
    for cluster in CLUSTERS:
        for locality in resources.endpoints[cluster].endpoints:
            for lb in locality.lb_endpoints:
                selected = lb.metadata.filter_metadata.get(
                    wellknown.TRANSPORT_SOCKET_MATCH_METADATA
                )
                if lb.endpoint.hostname == "activator":
                    assert selected is not None
                    assert dict(selected) == {ACTIVATOR_MATCH_KEY: ACTIVATOR_MATCH_VALUE}
                else:
                    assert selected is None or ACTIVATOR_MATCH_KEY not in dict(selected)
        # Health checks use the socket of the host they probe.
        check = resources.clusters[cluster].health_checks[0]
        assert not check.HasField("transport_socket_match_criteria")


def test_waking_up_changes_endpoints_not_clusters() -> None:
    (route, paused) = COLD_AND_DEACTIVATED.routes
    warm_backend = dataclasses.replace(
        route.main,
        tiers=tuple(t for t in route.main.tiers if t.kind != TIER_ACTIVATOR),
        wakes="",
    )
    warm = dataclasses.replace(
        COLD_AND_DEACTIVATED,
        routes=(dataclasses.replace(route, backends=(warm_backend,)), paused),
    )
    cold, woken = translate_gateway(COLD_AND_DEACTIVATED), translate_gateway(warm)
    assert cold.clusters == woken.clusters
    assert cold.endpoints != woken.endpoints


def test_no_activator_socket_without_the_gateways_certificate() -> None:
    """build_network gives such a gateway no activator tier: the activator would refuse it."""
    plain = dataclasses.replace(COLD_AND_DEACTIVATED, peer=PeerPath())
    resources = translate_gateway(plain)
    for cluster in CLUSTERS:
        assert not resources.clusters[cluster].transport_socket_matches
