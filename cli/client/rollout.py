"""`meshline rollout status|pause|resume|abort|undo|retry DEPLOYMENT` (like `kubectl rollout`
and `kubectl argo rollouts retry`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.client.api import api_client, call, resolve_address
from meshline.phases import ENDED_WITHOUT_TARGET, ROLLING
from meshline.v1 import api_pb2, resources_pb2

app = typer.Typer(help="Watch and steer version changes of a deployment.", no_args_is_help=True)
NameArgument = Annotated[str, typer.Argument(help="Deployment")]
EnvironmentOption = Annotated[str, typer.Option("--environment", "-e")]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Control plane API (host:port)")
]


def _summary(r: resources_pb2.Rollout) -> str:
    retry = f", retry of #{r.retry_of}" if r.retry_of else ""
    text = f"rollout #{r.id} {r.from_version} → {r.to_version} ({r.strategy}{retry}): {r.phase}"
    if r.strategy == "canary" and r.phase in ROLLING:
        text += f", step {r.step + 1} at {r.weight}%"
    if r.reason:
        text += f" — {r.reason}"
    return text


def history_table(rollouts: list[resources_pb2.Rollout]) -> Table:
    table = Table("ID", "FROM", "TO", "STRATEGY", "PHASE", "STARTED", "REASON", box=None)
    for r in rollouts:
        reason = "; ".join(
            filter(None, (f"retry of #{r.retry_of}" if r.retry_of else "", r.reason))
        )
        table.add_row(
            str(r.id), r.from_version, r.to_version, r.strategy, r.phase, r.started_at, reason
        )
    return table


def analyses_table(rollout: resources_pb2.Rollout) -> Table:
    table = Table(
        "STEP", "WEIGHT", "CANARY REQ", "ERR", "P99 MS", "STABLE REQ", "ERR", "P99 MS",
        "VERDICT", box=None,
    )  # fmt: skip
    for a in rollout.analyses:
        table.add_row(
            str(a.step + 1), f"{a.weight}%", str(a.canary_requests), str(a.canary_errors),
            f"{a.canary_p99_ms:g}", str(a.stable_requests), str(a.stable_errors),
            f"{a.stable_p99_ms:g}", a.verdict,
        )  # fmt: skip
    return table


@app.command()
def status(
    name: NameArgument, environment: EnvironmentOption = "production", address: AddressOption = None
) -> None:
    """The current (or last) rollout, its canary analyses, and the history."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.rollouts.ListRollouts(
                api_pb2.ListRolloutsRequest(name=name, environment=environment), timeout=10
            ),
        )
    console = Console(width=200)
    rollouts = list(reply.rollouts)
    if not rollouts:
        console.print(f"deployment/{name} has had no rollout (its version never changed)")
        return
    console.print(_summary(rollouts[0]), highlight=False)
    if rollouts[0].analyses:
        console.print(analyses_table(rollouts[0]))
    console.print(history_table(rollouts))


def _control(name: str, environment: str, action: str, address: str | None) -> None:
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.rollouts.ControlRollout(
                api_pb2.ControlRolloutRequest(name=name, environment=environment, action=action),
                timeout=30,
            ),
        )
    rollout = reply.rollout
    if action == "undo" and rollout.phase in ENDED_WITHOUT_TARGET:
        Console().print(
            f"deployment/{name}: version set back to '{rollout.from_version}', which serves "
            f"already; applying version '{rollout.to_version}' again rolls it out anew",
            highlight=False,
        )
    elif action == "undo":
        Console().print(
            f"deployment/{name}: version set back to '{rollout.from_version}'; "
            "a rollout to it follows",
            highlight=False,
        )
    else:
        Console().print(_summary(reply.rollout), highlight=False)


@app.command()
def pause(
    name: NameArgument, environment: EnvironmentOption = "production", address: AddressOption = None
) -> None:
    """Hold the canary at its current step."""
    _control(name, environment, "pause", address)


@app.command()
def resume(
    name: NameArgument, environment: EnvironmentOption = "production", address: AddressOption = None
) -> None:
    """Go on with a paused rollout (the current step starts again)."""
    _control(name, environment, "resume", address)


@app.command()
def abort(
    name: NameArgument, environment: EnvironmentOption = "production", address: AddressOption = None
) -> None:
    """Send all traffic back to the stable version now."""
    _control(name, environment, "abort", address)


@app.command()
def undo(
    name: NameArgument, environment: EnvironmentOption = "production", address: AddressOption = None
) -> None:
    """Set the deployment's version back to the one before its last rollout."""
    _control(name, environment, "undo", address)


@app.command()
def retry(
    name: NameArgument, environment: EnvironmentOption = "production", address: AddressOption = None
) -> None:
    """Roll out again the version the deployment names after its rollout was rolled back or
    aborted (the cause fixed, or the verdict was noise): a new rollout from the first step."""
    addr = resolve_address(address)
    with api_client(addr) as api:
        reply = call(
            addr,
            lambda: api.rollouts.RetryRollout(
                api_pb2.RetryRolloutRequest(name=name, environment=environment), timeout=30
            ),
        )
    Console().print(_summary(reply.rollout), highlight=False)
