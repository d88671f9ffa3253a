"""`meshline infer`: pick a region's gateway, send one request, print the answer (the request
itself is cli.client.infer, imported only when the command runs: numpy)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from cli.client.api import (
    AddressOption,
    api_client,
    call,
    fail,
    resolve_address,
    resolve_credential,
)
from cli.client.credentials import missing_key_hint, resolve_api_key
from cli.client.render import OutputFormat
from cli.console import console
from meshline.edge_tls import EDGE_CA_CERT_FILE, EdgeTlsMode
from meshline.v1 import api_pb2

if TYPE_CHECKING:
    from cli.client.infer import ClientTls


@dataclass(frozen=True)
class GatewayChoice:
    """Where to send the request, and the edge TLS its region reports ("" = plain text;
    unknown, "", when the address was given)."""

    address: str
    edge_tls: str = ""


@dataclass(frozen=True)
class Trust:
    """Which CA file to check a gateway's certificate against (None: the system's roots),
    and how to name it in a message."""

    ca_file: Path | None
    source: str


def edge_trust(edge_tls: str, ca_file: Path | None, edge_ca: Path | None) -> Trust:
    """--ca-file when given; else, for a certificate the control plane made (mode mesh-ca),
    its edge CA (`edge_ca`: found beside the CA the CLI trusts for its API); else (the user's
    own certificate, or nothing known) the system's roots. Never the mesh CA itself: it signs
    no gateway's certificate for clients."""
    if ca_file is not None:
        return Trust(ca_file, f"--ca-file {ca_file}")
    if edge_tls != EdgeTlsMode.MESH_CA.value:
        return Trust(None, "the system's trusted CAs")
    if edge_ca is not None:
        return Trust(edge_ca, f"the control plane's edge CA ({edge_ca})")
    return Trust(
        None, f"the system's trusted CAs (no {EDGE_CA_CERT_FILE} beside the control plane's CA)"
    )


def edge_ca_beside(api_ca: Path | None) -> Path | None:
    """The control plane's edge CA beside its mesh CA (`edge-ca.crt` in the folder of the
    `ca.crt` the CLI trusts for the API: the control plane's state dir for `meshline up`, and
    wherever the user copied both), when it is there."""
    if api_ca is None:
        return None
    edge_ca = api_ca.parent / EDGE_CA_CERT_FILE
    return edge_ca if edge_ca.is_file() else None


def wants_tls(tls: bool | None, edge_tls: str, ca_file: Path | None) -> bool:
    """--tls/--plaintext when given; else TLS when the region reports edge TLS or a CA file
    was given for it."""
    if tls is not None:
        return tls
    return bool(edge_tls) or ca_file is not None


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
    tls: Annotated[
        bool | None,
        typer.Option(
            "--tls/--plaintext",
            help="TLS to the gateway; default: TLS when its region reports edge TLS (or "
            "--ca-file is given)",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            help="CA to check the gateway's TLS certificate against; default: the control "
            f"plane's {EDGE_CA_CERT_FILE} beside the CA the CLI trusts for it (a certificate the "
            "control plane made), else the system's"
        ),
    ] = None,
    address: AddressOption = None,
) -> None:
    """Send one inference request through a region's Envoy gateway."""
    from cli.client.infer import InferError, infer_grpc, infer_http, parse_input

    key = resolve_api_key(api_key)
    if gateway:
        choice = GatewayChoice(gateway)
    else:
        choice = _gateway_of(region, resolve_address(address), deployment, environment)
    target = choice.address
    client_tls = None
    if wants_tls(tls, choice.edge_tls, ca_file):
        client_tls = _client_tls(choice.edge_tls, ca_file, address)
    try:
        inputs = [parse_input(i) for i in input]
        send = infer_http if http else infer_grpc
        result = send(
            target, deployment, environment, inputs, credentials=key.headers(), tls=client_tls
        )
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
        secured = " (TLS)" if client_tls is not None else ""
        console.print(f"{where} via gateway {target}{secured}", highlight=False)
    else:
        payload = {"outputs": data, "worker": result.served_by, "region": result.region}
        render_text = (
            yaml.safe_dump(payload, sort_keys=False, allow_unicode=True)
            if output is OutputFormat.yaml
            else json.dumps(payload)
        )
        console.print(render_text, markup=False, highlight=False)


def _client_tls(edge_tls: str, ca_file: Path | None, address: str | None) -> ClientTls:
    """TLS settings for the gateway: the CA to trust read now (a clear error if it cannot)."""
    from cli.client.infer import ClientTls

    edge_ca = None
    if ca_file is None and edge_tls == EdgeTlsMode.MESH_CA.value:
        api_ca = resolve_credential(resolve_address(address)).certificate_authority
        edge_ca = edge_ca_beside(api_ca)
    trust = edge_trust(edge_tls, ca_file, edge_ca)
    if trust.ca_file is None:
        return ClientTls(None, trust.source)
    try:
        return ClientTls(trust.ca_file.read_bytes(), trust.source)
    except OSError as exc:
        raise fail(f"cannot read the CA {trust.ca_file}: {exc.strerror}") from None


def _gateway_of(region: str | None, addr: str, deployment: str, environment: str) -> GatewayChoice:
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
        return GatewayChoice(str(chosen.status.gateway_address), str(chosen.status.edge_tls))
    for r in regions:
        if r.metadata.name in placement and r.status.gateway_healthy:
            return GatewayChoice(str(r.status.gateway_address), str(r.status.edge_tls))
    raise fail(
        f"no healthy gateway in the regions {deployment} runs in "
        f"({', '.join(placement) or 'none'}); see `meshline get regions`"
    )
