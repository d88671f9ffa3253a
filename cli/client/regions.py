"""`meshline regions token create|list|revoke`: join tokens that let a region's agent join.

A token is printed once, alone on stdout (`TOKEN=$(meshline regions token create eu)` works),
with the agent command on stderr. The agent reads it from $MESHLINE_JOIN_TOKEN, never from its
arguments: any user of the machine can read those in `ps`.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from cli.client import render
from cli.client.api import AddressOption, api_client, call, resolve_address
from cli.client.issued_secrets import SecretOutput, comma_list, duration_seconds, phase_cell
from cli.client.render import OutputFormat
from cli.console import console
from meshline.join_token import JOIN_TOKEN_ENV
from meshline.v1 import api_pb2, resources_pb2

app = typer.Typer(help="Regions and the agents that join them.", no_args_is_help=True)
token_app = typer.Typer(
    help="Join tokens: each lets a region's agent join the mesh as that region.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

DEFAULT_EXPIRY = "24h"


def agent_commands(region: str, address: str) -> list[str]:
    """What to run on the region's machine: the token into the environment (typed or pasted,
    not echoed, never in argv or the shell history), then the agent, trusting the mesh CA (the
    control plane's <state-dir>/ca.crt, copied to that machine as ca.crt)."""
    return [
        f"read -rs {JOIN_TOKEN_ENV} && export {JOIN_TOKEN_ENV}   # paste the token, then Enter",
        f"meshline agent --region {shlex.quote(region)} --controlplane {shlex.quote(address)} "
        "--ca-file ca.crt",
    ]


def _facts_cell(facts: resources_pb2.RegionSpec) -> str:
    parts = [p for p in (facts.country, facts.continent) if p]
    if facts.flavors.cpu:
        parts.append("cpu:" + ",".join(facts.flavors.cpu))
    if facts.flavors.gpu:
        parts.append("gpu:" + ",".join(facts.flavors.gpu))
    if facts.max_replicas:
        parts.append(f"max {facts.max_replicas}")
    return " ".join(parts) or "-"


def tokens_table(items: Sequence[resources_pb2.JoinToken]) -> Table:
    table = Table("ID", "REGION", "PHASE", "EXPIRES", "USES", "LAST USED", "FACTS", box=None)
    for token in items:
        table.add_row(
            token.metadata.name,
            token.spec.region,
            phase_cell(token.status.phase),
            token.spec.expires_at or "never",
            str(token.status.uses),
            token.status.last_used_at or "-",
            _facts_cell(token.spec.facts),
        )
    return table


@token_app.command()
def create(
    region: Annotated[str, typer.Argument(help="The one region the token lets an agent join as")],
    expires: Annotated[
        str, typer.Option("--expires", help="e.g. 1h, 7d, 1h30m; 0 = never")
    ] = DEFAULT_EXPIRY,
    country: Annotated[str, typer.Option(help="ISO country code the region registers with")] = "",
    continent: Annotated[str, typer.Option(help="Continent code: AF, AN, AS, EU, NA, OC, SA")] = "",
    cpu_flavors: Annotated[str, typer.Option(help="CPU flavors, comma-separated")] = "",
    gpu_flavors: Annotated[str, typer.Option(help="GPU flavors, comma-separated")] = "",
    max_replicas: Annotated[int, typer.Option(help="Most worker replicas; 0 = unlimited")] = 0,
    output: Annotated[SecretOutput, typer.Option("--output", "-o")] = SecretOutput.text,
    address: AddressOption = None,
) -> None:
    """Create a join token for REGION and print it (once), with the agent command.

    The facts given here (country, continent, flavors, max replicas) are what the region
    registers with when its agent joins, unless a Region of that name was applied: the agent's
    own flags never decide where deployments may run.
    """
    facts = resources_pb2.RegionSpec(
        country=country,
        continent=continent,
        flavors=resources_pb2.FlavorSet(cpu=comma_list(cpu_flavors), gpu=comma_list(gpu_flavors)),
        max_replicas=max_replicas,
    )
    request = api_pb2.CreateJoinTokenRequest(
        spec=resources_pb2.JoinTokenSpec(region=region, facts=facts),
        expires_in_s=duration_seconds(expires, "--expires"),
    )
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(addr, lambda: api.regions.CreateJoinToken(request, timeout=10))
    commands = agent_commands(region, addr)
    if output is SecretOutput.json:
        body = {
            "token": render.to_document(reply.token),
            "secret": reply.secret,
            "agent_commands": commands,
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    token = reply.token
    expiry = f"expires {token.spec.expires_at}" if token.spec.expires_at else "never expires"
    lines = [
        f"jointoken/{token.metadata.name} created for region {region} ({expiry}).",
        "The token below is shown this once and cannot be shown again. On the region's machine,",
        f"put it in ${JOIN_TOKEN_ENV} (not on the command line: arguments show in `ps`), "
        "then start the agent:",
        *(f"  {line}" for line in commands),
    ]
    typer.echo("\n".join(lines), err=True)
    sys.stdout.write(reply.secret + "\n")  # alone, unwrapped: for TOKEN=$(meshline ...)


@token_app.command(name="list")
def list_tokens(
    region: Annotated[str, typer.Option("--region", help="Only this region's tokens")] = "",
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """List join tokens, newest first (never their secrets)."""
    addr = resolve_address(address)
    request = api_pb2.ListJoinTokensRequest(region=region)
    with api_client(addr) as api:
        tokens = list(call(addr, lambda: api.regions.ListJoinTokens(request, timeout=10)).tokens)
    if output is OutputFormat.table:
        console.print(tokens_table(tokens))
    else:
        render.print_structured(tokens, output)


@token_app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (its name)")],
    address: AddressOption = None,
) -> None:
    """Stop a join token. Agents that joined with it keep their certificate until it expires;
    delete the region to stop them renewing it."""
    addr = resolve_address(address)
    request = api_pb2.RevokeJoinTokenRequest(name=token_id)
    with api_client(addr) as api:
        reply = call(addr, lambda: api.regions.RevokeJoinToken(request, timeout=10))
    console.print(
        f"jointoken/{token_id} revoked at {reply.token.status.revoked_at}", highlight=False
    )
