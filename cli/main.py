"""`meshline`: run the network and manage what it serves (typer + rich).

This module only assembles the command: client commands (cli.client: the management API and the
gateways) and server commands (cli.server: the processes). Each imports its heavy dependencies
(the control plane, the workers, numpy) only when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client import gateway, keys, lifecycle, regions, resources, rollout, wait
from cli.client.api import set_credential_flags
from cli.client.audit import audit
from cli.client.config import app as config_app
from cli.client.identity import login, whoami
from cli.client.models import app as models_app
from cli.client.release import release
from cli.client.token_lookup import CredentialFlags
from cli.server import commands as server

app = typer.Typer(
    name="meshline",
    help="A self-hostable global inference network: Envoy gateways + an xDS control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Token for the management API; default: $MESHLINE_TOKEN, then the context",
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option("--context", help="Context of the credentials file to use (server, token)"),
    ] = None,
) -> None:
    """Global options: the management API credential (see `meshline login`)."""
    set_credential_flags(CredentialFlags(token, context))


app.add_typer(rollout.app, name="rollout")
app.command()(lifecycle.deactivate)
app.command()(lifecycle.activate)
app.command()(wait.wait)
app.command()(server.controlplane)
app.command()(server.agent)
app.command()(server.up)
app.command()(resources.apply)
app.command()(resources.plan)
app.command()(resources.get)
app.command()(resources.delete)
app.command()(gateway.infer)
app.add_typer(models_app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(regions.app, name="regions")
app.command(name="release")(release)
app.command()(login)
app.command()(whoami)
app.add_typer(config_app, name="config")
app.command()(audit)

if __name__ == "__main__":
    app()
