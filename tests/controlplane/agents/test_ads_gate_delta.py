"""Incremental ADS behind the mesh port's gate, as `meshline controlplane` wires it (the
fixture of test_certificate_of_record.py: real store, CA, AdsGate over the real AdsServer,
raw clients holding real certificates): the same checks as state of the world. The first
request's node id must be the certificate's region, the certificate must be the region's
certificate of record, and a join ends delta streams opened with an earlier certificate.
"""

from __future__ import annotations

import grpc
import pytest

from controlplane.xds import CLUSTER
from tests.controlplane.agents import test_certificate_of_record as record
from tests.controlplane.xds.delta_client import DeltaClient

pytestmark = pytest.mark.timeout(60)

cp = record.cp  # the same control plane fixture
ControlPlane = record.ControlPlane


async def _delta_envoy(cp: ControlPlane, held: record.Held, node: str = "eu") -> DeltaClient:
    """A delta stream of `node` holding `held`, after its first CDS request."""
    client = DeltaClient(cp.mesh(held), node)
    await client.subscribe(CLUSTER)
    return client


async def _refusal(client: DeltaClient) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.recv()
    return refused.value.code(), refused.value.details() or ""


async def test_delta_ads_serves_the_certificates_region_only(cp: ControlPlane) -> None:
    held = await cp.join(cp.token())
    client = await _delta_envoy(cp, held)
    first = await client.recv()
    assert first.type_url == CLUSTER and first.nonce  # eu's (empty) configuration
    await client.close()

    other = await _delta_envoy(cp, held, node="us")
    code, details = await _refusal(other)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "fetching Envoy configuration (delta ADS) of node 'us' by region eu" in details
    assert "the client certificate is region 'eu's" in details


async def test_delta_ads_refuses_a_replaced_certificate_and_a_join_ends_its_stream(
    cp: ControlPlane,
) -> None:
    old = await cp.join(cp.token())
    stream = await _delta_envoy(cp, old)
    await stream.recv()
    new = await cp.renew(old)
    cp.later(record.OVERLAP.total_seconds())
    code, details = await _refusal(await _delta_envoy(cp, old))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert f"the region's certificate is {new.serial}" in details

    # The region joins again (its agent lost its files): the stream opened with the earlier
    # certificate is ended, as a state-of-the-world one is.
    cp.later(record.LIFETIME.total_seconds() + 60)
    await cp.join(cp.token())
    code, details = await _refusal(stream)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details == "eu joined again"  # the reason the fixture's join gives
