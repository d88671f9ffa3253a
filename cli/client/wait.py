"""`meshline wait`: block until a deployment reaches a phase, like `kubectl wait --for`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Annotated

import grpc
import typer
from rich.console import Console

from cli.client.api import api_client, fail, resolve_address, rpc_failure
from meshline.phases import DeploymentPhase
from meshline.v1 import api_pb2

POLL_INTERVAL_S = 0.5


class Condition(str, Enum):
    Ready = DeploymentPhase.READY.value
    Deactivated = DeploymentPhase.DEACTIVATED.value
    Failed = DeploymentPhase.FAILED.value
    Deleted = "Deleted"
    # The control plane has acted on the latest change (whatever the phase): a rollout it
    # starts exists, a move it starts shows.
    Reconciled = "Reconciled"


@dataclass(frozen=True)
class Verdict:
    """Whether to stop polling, and if so, whether the wait succeeded."""

    done: bool
    ok: bool = True


KEEP_WAITING = Verdict(done=False)


def decide(phase: str | None, wanted: Condition, current: bool = True) -> Verdict:
    """What one observation means. `phase` is None once the deployment does not exist;
    `current` is false while the status predates the latest change of its spec (its
    observed_generation is older than its generation): such a phase says nothing yet.

    Failed ends a wait for anything else at once: it means a user must act, so waiting out
    the timeout would only hide the reason.
    """
    if phase is None:
        return Verdict(done=True, ok=wanted is Condition.Deleted)
    if not current:
        return KEEP_WAITING
    if wanted is Condition.Reconciled:
        return Verdict(done=True)
    if phase == wanted.value:
        return Verdict(done=True)
    if phase == Condition.Failed.value and wanted is not Condition.Deleted:
        return Verdict(done=True, ok=False)
    return KEEP_WAITING


def wait(
    kind: Annotated[str, typer.Argument(help="deployment")],
    name: Annotated[str, typer.Argument()],
    condition: Annotated[
        Condition, typer.Option("--for", help="The phase to wait for (or Deleted)")
    ] = Condition.Ready,
    environment: Annotated[str, typer.Option("--environment", "-e")] = "production",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before giving up")] = 300,
    address: Annotated[
        str | None, typer.Option("--address", help="Control plane API (host:port)")
    ] = None,
) -> None:
    """Wait until a deployment is Ready (or --for Deactivated, Failed, Deleted, or Reconciled:
    its latest change acted on); exit 1 if it fails, disappears or the timeout passes first,
    with its status message."""
    if kind not in ("deployment", "deployments", "deploy"):
        raise fail(f"unknown kind {kind!r}; `meshline wait` waits for a deployment")
    addr = resolve_address(address)
    request = api_pb2.GetDeploymentRequest(name=name, environment=environment)
    subject = f"deployment/{name} ({environment})"
    deadline = time.monotonic() + timeout
    seen = "not read yet"
    with api_client(addr) as api:
        while True:
            try:
                dep = api.deployments.GetDeployment(request, timeout=10).deployment
                status = dep.status
                phase: str | None = status.phase
                current = status.observed_generation >= dep.metadata.generation
                seen = f"{status.phase}: {status.message}" if status.message else status.phase
                if not current:
                    seen += " (from before its latest change)"
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise rpc_failure(exc, addr) from None
                phase, seen, current = None, "not found", True
            verdict = decide(phase, condition, current)
            if verdict.done:
                if not verdict.ok:
                    raise fail(f"{subject} is {seen}")
                Console().print(f"{subject} {condition.value.lower()}", highlight=False)
                return
            if time.monotonic() >= deadline:
                raise fail(
                    f"timed out after {timeout:g} s waiting for {subject} to be "
                    f"{condition.value}; it is {seen}"
                )
            time.sleep(POLL_INTERVAL_S)
