"""The admin credential for tests: every test client of the management API sends it.

A control plane process writes its admin token to `<its state dir>/admin-token` at start, and
its mesh CA to `<its state dir>/ca.crt` (its API port speaks TLS with a certificate of that CA);
`management_channel` checks the one and sends the other on every call, and
`register_control_plane` saves a context (token and CA) for the control plane's address in the
test session's credentials file ($MESHLINE_CONFIG, a temporary file set by tests/conftest.py),
so a `meshline ... --address A` process finds both by itself, as a user's would after
`meshline login`. In-process servers get the guard and a token of their own (`guarded_server`),
on a plaintext port.

Nothing here touches the real ~/.meshline: without $MESHLINE_CONFIG (bench runs outside
pytest) no context is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import grpc.aio

from cli.client import contexts
from cli.client.bearer import aio_bearer_interceptors, bearer_channel
from cli.server.local_admin import ca_path, serving
from controlplane.api.auth_setup import AuthConfig, management_auth
from controlplane.store import Store
from meshline.wire import ADMIN_TOKEN_FILE, CONFIG_ENV


def admin_token(controlplane_state_dir: Path) -> str:
    """The admin token a control plane wrote in its state dir ("" when it wrote none)."""
    try:
        return (controlplane_state_dir / ADMIN_TOKEN_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def api_credentials(controlplane_state_dir: Path) -> grpc.ChannelCredentials:
    """TLS to a control plane process's API port: its certificate checked against its CA."""
    return grpc.ssl_channel_credentials(ca_path(controlplane_state_dir).read_bytes())


def management_channel(address: str, controlplane_state_dir: Path) -> grpc.Channel:
    """A TLS channel to a control plane process that sends its admin token on every call.
    Ask once the control plane serves (`wait_serving`): its token and CA are on disk by then."""
    channel = grpc.secure_channel(address, api_credentials(controlplane_state_dir))
    return bearer_channel(channel, admin_token(controlplane_state_dir))


def wait_serving(address: str, controlplane_state_dir: Path, timeout_s: float = 60) -> None:
    """Until the control plane at `address` answers health checks over TLS (no credential
    needed)."""
    from tests.harness.processes import wait_until

    ca = ca_path(controlplane_state_dir)

    def answers() -> bool:
        try:
            return serving(address, ca)
        except grpc.RpcError:
            return False

    wait_until(answers, timeout_s, f"the control plane at {address}")


def register_control_plane(address: str, controlplane_state_dir: Path) -> None:
    """Save context `test-<address>` (its admin token) in the session's credentials file, so
    CLI processes given `--address <address>` send that token; nothing without
    $MESHLINE_CONFIG. The current context is left as it is."""
    path_text = os.environ.get(CONFIG_ENV, "")
    token = admin_token(controlplane_state_dir)
    if not path_text or not token:
        return
    path = Path(path_text)
    ca = str(ca_path(controlplane_state_dir))
    file = contexts.load(path).with_context(
        contexts.Context(f"test-{address}", address, token, ca), make_current=False
    )
    contexts.save(path, file)


def guarded_server(store: Store, state_dir: Path) -> tuple[grpc.aio.Server, str]:
    """A grpc.aio server that runs calls through the management guard, as the control plane
    does, and an admin token for it (created in the store; its file lands in `state_dir`)."""
    auth = management_auth(store, state_dir, AuthConfig())
    token = admin_token(state_dir)
    assert token, f"no admin token in {state_dir}"
    return grpc.aio.server(interceptors=[auth.guard]), token


def admin_aio_channel(address: str, token: str) -> grpc.aio.Channel:
    """An asyncio channel sending `token` on every call."""
    return grpc.aio.insecure_channel(address, interceptors=aio_bearer_interceptors(token))
