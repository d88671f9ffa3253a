"""`meshline up`: the whole network on one machine, kept running (a process that dies is started
again), stopped cleanly by Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from cli.client.api import ADDRESS_FILE, ApiClient, api_client
from cli.client.credentials import API_KEY_ENV
from cli.server.demo_key import (
    DEMO_KEY,
    DemoKeyError,
    enforced_everywhere,
    ensure_demo_key,
    remove_key_file,
    write_key_file,
)
from cli.server.local_admin import (
    LOCAL_CONTEXT,
    admin_credential,
    ca_path,
    needs_reset,
    save_local_context,
    serving,
)
from cli.server.stack import Stack
from controlplane.api.documents import parse_resource_document
from meshline.edge_tls import EDGE_CA_CERT_FILE
from meshline.join_token import JOIN_TOKEN_ENV
from meshline.phases import DeploymentPhase
from meshline.process.lock import hold_lock
from meshline.process.ports import free_port
from meshline.v1 import api_pb2, resources_pb2

DEMO_DEPLOYMENT = "demo"
DEFAULT_API_PORT = 7070
# Gateways get 8081, 8082, ... in --regions order when free, so addresses survive restarts.
FIRST_GATEWAY_PORT = 8081
# The agents' join tokens: used at once, so they need not outlive the start.
JOIN_TOKEN_LIFETIME_S = 600


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(
    stack: Stack,
    what: str,
    check: Callable[[], bool],
    timeout_s: float,
    explain: Callable[[], str] = lambda: "",
) -> None:
    """Poll `check`; fail at once if a child dies, or with `explain()` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dead := stack.dead():
            raise RuntimeError(
                f"{dead.name} exited while waiting for {what}:\n{_tail(dead.log_path)}"
            )
        try:
            if check():
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    detail = ""
    with contextlib.suppress(grpc.RpcError):
        detail = explain()
    raise RuntimeError(
        f"timed out after {timeout_s:.0f}s waiting for {what}"
        + (f": {detail}" if detail else "")
        + f" (logs in {stack.state_dir / 'logs'})"
    )


# Where the demo regions are, by name prefix, so that "nearest" routing has places to compare.
DEMO_PLACES: dict[str, tuple[str, str]] = {"eu": ("FR", "EU"), "us": ("US", "NA")}


def demo_region_facts(region: str) -> resources_pb2.RegionSpec:
    """Country and continent of a demo region named eu* or us*; none for other names. They go
    into the region's join token: an agent does not say where it is."""
    for prefix, (country, continent) in DEMO_PLACES.items():
        if region.startswith(prefix):
            return resources_pb2.RegionSpec(country=country, continent=continent)
    return resources_pb2.RegionSpec()


def create_join_token(api: ApiClient, region: str) -> str:
    """A short-lived join token for `region` with its demo facts (the secret, once)."""
    request = api_pb2.CreateJoinTokenRequest(
        spec=resources_pb2.JoinTokenSpec(region=region, facts=demo_region_facts(region)),
        expires_in_s=JOIN_TOKEN_LIFETIME_S,
    )
    try:
        reply = api.regions.CreateJoinToken(request, timeout=10)
    except grpc.RpcError as exc:
        raise RuntimeError(f"cannot create region {region}'s join token: {exc.details()}") from None
    secret: str = reply.secret
    return secret


def demo_documents(model_path: Path, regions: list[str]) -> str:
    return f"""\
kind: Environment
metadata: {{name: production}}
spec:
  description: Where real traffic goes.
  policies:
    # Secure by default: every call needs an API key whose scope covers the deployment
    # (`up` makes one, `{DEMO_KEY}`); `access: {{anonymous: true}}` would let anyone in.
    - {{mode: mandatory, access: {{}}}}
---
kind: Model
metadata: {{name: demo-mlp}}
spec:
  description: A seeded 784-128-10 MLP built locally (no download).
  versions:
    - name: v1
      runtime: torch
      path: {model_path}
      signature:
        inputs: [{{name: input, datatype: FP32, shape: [-1, 784]}}]
        outputs: [{{name: output, datatype: FP32, shape: [-1, 10]}}]
---
kind: Deployment
metadata: {{name: {DEMO_DEPLOYMENT}}}
spec:
  environment: production
  model: demo-mlp
  version: v1
  replicas: 2
  policies:
    - location: {{regions: [{", ".join(regions)}]}}
"""


def run_up(
    regions: list[str],
    state_dir: Path,
    api_port: int | None,
    console: Console,
    *,
    edge_tls: bool = False,
    xds_protocol: str = "sotw",
) -> None:
    """`edge_tls`: every gateway serves clients TLS with a certificate of the control plane's
    edge CA. `xds_protocol`: each agent's --xds-protocol (sotw or delta)."""
    import yaml

    from workers.demo import build_mlp

    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    port = api_port or (DEFAULT_API_PORT if port_free(DEFAULT_API_PORT) else free_port("127.0.0.1"))
    address = f"127.0.0.1:{port}"
    mesh_address = f"127.0.0.1:{_stable_port(port + 1)}"  # agents and Envoys, mTLS
    stack = Stack(state_dir, console)
    # `kill` stops as cleanly as Ctrl-C, also when a shell started `up` in the background
    # (background jobs inherit an ignored SIGINT).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    lock = hold_lock(state_dir / "up.lock")
    controlplane_dir = state_dir / "controlplane"
    try:
        with console.status("starting the control plane"):

            def controlplane_args() -> list[str]:
                # Worked out at each start: a restart finds the admin token the first wrote.
                reset = ["--reset-admin-token"] if needs_reset(controlplane_dir) else []
                return [
                    "controlplane",
                    "--listen",
                    address,
                    "--mesh-listen",
                    mesh_address,
                    "--state-dir",
                    str(controlplane_dir),
                    *reset,
                ]

            # Restarted on the same addresses, state dir, CA and admin token: agents and
            # Envoys reconnect to it by themselves.
            stack.start("controlplane", controlplane_args)
            # Health answers without a credential; the admin token is on disk once it does.
            ca = ca_path(controlplane_dir)
            wait_for(stack, "the control plane API", lambda: serving(address, ca), 60)
            admin = admin_credential(controlplane_dir)
            if admin is None:
                raise RuntimeError(f"the control plane wrote no admin token in {controlplane_dir}")
            with api_client(address, admin) as api:
                try:
                    secret = ensure_demo_key(api)
                except DemoKeyError as exc:
                    raise RuntimeError(str(exc)) from None
                join_tokens = {region: create_join_token(api, region) for region in regions}
        (state_dir / ADDRESS_FILE).write_text(address)
        key_file = write_key_file(state_dir, secret)
        context_file = save_local_context(address, admin)
        console.print(
            f"context '{LOCAL_CONTEXT}' (server {address}, admin token) written to "
            f"{context_file} and made current"
        )
        for index, region in enumerate(regions):
            stack.start(
                f"agent-{region}",
                [
                    "agent",
                    "--region",
                    region,
                    "--controlplane",
                    address,
                    "--state-dir",
                    str(state_dir / "regions" / region),
                    "--gateway-port",
                    str(_stable_port(FIRST_GATEWAY_PORT + index)),
                    "--ca-file",
                    str(ca),
                    *(["--tls-from-mesh-ca"] if edge_tls else []),
                    "--xds-protocol",
                    xds_protocol,
                ],
                env={JOIN_TOKEN_ENV: join_tokens[region]},
            )
        with console.status("building the demo model"):
            model_path = build_mlp(state_dir / "models" / "demo-mlp-v1.pt", seed=0)
        demo_file = state_dir / "demo.yaml"
        demo_file.write_text(demo_documents(model_path, regions))
        with api_client(address, admin) as api:
            with console.status("waiting for the agents to register"):
                wait_for(
                    stack,
                    "every region's agent",
                    lambda: (
                        {
                            r.metadata.name
                            for r in api.regions.ListRegions(
                                api_pb2.ListRegionsRequest(), timeout=2
                            ).regions
                            if r.status.agent_connected
                        }
                        >= set(regions)
                    ),
                    60,
                )
            resources = [
                parse_resource_document(doc, str(demo_file), i)
                for i, doc in enumerate(yaml.safe_load_all(demo_file.read_text()))
            ]
            try:
                api.apply.Apply(api_pb2.ApplyRequest(resources=resources), timeout=10)
            except grpc.RpcError as exc:
                raise RuntimeError(f"applying {demo_file} failed: {exc.details()}") from None

            def demo_status() -> resources_pb2.DeploymentStatus:
                request = api_pb2.GetDeploymentRequest(name=DEMO_DEPLOYMENT)
                return api.deployments.GetDeployment(request, timeout=2).deployment.status

            def demo_ready() -> bool:
                status = demo_status()
                if status.phase == DeploymentPhase.FAILED:
                    raise RuntimeError(f"the demo deployment failed: {status.message}")
                return status.phase == DeploymentPhase.READY

            with console.status("waiting for the demo deployment to be Ready in every region"):
                wait_for(
                    stack,
                    "the demo deployment",
                    demo_ready,
                    180,
                    explain=lambda: demo_status().message,
                )
            with console.status(f"waiting for every gateway to enforce API key {DEMO_KEY}"):
                wait_for(
                    stack,
                    f"API key {DEMO_KEY} in every region",
                    lambda: enforced_everywhere(api, regions),
                    60,
                )
            regions_now = api.regions.ListRegions(api_pb2.ListRegionsRequest(), timeout=2).regions
        edge_ca = (controlplane_dir / EDGE_CA_CERT_FILE).resolve() if edge_tls else None
        _print_endpoints(console, address, regions_now, demo_file, secret, key_file, edge_ca)
        # From here on a process that dies is started again (with backoff, saying so): the
        # data plane is never stopped for it. Only Ctrl-C (or `kill`) stops `up`.
        while True:
            stack.tend()
            time.sleep(0.2)
    except KeyboardInterrupt:
        console.print("\nstopping")
    finally:
        stack.stop()
        (state_dir / ADDRESS_FILE).unlink(missing_ok=True)
        remove_key_file(state_dir)
        lock.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stable_port(preferred: int) -> int:
    return preferred if port_free(preferred) else free_port("127.0.0.1")


def port_free(port: int) -> bool:
    """Whether a server could listen on the port now.

    SO_REUSEADDR as Envoy and gRPC servers set it: the TIME-WAIT connections that the previous
    `up` left behind do not make its ports look taken, so a restart gets the same ports.
    """
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _print_endpoints(
    console: Console,
    address: str,
    regions: object,
    demo_file: Path,
    secret: str,
    key_file: Path,
    edge_ca: Path | None = None,
) -> None:
    """`edge_ca`: the gateways serve TLS with certificates of this CA, the control plane's edge
    CA (None: plain text)."""
    table = Table("REGION", "GATEWAY (gRPC + HTTP)", "ENVOY ADMIN", box=None, header_style="bold")
    first_gateway = ""
    for r in regions:  # type: ignore[attr-defined]
        table.add_row(r.metadata.name, r.status.gateway_address, r.status.admin_address)
        first_gateway = first_gateway or r.status.gateway_address
    bearer = f'-H "authorization: Bearer ${API_KEY_ENV}"'
    curl = f"curl -s http://{first_gateway}/v2/models/{DEMO_DEPLOYMENT} {bearer}"
    client = 'client.infer(..., headers={"authorization": f"Bearer {key}"})'
    triton = f"tritonclient: {client}"
    if edge_ca is not None:
        curl = (
            f"curl -s --cacert {edge_ca} https://{first_gateway}/v2/models/{DEMO_DEPLOYMENT} "
            f"{bearer}"
        )
        triton = (
            f'tritonclient: grpcclient.InferenceServerClient("{first_gateway}", ssl=True, '
            f'root_certificates="{edge_ca}"); {client}'
        )
    console.print(f"\n[bold green]meshline is up[/]  control plane API: [bold]{address}[/]\n")
    console.print(table)
    if edge_ca is not None:
        console.print(
            f"\nThe gateways serve TLS; clients trust the edge CA {edge_ca}", highlight=False
        )
    console.print(
        f"""
demo deployment [bold]{DEMO_DEPLOYMENT}[/] (from {demo_file}) is Ready.
Every call needs an API key: [bold]{DEMO_KEY}[/] (environment production) is in {key_file}
(`meshline infer` reads it there), its secret:
  {secret}
Try:
  meshline get deployments
  meshline infer {DEMO_DEPLOYMENT} --input input=0.5
  export {API_KEY_ENV}=$(cat {key_file})
  {curl}
  {triton}
Logs: {demo_file.parent / "logs"}   Press Ctrl-C to stop everything.
""",
        highlight=False,
        soft_wrap=True,  # the secret stays on one line whatever the terminal's width
    )
