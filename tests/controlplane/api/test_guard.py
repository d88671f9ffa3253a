"""The management API behind its guard, through a real grpc.aio server, real stubs and a real
store: every change refused without a credential, with a bad one and with a role too small
(the right code, nothing stored changed, the refusal in the audit log); what each role sees;
escalation through keys; the audit of allowed changes; and what stays open."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controlplane.api import add_api_to_server
from controlplane.api.key_tokens import KeyClaims, mint_key
from controlplane.api.method_rules import RULES
from controlplane.rollout import RolloutController
from controlplane.store import Store
from controlplane.store.artifacts import ArtifactStore
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import ApiKeySpec, JoinTokenSpec, ModelVersion
from tests.controlplane.api.test_servicers import StaticStatusProvider
from tests.controlplane.store.builders import (
    deployment,
    environment,
    model,
    model_file,
    region,
)
from tests.harness.credentials import admin_aio_channel, guarded_server

# The store's tables a refused call must leave exactly as they were (the audit log records the
# refusal on purpose; sqlite_sequence counts its rows).
IGNORED_TABLES = ("audit_events", "sqlite_sequence")


@dataclass
class Stubs:
    apply: api_pb2_grpc.ApplyServiceStub
    models: api_pb2_grpc.ModelServiceStub
    environments: api_pb2_grpc.EnvironmentServiceStub
    deployments: api_pb2_grpc.DeploymentServiceStub
    regions: api_pb2_grpc.RegionServiceStub
    rollouts: api_pb2_grpc.RolloutServiceStub
    keys: api_pb2_grpc.KeyServiceStub
    audit: api_pb2_grpc.AuditServiceStub
    identity: api_pb2_grpc.IdentityServiceStub

    @staticmethod
    def on(channel: grpc.aio.Channel) -> Stubs:
        return Stubs(
            api_pb2_grpc.ApplyServiceStub(channel),
            api_pb2_grpc.ModelServiceStub(channel),
            api_pb2_grpc.EnvironmentServiceStub(channel),
            api_pb2_grpc.DeploymentServiceStub(channel),
            api_pb2_grpc.RegionServiceStub(channel),
            api_pb2_grpc.RolloutServiceStub(channel),
            api_pb2_grpc.KeyServiceStub(channel),
            api_pb2_grpc.AuditServiceStub(channel),
            api_pb2_grpc.IdentityServiceStub(channel),
        )


@dataclass
class World:
    store: Store
    address: str
    admin: Stubs
    tokens: dict[str, str]  # principal name -> its secret
    channels: list[grpc.aio.Channel]

    def as_(self, who: str | None) -> Stubs:
        """Stubs calling as key `who`; None: no credential; "bad": a token no key has."""
        token = "" if who is None else self.tokens[who]
        channel = admin_aio_channel(self.address, token)
        self.channels.append(channel)
        return Stubs.on(channel)

    async def events(self, **filters: Any) -> list[Any]:
        reply = await self.admin.audit.ListAuditEvents(api.ListAuditEventsRequest(**filters))
        return list(reply.events)


# Keys made for the tests: name -> (environment, roles)
KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "viewer": ("", ("viewer",)),
    "staging-viewer": ("staging", ("viewer",)),
    "staging-deployer": ("staging", ("deployer",)),
    "deployer": ("", ("deployer",)),
    "inference-only": ("production", ()),
    "prod-key": ("production", ("deployer",)),
}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = Store.open(tmp_path / "meshline.db")
    server, admin_token = guarded_server(store, tmp_path)
    artifacts = ArtifactStore(tmp_path / "artifacts")
    add_api_to_server(
        server, store, StaticStatusProvider(), RolloutController(store), artifacts=artifacts
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    admin_channel = admin_aio_channel(address, admin_token)
    world = World(store, address, Stubs.on(admin_channel), {}, [admin_channel])
    try:
        path = model_file(tmp_path)
        await world.admin.apply.Apply(
            api.ApplyRequest(
                resources=[
                    region("eu", "DE"),
                    environment("production"),
                    environment("staging"),
                    model("m", [("v1", path), ("v2", path)]),
                    deployment("fraud", "m", "v1"),
                    deployment("fraud", "m", "v1", environment_name="staging"),
                ]
            )
        )
        for name, (env, roles) in KEYS.items():
            spec = ApiKeySpec(environment=env, roles=roles)
            reply = await world.admin.keys.CreateKey(api.CreateKeyRequest(name=name, spec=spec))
            world.tokens[name] = reply.secret
        # a well-formed token that no key of this store has
        world.tokens["bad"] = mint_key(KeyClaims("viewer", 1_800_000_000)).secret
        world.tokens["garbage"] = "not-a-token"
        created = await world.admin.regions.CreateJoinToken(
            api.CreateJoinTokenRequest(spec=JoinTokenSpec(region="eu"))
        )
        world.tokens["join-token-id"] = created.token.metadata.name
        yield world
    finally:
        for channel in world.channels:
            await channel.close()
        await server.stop(None)
        store.close()


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the API writes (read through a connection of its own)."""
    conn = sqlite3.connect(store.path)
    try:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in IGNORED_TABLES
        ]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


Call = Callable[[Stubs, World], Awaitable[Any]]


async def _push(s: Stubs, w: World) -> Any:
    async def requests() -> AsyncIterator[api.PushModelVersionRequest]:
        header = api.PushModelVersionHeader(
            model="m", version=ModelVersion(name="v9", runtime="torch"), sha256="0" * 64
        )
        yield api.PushModelVersionRequest(header=header)
        yield api.PushModelVersionRequest(chunk=b"x")

    return await s.models.PushModelVersion(requests())


# Every mutating RPC, with a request that would change something, and the keys whose role is
# too small for it (besides no credential and bad ones, refused for every call).
MUTATIONS: dict[str, tuple[Call, tuple[str, ...]]] = {
    "ApplyService/Apply": (
        lambda s, w: s.apply.Apply(
            api.ApplyRequest(resources=[deployment("fraud", "m", "v2", replicas=3)])
        ),
        ("viewer", "staging-deployer", "inference-only"),
    ),
    "ApplyService/Delete": (
        lambda s, w: s.apply.Delete(
            api.DeleteRequest(
                targets=[api.ResourceRef(kind="Deployment", name="fraud", environment="production")]
            )
        ),
        ("viewer", "staging-deployer"),
    ),
    "ModelService/DeleteModel": (
        lambda s, w: s.models.DeleteModel(api.DeleteModelRequest(name="m")),
        ("viewer", "staging-viewer"),
    ),
    "ModelService/PushModelVersion": (_push, ("viewer", "inference-only")),
    "ModelService/DeleteModelVersion": (
        lambda s, w: s.models.DeleteModelVersion(
            api.DeleteModelVersionRequest(model="m", version="v2")
        ),
        ("viewer", "staging-viewer"),
    ),
    "EnvironmentService/DeleteEnvironment": (
        lambda s, w: s.environments.DeleteEnvironment(api.DeleteEnvironmentRequest(name="staging")),
        ("deployer", "staging-deployer"),
    ),
    "DeploymentService/SetDeploymentActive": (
        lambda s, w: s.deployments.SetDeploymentActive(
            api.SetDeploymentActiveRequest(name="fraud", active=False)
        ),
        ("viewer", "staging-deployer"),
    ),
    "DeploymentService/DeleteDeployment": (
        lambda s, w: s.deployments.DeleteDeployment(api.DeleteDeploymentRequest(name="fraud")),
        ("viewer", "staging-deployer"),
    ),
    "DeploymentService/ReleaseDeployment": (
        lambda s, w: s.deployments.ReleaseDeployment(
            api.ReleaseDeploymentRequest(
                name="fraud", source_environment="staging", target_environment="production"
            )
        ),
        ("viewer", "staging-deployer"),
    ),
    "RegionService/DeleteRegion": (
        lambda s, w: s.regions.DeleteRegion(api.DeleteRegionRequest(name="eu")),
        ("deployer", "viewer"),
    ),
    "RegionService/CreateJoinToken": (
        lambda s, w: s.regions.CreateJoinToken(
            api.CreateJoinTokenRequest(spec=JoinTokenSpec(region="eu"))
        ),
        ("deployer", "viewer"),
    ),
    "RegionService/RevokeJoinToken": (
        lambda s, w: s.regions.RevokeJoinToken(
            api.RevokeJoinTokenRequest(name=w.tokens["join-token-id"])
        ),
        ("deployer",),
    ),
    "RolloutService/ControlRollout": (
        lambda s, w: s.rollouts.ControlRollout(
            api.ControlRolloutRequest(name="fraud", action="undo")
        ),
        ("viewer", "staging-deployer"),
    ),
    "RolloutService/RetryRollout": (
        lambda s, w: s.rollouts.RetryRollout(api.RetryRolloutRequest(name="fraud")),
        ("viewer", "staging-deployer"),
    ),
    "KeyService/CreateKey": (
        lambda s, w: s.keys.CreateKey(
            api.CreateKeyRequest(name="new", spec=ApiKeySpec(environment="production"))
        ),
        ("viewer", "staging-deployer", "inference-only"),
    ),
    "KeyService/RevokeKey": (
        lambda s, w: s.keys.RevokeKey(api.RevokeKeyRequest(name="prod-key")),
        ("viewer", "inference-only"),
    ),
    "KeyService/RotateKey": (
        lambda s, w: s.keys.RotateKey(api.RotateKeyRequest(name="prod-key")),
        ("viewer",),
    ),
}
# Keys with a role, but not in the environment of the stored object the call names: told it
# is not found (the audit log keeps the real reason).
CONCEALED: dict[str, tuple[str, ...]] = {
    "KeyService/RevokeKey": ("staging-deployer",),
    "KeyService/RotateKey": ("staging-deployer",),
}


def test_every_mutating_rpc_is_in_the_refusal_table() -> None:
    """A new RPC that changes something joins MUTATIONS, or this fails."""

    def changes(method: str) -> bool:
        rule = RULES[method]
        service, name = method.lstrip("/").rsplit("/", 1)
        stub_service = api.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]]
        request = stub_service.methods_by_name[name].input_type._concrete_class()
        return bool(rule.changes(request))

    mutating = {m.removeprefix("/meshline.v1.") for m in RULES if changes(m)}
    assert mutating == set(MUTATIONS)


@pytest.mark.parametrize("method", sorted(MUTATIONS))
async def test_every_change_is_refused_without_the_role_and_stores_nothing(
    world: World, method: str
) -> None:
    call, too_small = MUTATIONS[method]
    cases: list[tuple[str | None, grpc.StatusCode, str, str, str]] = [
        (None, grpc.StatusCode.UNAUTHENTICATED, "anonymous", "no credential", "no credential"),
        ("bad", grpc.StatusCode.UNAUTHENTICATED, "anonymous", *["unknown API key"] * 2),
        ("garbage", grpc.StatusCode.UNAUTHENTICATED, "anonymous", *["malformed token"] * 2),
        *(
            (who, grpc.StatusCode.PERMISSION_DENIED, who, f"key '{who}'", f"key '{who}'")
            for who in too_small
        ),
        *(
            (who, grpc.StatusCode.NOT_FOUND, who, "API key 'prod-key' not found", f"key '{who}'")
            for who in CONCEALED.get(method, ())
        ),
    ]
    for who, code, principal, message, recorded in cases:
        before = dump(world.store)
        last = (await world.events())[-1].sequence
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(world.as_(who), world)
        assert caught.value.code() == code, (who, caught.value.details())
        details = caught.value.details() or ""
        assert message in details, (who, details)
        if who is not None:
            assert world.tokens[who] not in details  # never echoed
        assert dump(world.store) == before, f"{method} as {who} changed the store"
        events = await world.events(after_sequence=last)
        assert events, f"{method} as {who}: no audit event"
        for event in events:
            assert (event.principal, event.outcome, event.code) == (principal, "refused", code.name)
            assert event.method == f"/meshline.v1.{method}"
            assert recorded in event.detail
            if who is not None:
                assert world.tokens[who] not in event.detail


async def test_a_refusal_names_the_verb_kind_name_environment_and_the_callers_roles(
    world: World,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.as_("staging-deployer").apply.Apply(
            api.ApplyRequest(resources=[deployment("fraud", "m", "v2")])
        )
    assert caught.value.details() == (
        "key 'staging-deployer' (deployer in staging) may not apply Deployment 'fraud' in "
        "environment 'production'"
    )
    (event,) = await world.events(principal="staging-deployer")
    assert (event.verb, event.kind, event.name, event.environment) == (
        "apply",
        "Deployment",
        "fraud",
        "production",
    )


async def test_deployers_cannot_escalate_through_keys(world: World) -> None:
    ci = world.as_("staging-deployer")
    refused = [
        api.CreateKeyRequest(
            name="sneaky", spec=ApiKeySpec(environment="staging", roles=["admin"])
        ),
        api.CreateKeyRequest(name="wide", spec=ApiKeySpec(environment="", roles=["viewer"])),
        api.CreateKeyRequest(
            name="elsewhere", spec=ApiKeySpec(environment="production", roles=["deployer"])
        ),
    ]
    for request in refused:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ci.keys.CreateKey(request)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "in environment 'production'" in str(caught.value.details())
    # the admin key itself: neither rotated (its secret) nor revoked by a deployer of all
    for call in (
        world.as_("deployer").keys.RotateKey(api.RotateKeyRequest(name="admin")),
        world.as_("deployer").keys.RevokeKey(api.RevokeKeyRequest(name="admin")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "role admin, above the caller's own (deployer)" in str(caught.value.details())
    # within its own environment and role, a deployer makes keys
    made = await ci.keys.CreateKey(
        api.CreateKeyRequest(name="ci-2", spec=ApiKeySpec(environment="staging", roles=["viewer"]))
    )
    assert list(made.key.spec.roles) == ["viewer"]
    who = await world.as_("staging-deployer").identity.WhoAmI(api.WhoAmIRequest())
    assert who.principal == "staging-deployer"
    # and the new key works with exactly what it was given
    world.tokens["ci-2"] = made.secret
    ci2 = await world.as_("ci-2").identity.WhoAmI(api.WhoAmIRequest())
    assert [(g.role, g.environment) for g in ci2.grants] == [("viewer", "staging")]


async def test_allowed_changes_are_audited_with_what_changed(world: World) -> None:
    deployer = world.as_("deployer")
    last = (await world.events())[-1].sequence
    await deployer.apply.Apply(
        api.ApplyRequest(resources=[deployment("fraud", "m", "v2", replicas=3)])
    )
    await deployer.deployments.SetDeploymentActive(
        api.SetDeploymentActiveRequest(name="fraud", active=False)
    )
    await deployer.apply.Apply(
        api.ApplyRequest(resources=[deployment("fraud", "m", "v2", replicas=3)], dry_run=True)
    )  # a plan: not recorded
    rotated = await deployer.keys.RotateKey(api.RotateKeyRequest(name="prod-key"))
    events = await world.events(after_sequence=last)
    assert [(e.principal, e.verb, e.kind, e.name, e.environment, e.outcome) for e in events] == [
        ("deployer", "apply", "Deployment", "fraud", "production", "allowed"),
        ("deployer", "deactivate", "Deployment", "fraud", "production", "allowed"),
        ("deployer", "key-rotate", "ApiKey", "prod-key", "production", "allowed"),
    ]
    assert events[0].detail == "configured: version v1 -> v2, replicas 1 -> 3"
    assert events[1].detail == "deactivated"
    assert rotated.secret not in events[2].detail and rotated.key.status.key_id in events[2].detail
    assert all(e.time.endswith("Z") and e.code == "" for e in events)


async def test_an_invalid_change_is_audited_as_failed(world: World) -> None:
    last = (await world.events())[-1].sequence
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.as_("deployer").apply.Apply(
            api.ApplyRequest(resources=[deployment("fraud", "m", "v7")])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (event,) = await world.events(after_sequence=last)
    assert (event.outcome, event.code, event.principal) == (
        "failed",
        "INVALID_ARGUMENT",
        "deployer",
    )
    assert "has no version 'v7'" in event.detail


async def test_scoped_callers_see_only_their_environments(world: World) -> None:
    peek = world.as_("staging-viewer")
    listed = await peek.deployments.ListDeployments(api.ListDeploymentsRequest())
    assert {(d.metadata.name, d.spec.environment) for d in listed.deployments} == {
        ("fraud", "staging")
    }
    keys = await peek.keys.ListKeys(api.ListKeysRequest())
    assert {k.metadata.name for k in keys.keys} == {"staging-viewer", "staging-deployer"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await peek.deployments.GetDeployment(api.GetDeploymentRequest(name="fraud"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await peek.deployments.ListDeployments(api.ListDeploymentsRequest(environment="production"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # kinds every environment shares are visible to any role
    assert [
        m.metadata.name for m in (await peek.models.ListModels(api.ListModelsRequest())).models
    ] == ["m"]
    assert (await peek.regions.ListRegions(api.ListRegionsRequest())).regions
    # the audit log: its environments and the shared kinds only
    with pytest.raises(grpc.aio.AioRpcError):
        await world.as_("staging-deployer").apply.Apply(
            api.ApplyRequest(resources=[deployment("fraud", "m", "v2")])
        )
    await world.as_("staging-deployer").apply.Apply(
        api.ApplyRequest(resources=[deployment("fraud", "m", "v2", environment_name="staging")])
    )
    seen = (await peek.audit.ListAuditEvents(api.ListAuditEventsRequest())).events
    assert seen and {e.environment for e in seen} <= {"staging", ""}
    assert all(
        e.environment == "staging" or e.kind in ("Model", "ModelVersion", "Region") for e in seen
    )
    everything = await world.events()
    assert any(e.environment == "production" for e in everything)


async def test_what_stays_open_and_what_needs_only_a_valid_credential(world: World) -> None:
    anonymous = world.as_(None)
    # health answers anyone
    channel = grpc.aio.insecure_channel(world.address)
    world.channels.append(channel)
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # reads need a credential too
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await anonymous.deployments.ListDeployments(api.ListDeploymentsRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await anonymous.identity.WhoAmI(api.WhoAmIRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # a key with no management role: who it is, and nothing else
    plain = world.as_("inference-only")
    who = await plain.identity.WhoAmI(api.WhoAmIRequest())
    assert (who.principal, who.kind, list(who.grants)) == ("inference-only", "key", [])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await plain.models.ListModels(api.ListModelsRequest())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # an artifact download needs a credential here too (agents download on the mesh port, with
    # their region's certificate)
    missing = api.DownloadArtifactRequest(sha256="a" * 64)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in anonymous.models.DownloadArtifact(missing):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in world.as_("bad").models.DownloadArtifact(missing):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_managed_method_without_a_rule_is_refused(tmp_path: Path) -> None:
    """Secure by default at run time: a method no rule names never reaches its handler."""
    reached: list[bytes] = []

    async def handler(request: bytes, context: Any) -> bytes:
        reached.append(request)
        return b""

    with Store.open(tmp_path / "s.db") as store:
        server, token = guarded_server(store, tmp_path)
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "meshline.v1.ApplyService",
                    {"Unruled": grpc.unary_unary_rpc_method_handler(handler)},
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with admin_aio_channel(f"127.0.0.1:{port}", token) as channel:
                method = channel.unary_unary("/meshline.v1.ApplyService/Unruled")
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await method(b"")
        finally:
            await server.stop(None)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "has no authorization rule" in str(caught.value.details())
    assert reached == []


async def test_a_key_outside_the_callers_environments_is_not_found_like_a_missing_one(
    world: World,
) -> None:
    """A scoped caller cannot probe key names or their environments: a key of another
    environment and no key at all get the very same NOT_FOUND, the one an admin gets for a
    missing key; a caller with no role at all is refused without the key's environment."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.admin.keys.GetKey(api.GetKeyRequest(name="nope"))
    missing = (caught.value.code(), caught.value.details())
    assert missing == (grpc.StatusCode.NOT_FOUND, "API key 'nope' not found")
    before = dump(world.store)
    calls: list[tuple[str, Callable[[Stubs, str], Awaitable[Any]]]] = [
        ("staging-viewer", lambda s, name: s.keys.GetKey(api.GetKeyRequest(name=name))),
        ("staging-deployer", lambda s, name: s.keys.GetKey(api.GetKeyRequest(name=name))),
        ("staging-deployer", lambda s, name: s.keys.RevokeKey(api.RevokeKeyRequest(name=name))),
        ("staging-deployer", lambda s, name: s.keys.RotateKey(api.RotateKeyRequest(name=name))),
    ]
    for who, call in calls:
        answers = []
        for name in ("prod-key", "nope"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(world.as_(who), name)
            answers.append((caught.value.code(), caught.value.details()))
        assert answers == [
            (grpc.StatusCode.NOT_FOUND, "API key 'prod-key' not found"),
            missing,
        ], who
    # a caller with no management role: refused alike, its environment never named
    plain = []
    for name in ("prod-key", "nope"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await world.as_("inference-only").keys.RevokeKey(api.RevokeKeyRequest(name=name))
        plain.append((caught.value.code(), caught.value.details()))
    assert plain == [
        (
            grpc.StatusCode.PERMISSION_DENIED,
            f"key 'inference-only' (no management role) may not revoke ApiKey '{name}': it "
            "holds no management role",
        )
        for name in ("prod-key", "nope")
    ]
    assert dump(world.store) == before
    # its own environment's keys it sees as before
    own = await world.as_("staging-viewer").keys.GetKey(api.GetKeyRequest(name="staging-deployer"))
    assert own.key.spec.environment == "staging"
    # the audit log keeps the real reason, for those who may read production's events
    refused = await world.events(principal="staging-deployer", kind="ApiKey")
    assert [(e.verb, e.name, e.environment, e.code) for e in refused] == [
        ("key-revoke", "prod-key", "production", "NOT_FOUND"),
        ("key-revoke", "nope", "", "NOT_FOUND"),
        ("key-rotate", "prod-key", "production", "NOT_FOUND"),
        ("key-rotate", "nope", "", "NOT_FOUND"),
    ]
    assert "may not revoke ApiKey 'prod-key' in environment 'production'" in refused[0].detail


async def test_nothing_is_read_from_the_store_for_a_caller_not_authenticated(
    world: World,
) -> None:
    """The guard authenticates first: an anonymous refusal records what the request names,
    not the stored key's environment (which only an authenticated caller's check reads)."""
    last = (await world.events())[-1].sequence
    for who in (None, "bad"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await world.as_(who).keys.RevokeKey(api.RevokeKeyRequest(name="prod-key"))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError):
        await world.as_("viewer").keys.RevokeKey(api.RevokeKeyRequest(name="prod-key"))
    events = await world.events(after_sequence=last)
    assert [(e.principal, e.name, e.environment, e.code) for e in events] == [
        ("anonymous", "prod-key", "", "UNAUTHENTICATED"),
        ("anonymous", "prod-key", "", "UNAUTHENTICATED"),
        ("viewer", "prod-key", "production", "PERMISSION_DENIED"),
    ]
    assert events[0].detail.endswith("(from 127.0.0.1)")


async def test_model_version_users_of_other_environments_are_not_named(world: World) -> None:
    """A version's users, and the users that keep a model or version from being deleted, are
    named for the caller's environments only; the others are counted."""
    request = api.GetModelVersionRequest(model="m", version="v1")
    both = await world.admin.models.GetModelVersion(request)
    assert sorted(both.used_by) == [
        "deployment 'fraud' in environment 'production'",
        "deployment 'fraud' in environment 'staging'",
    ]
    for who in ("staging-viewer", "staging-deployer"):
        seen = await world.as_(who).models.GetModelVersion(request)
        assert list(seen.used_by) == ["deployment 'fraud' in environment 'staging'"], who
    before = dump(world.store)
    deployer = world.as_("staging-deployer")
    refusals = []
    for call in (
        deployer.models.DeleteModelVersion(api.DeleteModelVersionRequest(model="m", version="v1")),
        deployer.models.DeleteModel(api.DeleteModelRequest(name="m")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        refusals.append(caught.value.details())
    assert refusals == [
        "model 'm' version 'v1' is used by deployment 'fraud' in environment 'staging', "
        "1 deployment in environments you may not view; delete or change those first",
        "model 'm' is used by deployment 'fraud' in environment 'staging', 1 deployment in "
        "environments you may not view; delete or change those first",
    ]
    assert dump(world.store) == before
    # a caller of every environment is told every user, as before
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.admin.models.DeleteModel(api.DeleteModelRequest(name="m"))
    assert "deployment 'fraud' in environment 'production'" in str(caught.value.details())


async def test_a_failed_push_is_audited_by_its_first_message(world: World) -> None:
    """A client stream: the guard authorizes and audits it by the header it read first, and
    the servicer still receives that header (it answers about the digest, not a missing
    header)."""
    last = (await world.events())[-1].sequence
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _push(world.as_("deployer"), world)
    (event,) = await world.events(after_sequence=last)
    assert (event.outcome, event.code, event.principal, event.kind, event.name) == (
        "failed",
        caught.value.code().name,
        "deployer",
        "ModelVersion",
        "m:v9",
    )
    assert event.detail == caught.value.details()
    assert "than the header announced" in event.detail
