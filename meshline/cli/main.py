"""`meshline`: run the network and manage what it serves (typer + rich)."""

from __future__ import annotations

import asyncio
import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import grpc
import typer
import yaml
from rich.console import Console

from meshline.cli import lifecycle, render, rollout, wait
from meshline.cli.client import (
    DEFAULT_STATE_DIR,
    api_client,
    call,
    fail,
    resolve_address,
    rpc_failure,
)
from meshline.cli.models import app as models_app
from meshline.cli.release import release
from meshline.cli.render import OutputFormat
from meshline.v1 import api_pb2

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
# Not a terminal (pipes, CI): do not squeeze tables into 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=200)

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Control plane API (host:port); default: $MESHLINE_ADDRESS "
        "or what `meshline up` recorded in .meshline/",
    ),
]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _region_problem(name: str) -> str | None:
    from controlplane.store.names import dns1123_label_problem

    problem = dns1123_label_problem(name)
    return f"region name {problem}" if problem else None


def _address_problem(flag: str, address: str) -> str | None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"{flag} {address!r}: expected host:port, e.g. 127.0.0.1:7070"
    return None


@app.command()
def controlplane(
    listen: Annotated[
        str, typer.Option(help="host:port for the API, ADS and agent streams")
    ] = "127.0.0.1:7070",
    state_dir: Annotated[
        Path, typer.Option(help="Where the SQLite store lives")
    ] = DEFAULT_STATE_DIR / "controlplane",
    activator_host: Annotated[
        str,
        typer.Option(
            help="IP the activator (cold starts) listens on and gateways reach; "
            "default: the --listen host, or 127.0.0.1"
        ),
    ] = "",
    metrics_listen: Annotated[
        str, typer.Option(help="host:port of a Prometheus /metrics page (cold starts, replicas)")
    ] = "",
    log_level: str = "info",
) -> None:
    """Run the control plane: management API, store, xDS (ADS) server, agent streams,
    autoscaler and activator."""
    from controlplane.main import ControlPlaneConfig, serve

    for flag, value in (("--metrics-listen", metrics_listen),):
        problem = value and _address_problem(flag, value)
        if problem:
            raise fail(problem)
    _setup_logging(log_level)
    config = ControlPlaneConfig(
        listen=listen,
        state_dir=state_dir,
        activator_host=activator_host,
        metrics_listen=metrics_listen,
    )
    asyncio.run(serve(config))


@app.command()
def agent(
    region: Annotated[str, typer.Option(help="Region this agent runs")],
    controlplane: Annotated[
        str, typer.Option(help="Control plane address host:port")
    ] = "127.0.0.1:7070",
    state_dir: Annotated[Path | None, typer.Option(help="Logs and Envoy bootstrap")] = None,
    country: Annotated[str, typer.Option(help="ISO country code of the region, e.g. DE")] = "",
    continent: Annotated[
        str, typer.Option(help="Continent code of the region: AF, AN, AS, EU, NA, OC, SA")
    ] = "",
    cpu_flavors: Annotated[
        str, typer.Option(help="CPU flavors the region offers, comma-separated")
    ] = "",
    gpu_flavors: Annotated[
        str, typer.Option(help="GPU flavors the region offers, comma-separated")
    ] = "",
    max_replicas: Annotated[
        int, typer.Option(help="Most worker replicas the region runs; 0 = unlimited")
    ] = 0,
    host: Annotated[str, typer.Option(help="Address to bind and advertise")] = "127.0.0.1",
    gateway_port: Annotated[int, typer.Option(help="Gateway port; 0 picks a free one")] = 0,
    standby_workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Torch interpreters kept with their imports done, so a worker (a cold start) "
            "only loads its model; each costs memory, not CPU, while it waits. 0 = none",
        ),
    ] = 1,
    log_level: str = "info",
) -> None:
    """Run a region: its Envoy gateway and its workers, as the control plane asks.

    The region registers with the facts given here unless a Region of its name was applied.
    """
    from workers.agent.config import AgentConfig
    from workers.agent.main import run_agent

    cpu = _comma_list(cpu_flavors)
    gpu = _comma_list(gpu_flavors)
    problem = (
        _region_problem(region)
        or _address_problem("--controlplane", controlplane)
        or _region_facts_problem(region, country, continent, cpu, gpu, max_replicas)
    )
    if problem:
        raise fail(problem)
    _setup_logging(log_level)
    config = AgentConfig(
        region=region,
        controlplane=controlplane,
        country=country.upper(),
        continent=continent.upper(),
        cpu_flavors=cpu,
        gpu_flavors=gpu,
        max_replicas=max_replicas,
        host=host,
        gateway_port=gateway_port,
        standby_workers=standby_workers,
        state_dir=state_dir or DEFAULT_STATE_DIR / "regions" / region,
    )
    asyncio.run(run_agent(config))


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


# The agent's flags for what the region registers as, by the Region field each one sets.
_REGION_FLAGS = {
    "spec.country": "--country",
    "spec.continent": "--continent",
    "spec.flavors.cpu": "--cpu-flavors",
    "spec.flavors.gpu": "--gpu-flavors",
    "spec.max_replicas": "--max-replicas",
}


def _region_facts_problem(
    region: str,
    country: str,
    continent: str,
    cpu: tuple[str, ...],
    gpu: tuple[str, ...],
    max_replicas: int,
) -> str | None:
    """The control plane's own checks of a Region, run before anything starts."""
    from controlplane.api.registration import region_problems
    from meshline.v1.resources_pb2 import FlavorSet, RegionSpec

    spec = RegionSpec(
        country=country,
        continent=continent,
        flavors=FlavorSet(cpu=cpu, gpu=gpu),
        max_replicas=max_replicas,
    )
    problems = []
    for error in region_problems(region, spec):
        path = error.field_path.split("[", 1)[0]
        flag = _REGION_FLAGS.get(path, error.field_path)
        problems.append(f"{flag}: {error.message}")
    return "; ".join(problems) or None


@app.command()
def up(
    regions: Annotated[str, typer.Option(help="Comma-separated region names")] = "eu,us",
    state_dir: Annotated[Path, typer.Option(help="State, logs and models")] = DEFAULT_STATE_DIR,
    api_port: Annotated[int | None, typer.Option(help="API port (default 7070, else free)")] = None,
) -> None:
    """Start the control plane, one agent per region and the demo deployment; Ctrl-C stops all."""
    from meshline.cli.up import run_up

    names = list(dict.fromkeys(r.strip() for r in regions.split(",") if r.strip()))
    if not names:
        raise fail("--regions needs at least one region name")
    for name in names:
        if problem := _region_problem(name):
            raise fail(problem)
    try:
        run_up(names, state_dir, api_port, console)
    except RuntimeError as exc:
        raise fail(str(exc)) from None


def _apply(
    files: list[Path], dry_run: bool, address: str | None
) -> tuple[api_pb2.ApplyResponse, dict[str, str]]:
    """The reply, and each deployment's environment (the plans name it)."""
    from meshline.cli.documents import DocumentsError, explain_rejection, read_documents

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
    from meshline.cli.render import effect_line

    if reply.effects:
        console.print("deployments this change moves or re-routes:", highlight=False)
    for effect in reply.effects:
        console.print(effect_line(effect, would), highlight=False, markup=False, soft_wrap=True)


def _print_plans(reply: api_pb2.ApplyResponse, environments: dict[str, str]) -> None:
    from meshline.cli.render import plan_lines

    for result in reply.results:
        if result.kind == "Deployment" and result.HasField("plan"):
            env = environments.get(result.name, "")
            for line in plan_lines(result.name, env, result.plan):
                console.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command()
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


@app.command()
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


@app.command()
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
            items = list(
                call(
                    addr,
                    lambda: api.deployments.ListDeployments(
                        api_pb2.ListDeploymentsRequest(environment=environment or ""), timeout=10
                    ),
                ).deployments
            )
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


_KIND_OF = {
    Kind.models: "Model",
    Kind.environments: "Environment",
    Kind.deployments: "Deployment",
    Kind.regions: "Region",
}


@app.command()
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
        from meshline.cli.documents import DocumentsError, read_documents

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


@app.command()
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
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    address: AddressOption = None,
) -> None:
    """Send one inference request through a region's Envoy gateway."""
    from meshline.cli.infer import InferError, infer_grpc, infer_http, parse_input

    target = gateway or _gateway_of(region, resolve_address(address), deployment, environment)
    try:
        inputs = [parse_input(i) for i in input]
        result = (infer_http if http else infer_grpc)(target, deployment, environment, inputs)
    except InferError as exc:
        raise fail(str(exc)) from None
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
            else __import__("json").dumps(payload)
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


app.add_typer(models_app, name="models")
app.command(name="release")(release)

if __name__ == "__main__":
    app()
