"""`meshline infer`: pick a region's gateway, send one request, print the answer (the request
itself is cli.client.infer, imported only when the command runs: numpy)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
import yaml

from cli.client.api import AddressOption, api_client, call, fail, resolve_address
from cli.client.credentials import missing_key_hint, resolve_api_key
from cli.client.render import OutputFormat
from cli.console import console
from meshline.v1 import api_pb2


def infer(
    deployment: Annotated[str, typer.Argument()],
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="NAME=VALUES (a single value fills the tensor; comma list or JSON array)",
        ),
    ],
    region: Annotated[str | None, typer.Option(help="Send through this region's gateway")] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Gateway host:port (skips the lookup)")
    ] = None,
    environment: Annotated[str, typer.Option("--environment", "-e")] = "production",
    http: Annotated[bool, typer.Option("--http/--grpc", help="REST instead of gRPC")] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="Sent as 'authorization: Bearer <key>'; default: $MESHLINE_API_KEY "
            "or the key `meshline up` wrote to .meshline/api-key",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """Send one inference request through a region's Envoy gateway."""
    from cli.client.infer import InferError, infer_grpc, infer_http, parse_input

    key = resolve_api_key(api_key)
    target = gateway or _gateway_of(region, resolve_address(address), deployment, environment)
    try:
        inputs = [parse_input(i) for i in input]
        send = infer_http if http else infer_grpc
        result = send(target, deployment, environment, inputs, credentials=key.headers())
    except InferError as exc:
        hint = f" ({missing_key_hint(key)})" if exc.unauthenticated else ""
        raise fail(f"{exc}{hint}") from None
    data = {name: array.tolist() for name, array in result.outputs.items()}
    if output is OutputFormat.table:
        for name, array in result.outputs.items():
            console.print(f"[bold]{name}[/] {array.dtype} {list(array.shape)}")
            console.print(array)
        if result.served_by:
            where = f"served by worker {result.served_by} in region {result.region or '?'}"
        else:  # Triton sends no x-meshline-* metadata
            where = "served (the server named no worker: a Triton)"
        console.print(f"{where} via gateway {target}", highlight=False)
    else:
        payload = {"outputs": data, "worker": result.served_by, "region": result.region}
        render_text = (
            yaml.safe_dump(payload, sort_keys=False, allow_unicode=True)
            if output is OutputFormat.yaml
            else json.dumps(payload)
        )
        console.print(render_text, markup=False, highlight=False)


def _gateway_of(region: str | None, addr: str, deployment: str, environment: str) -> str:
    """The named region's gateway (any region: its gateway forwards to where the deployment
    runs), else a healthy one of a region the deployment runs in."""
    with api_client(addr) as api:
        regions = call(
            addr, lambda: api.regions.ListRegions(api_pb2.ListRegionsRequest(), timeout=10)
        ).regions
        placement = list(
            call(
                addr,
                lambda: api.deployments.GetDeployment(
                    api_pb2.GetDeploymentRequest(name=deployment, environment=environment),
                    timeout=10,
                ),
            ).deployment.status.placement
        )
    if region is not None:
        chosen = next((r for r in regions if r.metadata.name == region), None)
        if chosen is None:
            raise fail(
                f"region {region!r} not found; regions: "
                f"{', '.join(r.metadata.name for r in regions)}"
            )
        if not chosen.status.gateway_address:
            raise fail(f"region {region!r} has no gateway (is its agent running?)")
        return str(chosen.status.gateway_address)
    for r in regions:
        if r.metadata.name in placement and r.status.gateway_healthy:
            return str(r.status.gateway_address)
    raise fail(
        f"no healthy gateway in the regions {deployment} runs in "
        f"({', '.join(placement) or 'none'}); see `meshline get regions`"
    )
