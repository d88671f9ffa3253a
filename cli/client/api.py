"""Connection to the management API, and turning gRPC errors into CLI errors.

Every command reaches the control plane through `api_client`, which sends the token that
token_lookup.py finds (and speaks TLS where the context names a CA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import grpc
import typer

from cli.client.bearer import bearer_channel
from cli.client.contexts import ConfigError
from cli.client.token_lookup import (
    ADDRESS_FILE,
    FALLBACK_ADDRESS,
    ApiCredential,
    CredentialFlags,
    CredentialLookupError,
    Lookup,
    unauthenticated_hint,
)
from meshline.tls_failure import tls_handshake_failed
from meshline.v1 import api_pb2_grpc

DEFAULT_STATE_DIR = Path(".meshline")

__all__ = ["ADDRESS_FILE", "DEFAULT_STATE_DIR", "FALLBACK_ADDRESS"]

T = TypeVar("T")

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Control plane API (host:port); default: $MESHLINE_ADDRESS, the current "
        "context's server, or what `meshline up` recorded in .meshline/",
    ),
]


# The global --token/--context of this process's command (set once by cli.main's callback).
_flags = CredentialFlags()


def set_credential_flags(flags: CredentialFlags) -> None:
    global _flags
    _flags = flags


def credential_flags() -> CredentialFlags:
    return _flags


def lookup(state_dir: Path = DEFAULT_STATE_DIR) -> Lookup:
    try:
        return Lookup.read(credential_flags(), state_dir)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def resolve_address(explicit: str | None, state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """--address, else $MESHLINE_ADDRESS, else the context's server, else what `meshline up`
    recorded (with its own admin token only), else the default."""
    if explicit:
        return explicit
    try:
        return lookup(state_dir).server(None)
    except CredentialLookupError as exc:
        raise fail(str(exc)) from None


def resolve_credential(address: str, state_dir: Path = DEFAULT_STATE_DIR) -> ApiCredential:
    """The token (and CA) the CLI uses for `address`; a CLI error when the lookup refuses
    (a context's token for another server)."""
    try:
        return lookup(state_dir).credential(address)
    except CredentialLookupError as exc:
        raise fail(str(exc)) from None


def connect(address: str, credential: ApiCredential) -> grpc.Channel:
    """A TLS channel to `address` sending the credential's token on every call: the server's
    certificate checked against the credential's CA, or the system's roots when it has none."""
    ca: bytes | None = None
    if credential.certificate_authority is not None:
        try:
            ca = credential.certificate_authority.read_bytes()
        except OSError as exc:
            raise fail(
                f"cannot read the certificate authority {credential.certificate_authority}: "
                f"{exc.strerror}"
            ) from None
    channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(ca))
    return bearer_channel(channel, credential.token)


@dataclass
class ApiClient:
    channel: grpc.Channel

    @property
    def apply(self) -> api_pb2_grpc.ApplyServiceStub:
        return api_pb2_grpc.ApplyServiceStub(self.channel)

    @property
    def models(self) -> api_pb2_grpc.ModelServiceStub:
        return api_pb2_grpc.ModelServiceStub(self.channel)

    @property
    def environments(self) -> api_pb2_grpc.EnvironmentServiceStub:
        return api_pb2_grpc.EnvironmentServiceStub(self.channel)

    @property
    def deployments(self) -> api_pb2_grpc.DeploymentServiceStub:
        return api_pb2_grpc.DeploymentServiceStub(self.channel)

    @property
    def regions(self) -> api_pb2_grpc.RegionServiceStub:
        return api_pb2_grpc.RegionServiceStub(self.channel)

    @property
    def rollouts(self) -> api_pb2_grpc.RolloutServiceStub:
        return api_pb2_grpc.RolloutServiceStub(self.channel)

    @property
    def keys(self) -> api_pb2_grpc.KeyServiceStub:
        return api_pb2_grpc.KeyServiceStub(self.channel)

    @property
    def audit(self) -> api_pb2_grpc.AuditServiceStub:
        return api_pb2_grpc.AuditServiceStub(self.channel)

    @property
    def identity(self) -> api_pb2_grpc.IdentityServiceStub:
        return api_pb2_grpc.IdentityServiceStub(self.channel)


@contextmanager
def api_client(address: str, credential: ApiCredential | None = None) -> Iterator[ApiClient]:
    """The management API at `address`, with `credential` (default: the lookup's)."""
    channel = connect(address, credential or resolve_credential(address))
    try:
        yield ApiClient(channel)
    finally:
        channel.close()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def rpc_failure(exc: grpc.RpcError, address: str) -> typer.Exit:
    """A gRPC error as a one-line CLI error, not a traceback."""
    code = exc.code()
    details = exc.details()
    if tls_handshake_failed(code, details):
        return fail(
            f"no TLS connection to the control plane at {address}: its certificate is not "
            "signed by a CA this CLI trusts. Give its CA (the control plane's "
            "<state-dir>/ca.crt) with `meshline login --address "
            f"{address} --certificate-authority PATH` ({details})"
        )
    if code == grpc.StatusCode.UNAVAILABLE:
        return fail(
            f"cannot reach the control plane at {address} ({details}); "
            "is `meshline up` running? (set --address or MESHLINE_ADDRESS)"
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        hint = unauthenticated_hint(resolve_credential(address), address)
        return fail(f"{details} [{code.name}]\n{hint}")
    return fail(f"{details} [{code.name}]")


def call(address: str, fn: Callable[[], T]) -> T:
    """Run one API call, turning a gRPC error into a CLI error."""
    try:
        return fn()
    except grpc.RpcError as exc:
        raise rpc_failure(exc, address) from None
