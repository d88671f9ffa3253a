"""`meshline login` and `meshline whoami`: who the control plane takes this CLI for.

`login` asks the control plane first (WhoAmI) and saves the token in a context only when it
works, like `kubectl config set-credentials` with a check; the token is read from stdin when
`--token` is not given, so it stays out of the shell's history.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import grpc
import typer

from cli.client import contexts
from cli.client.api import (
    AddressOption,
    api_client,
    fail,
    lookup,
    resolve_address,
    resolve_credential,
    rpc_failure,
)
from cli.client.token_lookup import ApiCredential, TokenSource
from meshline.v1 import api_pb2


def describe_grants(reply: api_pb2.WhoAmIResponse) -> str:
    grants = [f"{g.role} in {g.environment or 'all environments'}" for g in reply.grants]
    return ", ".join(grants) or "no management role"


def _read_token(given: str | None) -> str:
    if given:
        return given.strip()
    if sys.stdin.isatty():
        text: str = typer.prompt("token", hide_input=True)
    else:
        text = sys.stdin.read()
    return text.strip()


def login(
    address: Annotated[str, typer.Option("--address", help="Control plane API (host:port)")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="The token; default: read from stdin (kept out of history)"),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="Name of the context; default: the address")
    ] = None,
    certificate_authority: Annotated[
        Path | None,
        typer.Option(
            "--certificate-authority", help="CA certificate (PEM) to check the server's TLS with"
        ),
    ] = None,
) -> None:
    """Check a token against the control plane and save it as the current context."""
    secret = _read_token(token)
    if not secret:
        raise fail("no token given: pass --token or pipe it on stdin")
    if certificate_authority is not None:
        ca: Path | None = certificate_authority.expanduser().resolve()
    else:  # a context's for that server, or the CA of `meshline up` run from here
        ca = resolve_credential(address).certificate_authority
    credential = ApiCredential(secret, TokenSource.OPTION, certificate_authority=ca)
    try:
        with api_client(address, credential) as api:
            who = api.identity.WhoAmI(api_pb2.WhoAmIRequest(), timeout=10)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise fail(f"{address} refused the token, nothing saved: {exc.details()}") from None
        raise rpc_failure(exc, address) from None
    found = lookup()
    name = context or address
    saved = found.contexts.with_context(
        contexts.Context(name, address, secret, str(ca) if ca else ""), make_current=True
    )
    try:
        path = contexts.save(found.contexts_path, saved)
    except OSError as exc:
        raise fail(f"cannot write {found.contexts_path}: {exc.strerror}") from None
    typer.echo(f"logged in to {address} as {who.principal} ({describe_grants(who)})")
    typer.echo(f"context '{name}' saved in {path} and made current")


def whoami(address: AddressOption = None) -> None:
    """Show who the control plane takes this CLI for, and where its token came from."""
    addr = resolve_address(address)
    credential = resolve_credential(addr)
    try:
        with api_client(addr, credential) as api:
            who = api.identity.WhoAmI(api_pb2.WhoAmIRequest(), timeout=10)
    except grpc.RpcError as exc:
        raise rpc_failure(exc, addr) from None
    typer.echo(f"principal: {who.principal} ({who.kind})")
    typer.echo(f"roles:     {describe_grants(who)}")
    typer.echo(f"expires:   {who.expires_at or 'never'}")
    typer.echo(f"server:    {addr}")
    typer.echo(f"token:     from {credential.describe()}")
