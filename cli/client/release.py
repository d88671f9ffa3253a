"""`meshline release DEPLOYMENT --from ENV --to ENV`: promote a deployment between environments."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from cli.client.api import api_client, call, resolve_address
from meshline.v1 import api_pb2

console = Console(width=200)


def release(
    deployment: Annotated[str, typer.Argument(help="The deployment to release")],
    source: Annotated[str, typer.Option("--from", help="Environment it runs in now")],
    target: Annotated[str, typer.Option("--to", help="Environment to release it to")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check against the target's policies, store nothing")
    ] = False,
    address: Annotated[
        str | None, typer.Option("--address", help="Control plane API (host:port)")
    ] = None,
) -> None:
    """Copy DEPLOYMENT (version, its own policies, serving and scaling settings) to another
    environment, checked against that environment's mandatory policies; on an error nothing
    changes."""
    addr = resolve_address(address)
    request = api_pb2.ReleaseDeploymentRequest(
        name=deployment, source_environment=source, target_environment=target, dry_run=dry_run
    )
    with api_client(addr) as api:
        reply = call(addr, lambda: api.deployments.ReleaseDeployment(request, timeout=60))
    result = reply.result
    placement = f" → {', '.join(result.placement)}" if result.placement else ""
    suffix = " (dry run)" if dry_run else ""
    console.print(
        f"deployment/{deployment} released from {source} to {target}: "
        f"{result.action}{suffix}{placement}",
        highlight=False,
    )
