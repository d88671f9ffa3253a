"""KeyService through a real grpc.aio server on a free port and the generated stub: errors by
status code and message, and what create, rotate and revoke do to the secrets that work."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.api import add_api_to_server
from controlplane.api.keys import KeyServicer
from controlplane.store import Store
from controlplane.store.keys import active_credentials
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import ApiKey, ApiKeySpec
from tests.harness.credentials import admin_aio_channel, guarded_server

T0 = 1_800_000_000.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    store: Store
    clock: Clock
    keys: api_pb2_grpc.KeyServiceStub


def _enforcement(key: ApiKey) -> tuple[list[str], list[str]]:
    return (["eu"], ["us"]) if key.status.phase == "Active" else ([], ["eu", "us"])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = Store.open(tmp_path / "store.db")
    clock = Clock()
    server = grpc.aio.server()
    api_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(store, _enforcement, clock), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield World(store, clock, api_pb2_grpc.KeyServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(None)
        store.close()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _works(store: Store, secret: str, now: float) -> bool:
    """Whether a gateway holding the active credentials at `now` would accept `secret`."""
    header_b64, payload_b64, signature = secret.split(".")
    kid = json.loads(_unb64(header_b64))["kid"]
    for credential in active_credentials(store, now):
        if credential.key_id == kid:
            public = Ed25519PublicKey.from_public_bytes(_unb64(credential.public_key))
            public.verify(_unb64(signature), f"{header_b64}.{payload_b64}".encode())
            return True
    return False


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), caught.value.details() or ""


async def test_create_returns_the_secret_once_and_never_again(world: World) -> None:
    spec = ApiKeySpec(environment="production", deployments=["b", "a", "a"], roles=["reader"])
    reply = await world.keys.CreateKey(api.CreateKeyRequest(name="ci", spec=spec, expires_in_s=60))
    key = reply.key
    assert (key.metadata.name, key.status.phase) == ("ci", "Active")
    assert list(key.spec.deployments) == ["a", "b"]  # sorted, once each
    assert key.spec.expires_at == "2027-01-15T08:01:00Z"  # T0 + 60
    assert (list(key.status.enforced_in), list(key.status.pending_in)) == (["eu"], ["us"])
    _, payload, _ = reply.secret.split(".")
    claims = json.loads(_unb64(payload))
    assert claims["sub"] == "ci" and claims["exp"] == T0 + 60 and claims["env"] == "production"
    assert claims["jti"] == key.status.key_id
    assert _works(world.store, reply.secret, T0)
    assert not _works(world.store, reply.secret, T0 + 60)  # expired

    got = await world.keys.GetKey(api.GetKeyRequest(name="ci"))
    listed = await world.keys.ListKeys(api.ListKeysRequest())
    assert reply.secret not in str(got) + str(listed)
    assert got.key == key and list(listed.keys) == [key]

    world.clock.now = T0 + 60
    got = await world.keys.GetKey(api.GetKeyRequest(name="ci"))
    assert got.key.status.phase == "Expired"


async def test_rotate_keeps_the_old_secret_for_the_grace(world: World) -> None:
    first = await world.keys.CreateKey(api.CreateKeyRequest(name="ci"))
    world.clock.now = T0 + 10
    rotated = await world.keys.RotateKey(api.RotateKeyRequest(name="ci", grace_s=30))
    assert rotated.secret != first.secret
    status = rotated.key.status
    assert status.previous_key_id == first.key.status.key_id
    assert status.key_id != first.key.status.key_id
    assert status.previous_valid_until == "2027-01-15T08:00:40Z"  # T0 + 40
    assert _works(world.store, first.secret, T0 + 39) and _works(
        world.store, rotated.secret, T0 + 39
    )
    assert not _works(world.store, first.secret, T0 + 40)

    again = await world.keys.RotateKey(api.RotateKeyRequest(name="ci"))  # grace 0
    assert not _works(world.store, rotated.secret, T0 + 10)
    assert _works(world.store, again.secret, T0 + 10)
    assert not _works(world.store, first.secret, T0 + 10)  # only one previous secret


async def test_revoke_stops_every_secret_and_keeps_the_name(world: World) -> None:
    first = await world.keys.CreateKey(api.CreateKeyRequest(name="ci"))
    rotated = await world.keys.RotateKey(api.RotateKeyRequest(name="ci", grace_s=600))
    other = await world.keys.CreateKey(api.CreateKeyRequest(name="other"))
    revoked = await world.keys.RevokeKey(api.RevokeKeyRequest(name="ci"))
    assert revoked.key.status.phase == "Revoked" and revoked.key.status.revoked_at
    assert list(revoked.key.status.pending_in) == ["eu", "us"]
    for secret in (first.secret, rotated.secret):
        assert not _works(world.store, secret, T0)
    assert _works(world.store, other.secret, T0)
    listed = await world.keys.ListKeys(api.ListKeysRequest())
    assert [(k.metadata.name, k.status.phase) for k in listed.keys] == [
        ("ci", "Revoked"),
        ("other", "Active"),
    ]
    code, message = await _code(world.keys.CreateKey(api.CreateKeyRequest(name="ci")))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert message == (
        "API key 'ci' already exists (revoked; revoked keys keep their name: pick another name)"
    )
    code, message = await _code(world.keys.RotateKey(api.RotateKeyRequest(name="ci")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert message == "API key 'ci' is revoked: it cannot be rotated; create a new key"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (api.CreateKeyRequest(), "name: must not be empty"),
        (
            api.CreateKeyRequest(name="Bad_Name"),
            "name: 'Bad_Name' is not a DNS-1123 label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(environment="Prod")),
            "spec.environment: 'Prod' is not a DNS-1123 label",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(deployments=["ok", "no way"])),
            "spec.deployments[1]: 'no way' is not a DNS-1123 label",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(roles=["ok", ""])),
            "spec.roles[1]: must not be empty",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(roles=["read all"])),
            "spec.roles[0]: 'read all' contains a space",
        ),
        (
            api.CreateKeyRequest(name="k", expires_in_s=-5),
            "expires_in_s: must be 0 or more seconds, not -5.0",
        ),
        (
            api.CreateKeyRequest(name="k", expires_in_s=5, spec=ApiKeySpec(expires_at="x")),
            "expires_in_s: give expires_in_s or spec.expires_at, not both",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(expires_at="tomorrow")),
            "spec.expires_at: 'tomorrow' is not an RFC 3339 time",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(expires_at="2030-01-01T00:00:00")),
            "spec.expires_at: '2030-01-01T00:00:00' names no time zone",
        ),
        (
            api.CreateKeyRequest(name="k", spec=ApiKeySpec(expires_at="2020-01-01T00:00:00Z")),
            "spec.expires_at: 2020-01-01T00:00:00Z is in the past",
        ),
    ],
)
async def test_bad_create_requests_name_the_field(
    world: World, request_: api.CreateKeyRequest, message: str
) -> None:
    code, details = await _code(world.keys.CreateKey(request_))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(message)
    assert list((await world.keys.ListKeys(api.ListKeysRequest())).keys) == []


async def test_every_problem_is_named_at_once(world: World) -> None:
    spec = ApiKeySpec(environment="Prod", roles=["a b"])
    code, details = await _code(world.keys.CreateKey(api.CreateKeyRequest(name="X", spec=spec)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [line.split(":")[0] for line in details.splitlines()] == [
        "name",
        "spec.environment",
        "spec.roles[0]",
    ]


async def test_an_explicit_expiry(world: World) -> None:
    spec = ApiKeySpec(expires_at="2027-01-15T09:01:00+01:00")  # T0 + 60 in UTC
    reply = await world.keys.CreateKey(api.CreateKeyRequest(name="k", spec=spec))
    assert reply.key.spec.expires_at == "2027-01-15T08:01:00Z"
    assert json.loads(_unb64(reply.secret.split(".")[1]))["exp"] == T0 + 60


async def test_unknown_keys_and_missing_names(world: World) -> None:
    for call in (
        world.keys.GetKey(api.GetKeyRequest(name="nope")),
        world.keys.RevokeKey(api.RevokeKeyRequest(name="nope")),
        world.keys.RotateKey(api.RotateKeyRequest(name="nope")),
    ):
        assert await _code(call) == (grpc.StatusCode.NOT_FOUND, "API key 'nope' not found")
    assert await _code(world.keys.GetKey(api.GetKeyRequest())) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "name: the key's name is required",
    )
    await world.keys.CreateKey(api.CreateKeyRequest(name="k"))
    code, details = await _code(world.keys.RotateKey(api.RotateKeyRequest(name="k", grace_s=-1)))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "grace_s: must be 0 or more seconds, not -1.0",
    )
    code, details = await _code(world.keys.CreateKey(api.CreateKeyRequest(name="k")))
    assert (code, details) == (grpc.StatusCode.ALREADY_EXISTS, "API key 'k' already exists")
    code, details = await _code(world.keys.ListKeys(api.ListKeysRequest(environment="A B")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("environment: ")


async def test_list_by_environment(world: World) -> None:
    for name, env in (("prod-key", "production"), ("any-key", ""), ("dev-key", "development")):
        spec = ApiKeySpec(environment=env)
        await world.keys.CreateKey(api.CreateKeyRequest(name=name, spec=spec))
    listed = await world.keys.ListKeys(api.ListKeysRequest(environment="production"))
    assert [k.metadata.name for k in listed.keys] == ["any-key", "prod-key"]


async def test_registered_with_the_management_api(tmp_path: Path) -> None:
    """add_api_to_server serves KeyService on the same port as the other services."""

    class NoStatus:
        def deployment_status(self, dep: object) -> object:
            raise AssertionError("not asked")

        def region_status(self, region: object) -> object:
            raise AssertionError("not asked")

    with Store.open(tmp_path / "store.db") as store:
        server, token = guarded_server(store, tmp_path)
        add_api_to_server(server, store, NoStatus())  # type: ignore[arg-type]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with admin_aio_channel(f"127.0.0.1:{port}", token) as channel:
                keys = api_pb2_grpc.KeyServiceStub(channel)
                reply = await keys.CreateKey(api.CreateKeyRequest(name="k"))
                assert reply.key.status.phase == "Active"
                assert not reply.key.status.enforced_in  # no enforcement given: left empty
                assert _works(store, reply.secret, T0)
        finally:
            await server.stop(None)
