"""The server commands: `controlplane`, `agent` and `up` (heavy imports only when one runs)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from cli.client.api import DEFAULT_STATE_DIR, fail
from cli.console import console
from cli.server.flags import (
    address_problem,
    comma_list,
    region_facts_problem,
    region_problem,
    setup_logging,
)
from cli.server.oidc_flags import oidc_settings
from meshline.bind import ip_literal_problem


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
            help="IP the activator (cold starts) listens on and gateways reach it at. Loopback "
            "serves gateways on this host only: give an address of this host that the other "
            "hosts' gateways reach, or their scale-to-zero deployments cannot wake "
            "(docs/security.md: what protects it)"
        ),
    ] = "127.0.0.1",
    metrics_listen: Annotated[
        str, typer.Option(help="host:port of a Prometheus /metrics page (cold starts, replicas)")
    ] = "",
    oidc_issuer: Annotated[
        str, typer.Option(help="Identity provider whose JWTs the management API accepts (iss)")
    ] = "",
    oidc_audience: Annotated[str, typer.Option(help="The aud its tokens must carry")] = "",
    oidc_jwks_file: Annotated[
        Path | None, typer.Option(help="Its public keys (a JWKS file), re-read on refresh")
    ] = None,
    oidc_jwks_uri: Annotated[
        str, typer.Option(help="URL of its JWKS, fetched and refreshed by the control plane")
    ] = "",
    oidc_roles_claim: Annotated[
        str,
        typer.Option(help="Claim listing management roles: admin, viewer, deployer:ENV, ..."),
    ] = "meshline_roles",
    reset_admin_token: Annotated[
        bool,
        typer.Option(
            "--reset-admin-token",
            help="Replace the admin key's secret and write <state-dir>/admin-token again "
            "(when the file was lost)",
        ),
    ] = False,
    log_level: str = "info",
) -> None:
    """Run the control plane: management API, store, xDS (ADS) server, agent streams,
    autoscaler and activator."""
    oidc, problems = oidc_settings(
        oidc_issuer, oidc_audience, oidc_jwks_file, oidc_jwks_uri, oidc_roles_claim
    )
    if problems:
        raise fail("; ".join(problems))
    from controlplane.api.auth_setup import AuthConfig
    from controlplane.main import ControlPlaneConfig, serve

    for flag, value in (("--metrics-listen", metrics_listen),):
        problem = value and address_problem(flag, value)
        if problem:
            raise fail(problem)
    if problem := ip_literal_problem("--activator-host", activator_host, wildcard_ok=False):
        raise fail(problem)
    setup_logging(log_level)
    config = ControlPlaneConfig(
        listen=listen,
        state_dir=state_dir,
        activator_host=activator_host,
        metrics_listen=metrics_listen,
        auth=AuthConfig(oidc, reset_admin_token),
    )
    asyncio.run(serve(config))


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
    host: Annotated[
        str,
        typer.Option(
            help="Address the gateway's inference listener binds and advertises (clients and "
            "other regions' gateways reach it there)"
        ),
    ] = "127.0.0.1",
    gateway_port: Annotated[int, typer.Option(help="Gateway port; 0 picks a free one")] = 0,
    admin_host: Annotated[
        str,
        typer.Option(
            help="IP Envoy's admin interface listens on. It serves config_dump and "
            "/quitquitquit to anyone who reaches it: keep loopback unless you must read it "
            "from another host"
        ),
    ] = "127.0.0.1",
    worker_host: Annotated[
        str,
        typer.Option(
            help="IP the workers' gRPC, HTTP and metrics ports listen on. Only this region's "
            "Envoy (on this host) calls them; other regions come in through the gateway"
        ),
    ] = "127.0.0.1",
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

    cpu = comma_list(cpu_flavors)
    gpu = comma_list(gpu_flavors)
    problem = (
        region_problem(region)
        or address_problem("--controlplane", controlplane)
        or ip_literal_problem("--admin-host", admin_host, wildcard_ok=True)
        or ip_literal_problem("--worker-host", worker_host, wildcard_ok=True)
        or region_facts_problem(region, country, continent, cpu, gpu, max_replicas)
    )
    if problem:
        raise fail(problem)
    setup_logging(log_level)
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
        admin_host=admin_host,
        worker_host=worker_host,
        standby_workers=standby_workers,
        state_dir=state_dir or DEFAULT_STATE_DIR / "regions" / region,
    )
    asyncio.run(run_agent(config))


def up(
    regions: Annotated[str, typer.Option(help="Comma-separated region names")] = "eu,us",
    state_dir: Annotated[Path, typer.Option(help="State, logs and models")] = DEFAULT_STATE_DIR,
    api_port: Annotated[int | None, typer.Option(help="API port (default 7070, else free)")] = None,
) -> None:
    """Start the control plane, one agent per region and the demo deployment; Ctrl-C stops all."""
    from cli.server.up import run_up

    names = list(dict.fromkeys(r.strip() for r in regions.split(",") if r.strip()))
    if not names:
        raise fail("--regions needs at least one region name")
    for name in names:
        if problem := region_problem(name):
            raise fail(problem)
    try:
        run_up(names, state_dir, api_port, console)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
