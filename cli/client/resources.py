"""`apply`, `plan`, `get` and `delete`: resources through the management API."""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Annotated

import grpc
import typer

from cli.client import render
from cli.client.api import (
    AddressOption,
    ApiClient,
    api_client,
    call,
    fail,
    resolve_address,
    rpc_failure,
)
from cli.client.render import OutputFormat
from cli.console import console
from meshline.v1 import api_pb2, resources_pb2


def _apply(
    files: list[Path], dry_run: bool, address: str | None
) -> tuple[api_pb2.ApplyResponse, dict[str, str]]:
    """The reply, and each deployment's environment (the plans name it)."""
    from cli.client.documents import DocumentsError, explain_rejection, read_documents

    try:
        sourced = read_documents(files)
    except DocumentsError as exc:
        raise fail(str(exc)) from None
    request = api_pb2.ApplyRequest(resources=[s.resource for s in sourced], dry_run=dry_run)
    addr = resolve_address(address)
    with api_client(addr) as api:
        try:
            reply: api_pb2.ApplyResponse = api.apply.Apply(request, timeout=30)
        except grpc.RpcError as exc:
            if explained := explain_rejection(exc, sourced):
                # A plan or dry run never stores anything: its refusal must not read like one.
                verdict = "this change would be refused" if dry_run else "nothing was applied"
                raise fail(f"{verdict}:\n{explained}") from None
            raise rpc_failure(exc, addr) from None
    environments = {
        s.resource.deployment.metadata.name: s.resource.deployment.spec.environment
        for s in sourced
        if s.resource.WhichOneof("kind") == "deployment"
    }
    return reply, environments


def _print_effects(reply: api_pb2.ApplyResponse, would: bool) -> None:
    from cli.client.render import effect_line

    if reply.effects:
        console.print("deployments this change moves or re-routes:", highlight=False)
    for effect in reply.effects:
        console.print(effect_line(effect, would), highlight=False, markup=False, soft_wrap=True)


def _print_plans(reply: api_pb2.ApplyResponse, environments: dict[str, str]) -> None:
    from cli.client.render import plan_lines

    for result in reply.results:
        if result.kind == "Deployment" and result.HasField("plan"):
            env = environments.get(result.name, "")
            for line in plan_lines(result.name, env, result.plan):
                console.print(line, highlight=False, markup=False, soft_wrap=True)


def apply(
    file: Annotated[list[Path], typer.Option("-f", "--file", help="YAML file(s); '-' for stdin")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, resolve and explain only (like plan)")
    ] = False,
    address: AddressOption = None,
) -> None:
    """Create or update resources from YAML (kind: Model | Environment | Deployment | Region)."""
    reply, environments = _apply(file, dry_run, address)
    suffix = " (dry run)" if dry_run else ""
    for result in reply.results:
        placement = f" → {', '.join(result.placement)}" if result.placement else ""
        console.print(
            f"{result.kind.lower()}/{result.name} {result.action}{suffix}{placement}",
            highlight=False,
        )
    _print_effects(reply, would=dry_run)
    if dry_run:
        _print_plans(reply, environments)


def plan(
    file: Annotated[list[Path], typer.Option("-f", "--file", help="YAML file(s); '-' for stdin")],
    address: AddressOption = None,
) -> None:
    """Explain what applying FILE would do: merged policies, regions (and why others are
    excluded), and the routes, weights, priorities and retries each gateway would get."""
    reply, environments = _apply(file, True, address)
    for result in reply.results:
        if result.kind != "Deployment":
            action = result.action if result.action == "unchanged" else f"would be {result.action}"
            console.print(f"{result.kind.lower()}/{result.name} {action}", highlight=False)
    _print_effects(reply, would=True)
    _print_plans(reply, environments)


class Kind(str, Enum):
    models = "models"
    environments = "environments"
    deployments = "deployments"
    regions = "regions"


KIND_ALIASES = {
    "model": Kind.models,
    "environment": Kind.environments,
    "env": Kind.environments,
    "deployment": Kind.deployments,
    "deploy": Kind.deployments,
    "region": Kind.regions,
}


def _kind(value: str) -> Kind:
    try:
        return KIND_ALIASES.get(value) or Kind(value)
    except ValueError:
        raise fail(
            f"unknown kind {value!r}; one of: models, environments, deployments, regions"
        ) from None


def get(
    kind: Annotated[str, typer.Argument(help="models | environments | deployments | regions")],
    name: Annotated[str | None, typer.Argument(help="Only this one")] = None,
    environment: Annotated[str | None, typer.Option("--environment", "-e")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """List resources with their live status."""
    which = _kind(kind)
    addr = resolve_address(address)
    with api_client(addr) as api:
        if which is Kind.models:
            items = list(
                call(
                    addr, lambda: api.models.ListModels(api_pb2.ListModelsRequest(), timeout=10)
                ).models
            )
            table = render.models_table
        elif which is Kind.environments:
            items = list(
                call(
                    addr,
                    lambda: api.environments.ListEnvironments(
                        api_pb2.ListEnvironmentsRequest(), timeout=10
                    ),
                ).environments
            )
            table = render.environments_table
        elif which is Kind.deployments:
            items = list_deployments(api, addr, environment or "")
            table = render.deployments_table
        else:
            items = list(
                call(
                    addr, lambda: api.regions.ListRegions(api_pb2.ListRegionsRequest(), timeout=10)
                ).regions
            )
            table = render.regions_table
    if name is not None:
        items = [i for i in items if i.metadata.name == name]
        if not items:
            raise fail(f"{which.value[:-1]} {name!r} not found")
    if output is OutputFormat.table:
        console.print(table(items))
    else:
        render.print_structured(items, output, single=name is not None)


# Deployments per ListDeployments answer: 10,000 with status in one answer would pass gRPC's
# default 4 MiB limit on the way in, and the first rows would wait for the last.
DEPLOYMENTS_PAGE = 500


def list_deployments(api: ApiClient, addr: str, environment: str) -> list[resources_pb2.Deployment]:
    """Every deployment (of `environment` when set), page after page."""

    def page(token: str) -> api_pb2.ListDeploymentsResponse:
        request = api_pb2.ListDeploymentsRequest(
            environment=environment, page_size=DEPLOYMENTS_PAGE, page_token=token
        )
        reply: api_pb2.ListDeploymentsResponse = api.deployments.ListDeployments(
            request, timeout=30
        )
        return reply

    out: list[resources_pb2.Deployment] = []
    token = ""
    while True:
        reply = call(addr, functools.partial(page, token))
        out += reply.deployments
        token = reply.next_page_token
        if not token:
            return out


_KIND_OF = {
    Kind.models: "Model",
    Kind.environments: "Environment",
    Kind.deployments: "Deployment",
    Kind.regions: "Region",
}


def delete(
    kind: Annotated[
        str | None, typer.Argument(help="model | environment | deployment | region")
    ] = None,
    name: Annotated[str | None, typer.Argument()] = None,
    file: Annotated[
        list[Path] | None, typer.Option("-f", "--file", help="Delete what these YAML files define")
    ] = None,
    environment: Annotated[str, typer.Option("--environment", "-e")] = "production",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything, delete nothing")
    ] = False,
    ignore_not_found: Annotated[
        bool,
        typer.Option("--ignore-not-found", help="A resource that does not exist is no error"),
    ] = False,
    address: AddressOption = None,
) -> None:
    """Delete a resource, or everything YAML files define: all of it or nothing.

    Dependents go first (a deployment before its model); refused as a whole, with every
    reason, while something not being deleted still uses one of them.
    """
    targets: list[api_pb2.ResourceRef] = []
    if file:
        from cli.client.documents import DocumentsError, read_documents

        try:
            sourced = read_documents(file)
        except DocumentsError as exc:
            raise fail(str(exc)) from None
        for doc in sourced:
            field = doc.resource.WhichOneof("kind") or ""
            inner = getattr(doc.resource, field)
            env = inner.spec.environment or "production" if field == "deployment" else ""
            ref = api_pb2.ResourceRef(
                kind=_KIND_OF[_kind(field)], name=inner.metadata.name, environment=env
            )
            targets.append(ref)
    elif kind and name:
        which = _kind(kind)
        env = environment if which is Kind.deployments else ""
        targets.append(api_pb2.ResourceRef(kind=_KIND_OF[which], name=name, environment=env))
    else:
        raise fail("give KIND NAME (e.g. `meshline delete deployment demo`) or -f FILE")
    addr = resolve_address(address)
    request = api_pb2.DeleteRequest(
        targets=targets, dry_run=dry_run, ignore_not_found=ignore_not_found
    )
    with api_client(addr) as api:
        response = call(addr, lambda: api.apply.Delete(request, timeout=10))
    suffix = " (dry run)" if dry_run else ""  # as kubectl says it
    for result in response.results:
        target = result.target
        line = f"{target.kind.lower()}/{target.name} {result.action}{suffix}"
        console.print(line, highlight=False)
