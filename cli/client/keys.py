"""`meshline keys create|list|get|revoke|rotate`: API keys for inference calls.

A secret is printed once, alone on stdout (`KEY=$(meshline keys create ci)` works), with a note
on stderr; `list` and `get` never show one (the control plane does not have it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from cli.client import render
from cli.client.api import AddressOption, api_client, call, fail, resolve_address
from cli.client.issued_secrets import SecretOutput, comma_list, duration_seconds, phase_cell
from cli.client.render import OutputFormat
from cli.console import console
from meshline.v1 import api_pb2, resources_pb2

app = typer.Typer(
    help="API keys for inference calls (authorization: Bearer <secret>).", no_args_is_help=True
)

NameArgument = Annotated[str, typer.Argument(help="Key name (a DNS-1123 label)")]


def keys_table(items: Sequence[resources_pb2.ApiKey]) -> Table:
    table = Table(
        "NAME", "ENVIRONMENT", "DEPLOYMENTS", "ROLES", "PHASE", "EXPIRES", "KEY ID", box=None
    )
    for key in items:
        table.add_row(
            key.metadata.name,
            key.spec.environment or "(all)",
            ",".join(key.spec.deployments) or "(all)",
            ",".join(key.spec.roles) or "-",
            phase_cell(key.status.phase),
            key.spec.expires_at or "never",
            key.status.key_id,
        )
    return table


def _details(key: resources_pb2.ApiKey) -> list[str]:
    """What the table leaves out: the previous secret, revocation, enforcement."""
    status = key.status
    lines = []
    if status.previous_key_id:
        lines.append(
            f"previous key id {status.previous_key_id} works until {status.previous_valid_until}"
        )
    if status.revoked_at:
        lines.append(f"revoked at {status.revoked_at}")
    if status.enforced_in or status.pending_in:
        lines.append(f"enforced in: {', '.join(status.enforced_in) or '-'}")
        lines.append(f"pending in: {', '.join(status.pending_in) or '-'}")
    return lines


def _print_secret(key: resources_pb2.ApiKey, secret: str, output: SecretOutput, note: str) -> None:
    if output is SecretOutput.json:
        body = {"key": render.to_document(key), "secret": secret}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    typer.echo(f"{note}\nThe secret below is shown this once and cannot be shown again.", err=True)
    sys.stdout.write(secret + "\n")  # alone, unwrapped: for KEY=$(meshline keys create ...)


@app.command()
def create(
    name: NameArgument,
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="The one environment it may call")
    ] = "",
    deployments: Annotated[
        str | None, typer.Option("--deployments", help="Comma-separated; default: all")
    ] = None,
    roles: Annotated[
        str | None,
        typer.Option(
            "--roles",
            help="Comma-separated: roles access policies name, and the management roles "
            "admin, deployer, viewer (in --environment, or all)",
        ),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="e.g. 30d, 12h, 1h30m; default: never")
    ] = None,
    output: Annotated[SecretOutput, typer.Option("--output", "-o")] = SecretOutput.text,
    address: AddressOption = None,
) -> None:
    """Create a key and print its secret (once)."""
    expires_in_s = 0
    if expires is not None:
        expires_in_s = duration_seconds(expires, "--expires")
        if expires_in_s == 0:
            raise fail(
                "--expires: must be longer than 0 (leave it out for a key that never expires)"
            )
    spec = resources_pb2.ApiKeySpec(
        environment=environment, deployments=comma_list(deployments), roles=comma_list(roles)
    )
    request = api_pb2.CreateKeyRequest(name=name, spec=spec, expires_in_s=expires_in_s)
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(addr, lambda: api.keys.CreateKey(request, timeout=10))
    expiry = f", expires {reply.key.spec.expires_at}" if reply.key.spec.expires_at else ""
    note = f"apikey/{name} created (key id {reply.key.status.key_id}{expiry})."
    _print_secret(reply.key, reply.secret, output, note)


@app.command(name="list")
def list_keys(
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="Only keys that may call it")
    ] = "",
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """List keys (never their secrets)."""
    addr = resolve_address(address)
    request = api_pb2.ListKeysRequest(environment=environment)
    with api_client(addr) as api:
        keys = list(call(addr, lambda: api.keys.ListKeys(request, timeout=10)).keys)
    if output is OutputFormat.table:
        console.print(keys_table(keys))
    else:
        render.print_structured(keys, output)


@app.command()
def get(
    name: NameArgument,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """Show one key (never its secret)."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        key = call(addr, lambda: api.keys.GetKey(api_pb2.GetKeyRequest(name=name), timeout=10)).key
    if output is not OutputFormat.table:
        render.print_structured([key], output, single=True)
        return
    console.print(keys_table([key]))
    for line in _details(key):
        console.print(line, highlight=False, markup=False)


@app.command()
def revoke(name: NameArgument, address: AddressOption = None) -> None:
    """Stop every secret of a key on every gateway. The key stays listed, and its name taken."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr, lambda: api.keys.RevokeKey(api_pb2.RevokeKeyRequest(name=name), timeout=10)
        )
    console.print(f"apikey/{name} revoked at {reply.key.status.revoked_at}", highlight=False)


@app.command()
def rotate(
    name: NameArgument,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the previous secret keeps working, e.g. 10m")
    ] = "0",
    output: Annotated[SecretOutput, typer.Option("--output", "-o")] = SecretOutput.text,
    address: AddressOption = None,
) -> None:
    """Issue a new secret for a key (same scope) and print it (once)."""
    grace_s = duration_seconds(grace, "--grace")
    request = api_pb2.RotateKeyRequest(name=name, grace_s=grace_s)
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(addr, lambda: api.keys.RotateKey(request, timeout=10))
    status = reply.key.status
    until = f"works until {status.previous_valid_until}" if grace_s else "stopped working now"
    note = (
        f"apikey/{name} rotated (key id {status.key_id}); "
        f"the previous secret (key id {status.previous_key_id}) {until}."
    )
    _print_secret(reply.key, reply.secret, output, note)
