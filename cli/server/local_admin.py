"""The admin credential `meshline up` uses: the token its control plane wrote at first start,
and the `local` context that lets the user's other commands use it too."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cli.client import contexts
from cli.client.token_lookup import ApiCredential, TokenSource
from meshline.wire import ADMIN_TOKEN_FILE, CA_CERT_FILE

LOCAL_CONTEXT = "local"


def admin_token_path(controlplane_state_dir: Path) -> Path:
    return controlplane_state_dir / ADMIN_TOKEN_FILE


def needs_reset(controlplane_state_dir: Path) -> bool:
    """A store with no admin-token beside it: the file was lost, so the control plane must be
    started with --reset-admin-token to write a new one (a new store writes it anyway)."""
    return (controlplane_state_dir / "meshline.db").exists() and not admin_token_path(
        controlplane_state_dir
    ).exists()


def ca_path(controlplane_state_dir: Path) -> Path:
    """The mesh CA the control plane's API certificate chains to (public)."""
    return (controlplane_state_dir / CA_CERT_FILE).resolve()


def admin_credential(controlplane_state_dir: Path) -> ApiCredential | None:
    """The admin token the control plane wrote, with its CA (None until it has)."""
    path = admin_token_path(controlplane_state_dir)
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not token:
        return None
    return ApiCredential(token, TokenSource.ADMIN_FILE, str(path), ca_path(controlplane_state_dir))


def save_local_context(address: str, credential: ApiCredential) -> Path:
    """Write (or update) context `local` for `address` (its token and CA) in the credentials
    file and make it current; the file's path."""
    path = contexts.config_path()
    ca = str(credential.certificate_authority or "")
    file = contexts.load(path).with_context(
        contexts.Context(LOCAL_CONTEXT, address, credential.token, ca), make_current=True
    )
    return contexts.save(path, file)


def serving(address: str, ca: Path) -> bool:
    """Whether the control plane at `address` answers health checks SERVING (open to all;
    TLS checked against `ca`). False while `ca` is not written yet."""
    try:
        roots = ca.read_bytes()
    except FileNotFoundError:
        return False
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(roots)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
