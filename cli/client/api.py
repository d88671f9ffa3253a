"""Connection to the management API, and turning gRPC errors into CLI errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import grpc
import typer

from meshline.v1 import api_pb2_grpc

DEFAULT_STATE_DIR = Path(".meshline")
ADDRESS_FILE = "controlplane.addr"
FALLBACK_ADDRESS = "127.0.0.1:7070"

T = TypeVar("T")

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Control plane API (host:port); default: $MESHLINE_ADDRESS "
        "or what `meshline up` recorded in .meshline/",
    ),
]


def resolve_address(explicit: str | None, state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """--address, else $MESHLINE_ADDRESS, else what `meshline up` recorded, else the default."""
    if explicit:
        return explicit
    if env := os.environ.get("MESHLINE_ADDRESS"):
        return env
    recorded = state_dir / ADDRESS_FILE
    if recorded.exists():
        return recorded.read_text().strip()
    return FALLBACK_ADDRESS


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


@contextmanager
def api_client(address: str) -> Iterator[ApiClient]:
    channel = grpc.insecure_channel(address)
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
    if code == grpc.StatusCode.UNAVAILABLE:
        return fail(
            f"cannot reach the control plane at {address} ({details}); "
            "is `meshline up` running? (set --address or MESHLINE_ADDRESS)"
        )
    return fail(f"{details} [{code.name}]")


def call(address: str, fn: Callable[[], T]) -> T:
    """Run one API call, turning a gRPC error into a CLI error."""
    try:
        return fn()
    except grpc.RpcError as exc:
        raise rpc_failure(exc, address) from None
