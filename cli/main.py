"""`meshline`: run the network and manage what it serves (typer + rich).

This module only assembles the command: client commands (cli.client: the management API and the
gateways) and server commands (cli.server: the processes). Each imports its heavy dependencies
(the control plane, the workers, numpy) only when it runs.
"""

from __future__ import annotations

import typer

from cli.client import gateway, keys, lifecycle, regions, resources, rollout, wait
from cli.client.models import app as models_app
from cli.client.release import release
from cli.server import commands as server

app = typer.Typer(
    name="meshline",
    help="A self-hostable global inference network: Envoy gateways + an xDS control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
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

if __name__ == "__main__":
    app()
