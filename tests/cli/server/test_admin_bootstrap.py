"""A real control plane process, restarted: it makes its admin key at the first start only.
Revoked, the admin key stays revoked after a restart (no new key, the token file untouched);
`meshline controlplane --reset-admin-token` makes one again."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from cli.client.bearer import bearer_channel
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.resources_pb2 import ApiKeySpec
from tests.harness.credentials import api_credentials, wait_serving
from tests.harness.processes import free_port, managed


@contextmanager
def control_plane(state: Path, *flags: str) -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    args: Sequence[str] = [
        *(sys.executable, "-m", "cli", "controlplane", "--listen", address),
        *("--mesh-listen", f"127.0.0.1:{free_port()}", "--state-dir", str(state), *flags),
    ]
    with managed("controlplane", args, state):
        wait_serving(address, state)
        yield address


@contextmanager
def keys_as(address: str, state: Path, token: str) -> Iterator[api_pb2_grpc.KeyServiceStub]:
    channel = bearer_channel(grpc.secure_channel(address, api_credentials(state)), token)
    try:
        yield api_pb2_grpc.KeyServiceStub(channel)
    finally:
        channel.close()


def test_a_revoked_admin_key_is_not_made_again_at_restart(tmp_path: Path) -> None:
    state = tmp_path / "cp"
    token_file = state / "admin-token"
    with control_plane(state) as address:
        first = token_file.read_text().strip()
        with keys_as(address, state, first) as keys:
            ops = keys.CreateKey(
                api.CreateKeyRequest(name="ops", spec=ApiKeySpec(roles=["admin"])), timeout=10
            ).secret
            keys.RevokeKey(api.RevokeKeyRequest(name="admin"), timeout=10)
    written = (token_file.read_text(), token_file.stat().st_mtime_ns)

    with control_plane(state) as address:  # a restart
        assert (token_file.read_text(), token_file.stat().st_mtime_ns) == written
        with keys_as(address, state, ops) as keys:
            listed = keys.ListKeys(api.ListKeysRequest(), timeout=10).keys
            assert [(k.metadata.name, k.status.phase) for k in listed] == [
                ("admin", "Revoked"),
                ("ops", "Active"),
            ]
        with keys_as(address, state, first) as keys, pytest.raises(grpc.RpcError) as caught:
            keys.ListKeys(api.ListKeysRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with control_plane(state, "--reset-admin-token") as address:
        second = token_file.read_text().strip()
        assert second != first
        with keys_as(address, state, second) as keys:
            listed = keys.ListKeys(api.ListKeysRequest(), timeout=10).keys
            assert {k.metadata.name: k.status.phase for k in listed}["admin-2"] == "Active"
