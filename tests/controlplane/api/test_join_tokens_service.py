"""RegionService's join-token calls through a real grpc.aio server and the generated stub: the
secret answered once (and only its hash stored), every bad field named with nothing stored,
revocation, and each region's certificate in its status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from controlplane.api.servicers import RegionServicer
from controlplane.store import Store, wrap
from controlplane.store.join_tokens import (
    JoinTokenRefusedError,
    list_join_tokens,
    verify_join_token,
)
from controlplane.store.region_certificates import RegionCertificate, record_certificate
from meshline import join_token
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import (
    Deployment,
    DeploymentStatus,
    FlavorSet,
    JoinTokenSpec,
    Region,
    RegionSpec,
    RegionStatus,
)


class AgentlessStatus:
    """No agent connected anywhere: the status the data plane would answer."""

    def deployment_status(self, dep: Deployment) -> DeploymentStatus:
        return DeploymentStatus()

    def region_status(self, region: Region) -> RegionStatus:
        return RegionStatus(agent_connected=False)


@dataclass
class World:
    store: Store
    path: Path
    regions: api_pb2_grpc.RegionServiceStub


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = Store.open(tmp_path / "meshline.db")
    server = grpc.aio.server()
    servicer = RegionServicer(store, AgentlessStatus())
    api_pb2_grpc.add_RegionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield World(store, tmp_path, api_pb2_grpc.RegionServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(None)
        store.close()


def _create_request(region: str = "eu", **kwargs: object) -> api.CreateJoinTokenRequest:
    facts = RegionSpec(country="de", continent="eu", flavors=FlavorSet(cpu=["c1", "c1"]))
    return api.CreateJoinTokenRequest(
        spec=JoinTokenSpec(region=region, facts=facts),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_create_answers_the_secret_once(world: World) -> None:
    before = time.time()
    reply = await world.regions.CreateJoinToken(_create_request(expires_in_s=3600))
    text = join_token.parse(reply.secret)
    token = reply.token
    assert token.metadata.name == text.token_id and token.status.phase == "Active"
    assert token.spec.region == "eu" and token.status.uses == 0
    facts = token.spec.facts
    assert (facts.country, facts.continent, list(facts.flavors.cpu)) == ("DE", "EU", ["c1"])
    assert token.spec.expires_at.endswith("Z")
    stored = verify_join_token(world.store, text.token_id, text.secret, before)
    assert (
        stored.expires_at is not None and before + 3599 <= stored.expires_at <= time.time() + 3601
    )
    listed = await world.regions.ListJoinTokens(api.ListJoinTokensRequest())
    assert [t.metadata.name for t in listed.tokens] == [text.token_id]
    assert text.secret.encode() not in listed.SerializeToString()
    for path in world.path.iterdir():
        assert text.secret.encode() not in path.read_bytes(), path


async def test_a_token_may_never_expire(world: World) -> None:
    reply = await world.regions.CreateJoinToken(_create_request())
    assert reply.token.spec.expires_at == ""
    assert list_join_tokens(world.store)[0].expires_at is None


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (_create_request(region="EU"), "spec.region: 'EU' is not a DNS-1123 label"),
        (_create_request(region=""), "spec.region: must not be empty"),
        (
            api.CreateJoinTokenRequest(
                spec=JoinTokenSpec(region="eu", facts=RegionSpec(country="XX1", continent="ZZ"))
            ),
            "spec.facts.country: 'XX1' is not an ISO 3166-1 alpha-2 country code such as DE\n"
            "spec.facts.continent: 'ZZ' is not a continent code",
        ),
        (
            api.CreateJoinTokenRequest(
                spec=JoinTokenSpec(region="eu", facts=RegionSpec(max_replicas=-1))
            ),
            "spec.facts.max_replicas: must be between 0 (unlimited) and 100000, got -1",
        ),
        (_create_request(expires_in_s=-5), "expires_in_s: must be 0 or more seconds, not -5"),
        (
            _create_request(expires_in_s=float("nan")),
            "expires_in_s: must be 0 or more seconds, not nan",
        ),
        (
            _create_request(expires_in_s=400 * 86400),
            "expires_in_s: 3.456e+07 seconds is too long (at most 365 days; 0 = never)",
        ),
        (
            api.CreateJoinTokenRequest(
                spec=JoinTokenSpec(region="eu", expires_at="2001-01-01T00:00:00Z")
            ),
            "spec.expires_at: 2001-01-01T00:00:00Z is in the past",
        ),
        (
            api.CreateJoinTokenRequest(
                spec=JoinTokenSpec(region="eu", expires_at="tomorrow"), expires_in_s=60
            ),
            "expires_in_s: give expires_in_s or spec.expires_at, not both",
        ),
    ],
)
async def test_bad_requests_name_the_field_and_store_nothing(
    world: World, request_: api.CreateJoinTokenRequest, expected: str
) -> None:
    revision = world.store.revision
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.regions.CreateJoinToken(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in str(caught.value.details())
    assert list_join_tokens(world.store) == [] and world.store.revision == revision


async def test_list_by_region(world: World) -> None:
    eu = (await world.regions.CreateJoinToken(_create_request("eu"))).token.metadata.name
    us = (await world.regions.CreateJoinToken(_create_request("us"))).token.metadata.name
    listed = await world.regions.ListJoinTokens(api.ListJoinTokensRequest(region="us"))
    assert [t.metadata.name for t in listed.tokens] == [us]
    everything = await world.regions.ListJoinTokens(api.ListJoinTokensRequest())
    assert {t.metadata.name for t in everything.tokens} == {eu, us}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.regions.ListJoinTokens(api.ListJoinTokensRequest(region="Bad Region"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(caught.value.details()).startswith("region: 'Bad Region' is not a DNS-1123")


async def test_revoke(world: World) -> None:
    reply = await world.regions.CreateJoinToken(_create_request())
    name = reply.token.metadata.name
    revoked = await world.regions.RevokeJoinToken(api.RevokeJoinTokenRequest(name=name))
    assert revoked.token.status.phase == "Revoked" and revoked.token.status.revoked_at
    text = join_token.parse(reply.secret)
    assert list_join_tokens(world.store)[0].revoked_at is not None
    with pytest.raises(JoinTokenRefusedError, match="was revoked"):
        verify_join_token(world.store, text.token_id, text.secret, time.time())


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("0000beef", grpc.StatusCode.NOT_FOUND, "join token '0000beef' not found"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "name: the join token's id is required"),
        ("eu", grpc.StatusCode.INVALID_ARGUMENT, "name: 'eu' is not a join token id"),
    ],
)
async def test_revoke_refusals(
    world: World, name: str, code: grpc.StatusCode, expected: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.regions.RevokeJoinToken(api.RevokeJoinTokenRequest(name=name))
    assert caught.value.code() == code
    assert str(caught.value.details()).startswith(expected)


async def test_a_regions_certificate_shows_in_its_status(world: World) -> None:
    for name in ("eu", "us"):
        region = Region()
        region.metadata.name = name
        world.store.apply([wrap(region)])
    record_certificate(world.store, RegionCertificate("eu", "4d2f", 1_800_000_000.0, 0.0))
    listed = await world.regions.ListRegions(api.ListRegionsRequest())
    status = {r.metadata.name: r.status for r in listed.regions}
    assert (status["eu"].certificate_expires_at, status["eu"].certificate_serial) == (
        "2027-01-15T08:00:00Z",
        "4d2f",
    )
    assert (status["us"].certificate_expires_at, status["us"].certificate_serial) == ("", "")
    got = await world.regions.GetRegion(api.GetRegionRequest(name="eu"))
    assert got.region.status.certificate_serial == "4d2f"
    assert not got.region.status.agent_connected  # the data plane's status is kept
