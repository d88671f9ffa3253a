"""The API key `meshline up` makes for its demo: created (or rotated) through KeyService, its
secret written where `meshline infer` finds it.

A restarted `up` cannot know the previous secret (the control plane never had it), so an existing
`demo` key is rotated: the old secret stops at once, the new one is written again.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from cli.client.api import ApiClient
from cli.client.credentials import API_KEY_FILE
from meshline.secret_file import write_secret_file
from meshline.v1 import api_pb2, resources_pb2
from meshline.wire import DEFAULT_ENVIRONMENT

DEMO_KEY = "demo"


class DemoKeyError(RuntimeError):
    """The demo key can be neither created nor rotated (say, someone revoked it)."""


def ensure_demo_key(
    api: ApiClient, name: str = DEMO_KEY, environment: str = DEFAULT_ENVIRONMENT
) -> str:
    """A fresh secret of key `name` (scope: `environment`): created, or rotated if it exists."""
    spec = resources_pb2.ApiKeySpec(environment=environment)
    try:
        created = api.keys.CreateKey(api_pb2.CreateKeyRequest(name=name, spec=spec), timeout=10)
        secret: str = created.secret
        return secret
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise DemoKeyError(f"cannot create API key '{name}': {exc.details()}") from None
    try:
        rotated = api.keys.RotateKey(api_pb2.RotateKeyRequest(name=name, grace_s=0), timeout=10)
    except grpc.RpcError as exc:
        raise DemoKeyError(
            f"cannot rotate the existing API key '{name}': {exc.details()} "
            "(a revoked or expired key keeps its name: start `up` with a new --state-dir)"
        ) from None
    secret = rotated.secret
    return secret


def enforced_everywhere(api: ApiClient, regions: list[str], name: str = DEMO_KEY) -> bool:
    """Whether every region's gateway enforces the key's current secret."""
    key = api.keys.GetKey(api_pb2.GetKeyRequest(name=name), timeout=2).key
    return not key.status.pending_in and set(regions) <= set(key.status.enforced_in)


def write_key_file(state_dir: Path, secret: str) -> Path:
    """`<state_dir>/api-key`, readable by its owner only (0600) from the first byte."""
    return write_secret_file(state_dir / API_KEY_FILE, secret + "\n")


def remove_key_file(state_dir: Path) -> None:
    (state_dir / API_KEY_FILE).unlink(missing_ok=True)
