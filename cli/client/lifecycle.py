"""`meshline deactivate|activate`: take a deployment out of service and back, config kept."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from cli.client.api import api_client, call, resolve_address
from meshline.v1 import api_pb2

EnvironmentOption = Annotated[str, typer.Option("--environment", "-e")]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Control plane API (host:port)")
]


def _set_active(name: str, environment: str, active: bool, address: str | None) -> None:
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.deployments.SetDeploymentActive(
                api_pb2.SetDeploymentActiveRequest(
                    name=name, environment=environment, active=active
                ),
                timeout=10,
            ),
        )
    what = "activated" if active else "deactivated"
    state = what if reply.changed else f"already {what}"
    Console().print(f"deployment/{name} ({environment}) {state}", highlight=False)


def deactivate(
    name: Annotated[str, typer.Argument(help="Deployment")],
    environment: EnvironmentOption = "production",
    address: AddressOption = None,
) -> None:
    """Stop every worker of a deployment and refuse its requests (HTTP 403, gRPC
    FAILED_PRECONDITION "deployment X is deactivated"); its configuration is kept."""
    _set_active(name, environment, False, address)


def activate(
    name: Annotated[str, typer.Argument(help="Deployment")],
    environment: EnvironmentOption = "production",
    address: AddressOption = None,
) -> None:
    """Serve a deactivated deployment again, exactly as it was configured."""
    _set_active(name, environment, True, address)
