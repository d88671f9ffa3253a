"""`meshline up`'s demo key and the production environment it applies, on a real control plane."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from cli.client.api import api_client
from cli.client.credentials import API_KEY_FILE, KeySource, resolve_api_key
from cli.server.demo_key import (
    DEMO_KEY,
    DemoKeyError,
    ensure_demo_key,
    remove_key_file,
    write_key_file,
)
from cli.server.up import demo_documents
from controlplane.api.documents import parse_resource_document
from meshline.v1 import api_pb2
from tests.cli.helpers import control_plane


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with control_plane(tmp_path_factory.mktemp("cp")) as addr:
        yield addr


def test_the_demo_key_is_created_then_rotated(address: str) -> None:
    with api_client(address) as api:
        first = ensure_demo_key(api, "demo-rotated")
        key = api.keys.GetKey(api_pb2.GetKeyRequest(name="demo-rotated"), timeout=10).key
        assert key.spec.environment == "production"
        first_id = key.status.key_id
        second = ensure_demo_key(api, "demo-rotated")  # a restarted `up`: the old secret is lost
        key = api.keys.GetKey(api_pb2.GetKeyRequest(name="demo-rotated"), timeout=10).key
    assert second != first
    assert key.status.key_id != first_id
    assert key.status.previous_key_id == first_id
    # No grace: the old secret stopped when it was rotated.
    assert key.status.previous_valid_until == key.status.rotated_at


def test_a_revoked_demo_key_is_a_clear_error(address: str) -> None:
    with api_client(address) as api:
        ensure_demo_key(api, "demo-revoked")
        api.keys.RevokeKey(api_pb2.RevokeKeyRequest(name="demo-revoked"), timeout=10)
        with pytest.raises(DemoKeyError, match="cannot rotate the existing API key 'demo-revoked'"):
            ensure_demo_key(api, "demo-revoked")


def test_the_key_file_is_the_owners_alone_and_infer_finds_it(tmp_path: Path) -> None:
    path = write_key_file(tmp_path, "secret-1")
    assert path == tmp_path / API_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_key_file(tmp_path, "secret-2")  # a restart overwrites it
    key = resolve_api_key(None, tmp_path, {})
    assert (key.secret, key.source) == ("secret-2", KeySource.FILE)
    assert [p.name for p in tmp_path.iterdir()] == [API_KEY_FILE]
    remove_key_file(tmp_path)
    assert not path.exists()
    remove_key_file(tmp_path)  # already gone: fine


def test_production_needs_a_key_by_a_mandatory_access_policy(address: str, tmp_path: Path) -> None:
    text = demo_documents(tmp_path / "m.pt", ["eu", "us"])
    env_doc = next(d for d in yaml.safe_load_all(text) if d["kind"] == "Environment")
    resource = parse_resource_document(env_doc, "demo.yaml", 0)
    (policy,) = resource.environment.spec.policies
    assert policy.mode == "mandatory"
    assert policy.HasField("access")
    assert not policy.access.anonymous
    with api_client(address) as api:  # the control plane takes it as it is
        try:
            api.apply.Apply(api_pb2.ApplyRequest(resources=[resource], dry_run=True), timeout=10)
        except grpc.RpcError as exc:
            pytest.fail(f"the demo environment is refused: {exc.details()}")


def test_the_default_key_name_is_demo() -> None:
    assert DEMO_KEY == "demo"
