"""Status of the peer path's secrets: the gateway certificate a region shows is the one its
Envoy ACKed, and a region whose Envoy NACKed its secrets is never Ready.

A raw ADS client plays the region's Envoy against the real AdsServer (as in test_status).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from controlplane.agents.registry import AgentRegistry
from controlplane.ir.model import GatewayIR, PeerPath
from controlplane.pki.gateway import issue_gateway_certificate
from controlplane.reconcile.identities import gateway_tls
from controlplane.status import CDS, EDS, LDS, RDS, SDS, LiveStatus
from controlplane.xds import EXTENSION_CONFIG as ECDS
from controlplane.xds import SnapshotCache
from meshline.v1 import resources_pb2
from tests.controlplane.test_status import STATE, Rebuilds, _agent, _deployment, _gateway
from tests.controlplane.xds.ads_client import AdsClient, eventually
from tests.harness.peer_tls import new_ca

Connect = Callable[[str], Awaitable[AdsClient]]
CA = new_ca()
SECRET_NAMES = ["meshline-gateway-certificate", "meshline-mesh-ca"]


def _with_certificate(gateway: GatewayIR) -> tuple[GatewayIR, str]:
    """`gateway` with a peer listener and a fresh certificate; that certificate's serial."""
    issued = issue_gateway_certificate(CA, "eu", datetime.now(UTC), timedelta(hours=1))
    tls = gateway_tls(issued, CA.bundle_pem.decode())
    return replace(gateway, peer=PeerPath("127.0.0.1", 8443, tls, ("us",))), issued.facts.serial


async def _sync(client: AdsClient, cache: SnapshotCache) -> None:
    """Subscribe to every type (secrets first, as Envoy asks once clusters name them) and ACK."""
    snapshot = cache.snapshot("eu")
    assert snapshot is not None
    for type_url in (CDS, EDS, SDS, ECDS, LDS, RDS):
        named = type_url not in (CDS, LDS)
        names = sorted(snapshot.types[type_url].resources) if named else []
        await client.request(type_url, names)
        await client.ack(await client.recv(), names)


def _region() -> resources_pb2.Region:
    region = resources_pb2.Region()
    region.metadata.name = "eu"
    return region


async def test_region_shows_the_acked_certificate_and_is_not_ready_after_a_secret_nack(
    cache: SnapshotCache, connect: Connect
) -> None:
    registry = AgentRegistry()
    _agent(registry)
    rebuilds = Rebuilds(cache, STATE)
    status = LiveStatus(cache, registry, rebuilds)
    first, first_serial = _with_certificate(_gateway(healthy=True))
    rebuilds.push(first)
    client = await connect("eu")
    await _sync(client, cache)
    await eventually(lambda: status.deployment_status(_deployment()).phase == "Ready", "Ready")
    shown = status.region_status(_region())
    assert shown.gateway_healthy
    assert f"serial {first_serial}, expires " in shown.acked_versions["gateway certificate"]

    # A rotation the region's Envoy refuses: the old certificate is still what it shows, and
    # nothing there is Ready.
    second, second_serial = _with_certificate(_gateway(healthy=True))
    rebuilds.push(second)
    response = await client.recv()
    assert response.type_url == SDS  # a rotated secret goes first
    await client.nack(response, "Failed to load private key from <inline>", SECRET_NAMES)

    def nacked() -> bool:
        return cache.node_status("eu").types[SDS].nack is not None

    await eventually(nacked, "secret NACK recorded")
    failed = status.deployment_status(_deployment())
    assert failed.phase == "Failed", failed
    assert "Envoy rejected secrets" in failed.message
    assert "Failed to load private key" in failed.regions[0].nack_error
    region = status.region_status(_region())
    assert not region.gateway_healthy
    assert f"serial {first_serial}," in region.acked_versions["gateway certificate"]
    assert second_serial not in region.acked_versions["gateway certificate"]

    # The next certificate is taken: Ready again, showing it.
    third, third_serial = _with_certificate(_gateway(healthy=True))
    rebuilds.push(third)
    response = await client.recv()
    assert response.type_url == SDS
    await client.ack(response, SECRET_NAMES)
    await eventually(lambda: status.deployment_status(_deployment()).phase == "Ready", "Ready")
    shown = status.region_status(_region())
    assert shown.gateway_healthy
    assert f"serial {third_serial}," in shown.acked_versions["gateway certificate"]
