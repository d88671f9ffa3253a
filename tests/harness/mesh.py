"""A real meshline network for end-to-end tests: control plane + one agent per region.

Every process runs from the real `meshline` entry points; the agents start the
real Envoy and real Torch workers. All of it is stopped when the block ends.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from controlplane.api.documents import parse_resource_document
from meshline.join_token import JOIN_TOKEN_ENV
from meshline.v1 import api_pb2, api_pb2_grpc, resources_pb2
from meshline.wire import CA_CERT_FILE
from tests.harness.credentials import management_channel, register_control_plane, wait_serving
from tests.harness.envoy_admin import read_clusters
from tests.harness.netns import Netns
from tests.harness.processes import ManagedProcess, free_port, wait_until

MESHLINE = [sys.executable, "-m", "cli"]
# A worker's `--host` and `--http-port` flags in its /proc cmdline.
_FLAG = re.compile(r"--(host|http-port)[\s\0]+([^\s\0]+)")
# A line of the Torch worker's per-principal request counter.
_PRINCIPAL_LINE = re.compile(
    r'^meshline_worker_principal_requests_total\{.*principal="(?P<principal>[^"]*)".*\} '
    r"(?P<value>\S+)$"
)


@dataclass
class Mesh:
    state_dir: Path
    address: str
    regions: tuple[str, ...]
    controlplane: ManagedProcess
    agents: dict[str, ManagedProcess] = field(default_factory=dict)
    channel: grpc.Channel | None = None
    # The control plane's Prometheus page (host:port), chosen free at start.
    metrics_address: str = ""
    # More `meshline controlplane` flags (e.g. a short --gateway-cert-ttl).
    controlplane_flags: tuple[str, ...] = ()
    # The control plane's mesh port (mTLS: agents, Envoys), chosen free at the first start and
    # kept across restarts (agents keep the address Join gave them).
    mesh_address: str = ""

    # -- API ------------------------------------------------------------------------------

    def _channel(self) -> grpc.Channel:
        """The management API, with the control plane's admin token on every call."""
        if self.channel is None:
            self.channel = management_channel(self.address, self.state_dir / "controlplane")
        return self.channel

    @property
    def deployments(self) -> api_pb2_grpc.DeploymentServiceStub:
        return api_pb2_grpc.DeploymentServiceStub(self._channel())

    @property
    def models(self) -> api_pb2_grpc.ModelServiceStub:
        return api_pb2_grpc.ModelServiceStub(self._channel())

    @property
    def rollouts(self) -> api_pb2_grpc.RolloutServiceStub:
        return api_pb2_grpc.RolloutServiceStub(self._channel())

    @property
    def regions_api(self) -> api_pb2_grpc.RegionServiceStub:
        return api_pb2_grpc.RegionServiceStub(self._channel())

    @property
    def keys(self) -> api_pb2_grpc.KeyServiceStub:
        return api_pb2_grpc.KeyServiceStub(self._channel())

    def create_key(
        self,
        name: str,
        *,
        environment: str = "",
        deployments: Sequence[str] = (),
        roles: Sequence[str] = (),
    ) -> str:
        """Create API key `name` with that scope through KeyService; its secret (shown once)."""
        spec = resources_pb2.ApiKeySpec(
            environment=environment, deployments=list(deployments), roles=list(roles)
        )
        reply = self.keys.CreateKey(api_pb2.CreateKeyRequest(name=name, spec=spec), timeout=10)
        secret: str = reply.secret
        return secret

    def create_join_token(
        self,
        region: str,
        *,
        country: str = "",
        continent: str = "",
        cpu_flavors: Sequence[str] = (),
        gpu_flavors: Sequence[str] = (),
        max_replicas: int = 0,
        expires_in_s: float = 0,
    ) -> str:
        """A join token for `region` with these facts, through RegionService (the secret)."""
        facts = resources_pb2.RegionSpec(
            country=country,
            continent=continent,
            flavors=resources_pb2.FlavorSet(cpu=list(cpu_flavors), gpu=list(gpu_flavors)),
            max_replicas=max_replicas,
        )
        request = api_pb2.CreateJoinTokenRequest(
            spec=resources_pb2.JoinTokenSpec(region=region, facts=facts),
            expires_in_s=expires_in_s,
        )
        secret: str = self.regions_api.CreateJoinToken(request, timeout=10).secret
        return secret

    @property
    def ca_file(self) -> Path:
        """The mesh CA (public): what agents and API clients trust."""
        return self.state_dir / "controlplane" / CA_CERT_FILE

    def key(self, name: str) -> resources_pb2.ApiKey:
        return self.keys.GetKey(api_pb2.GetKeyRequest(name=name), timeout=10).key

    def apply(
        self, text: str, dry_run: bool = False, timeout_s: float = 30
    ) -> api_pb2.ApplyResponse:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        resources = [parse_resource_document(d, "<test>", i) for i, d in enumerate(docs)]
        return self.apply_resources(resources, dry_run, timeout_s)

    def apply_resources(
        self, resources: Sequence[api_pb2.Resource], dry_run: bool = False, timeout_s: float = 30
    ) -> api_pb2.ApplyResponse:
        """Apply resources as they are (e.g. a spec read back with `region`, to restore it)."""
        stub = api_pb2_grpc.ApplyServiceStub(self._channel())
        reply: api_pb2.ApplyResponse = stub.Apply(
            api_pb2.ApplyRequest(resources=resources, dry_run=dry_run), timeout=timeout_s
        )
        return reply

    def delete_deployments(self, names: Sequence[str], environment: str = "production") -> None:
        """All at once, in one change (as `meshline delete -f` does): one rebuild, not one per
        deployment; those already gone are fine."""
        targets = [
            api_pb2.ResourceRef(kind="Deployment", name=name, environment=environment)
            for name in names
        ]
        stub = api_pb2_grpc.ApplyServiceStub(self._channel())
        stub.Delete(api_pb2.DeleteRequest(targets=targets, ignore_not_found=True), timeout=60)

    def deployment(self, name: str, environment: str = "production") -> resources_pb2.Deployment:
        reply = self.deployments.GetDeployment(
            api_pb2.GetDeploymentRequest(name=name, environment=environment), timeout=10
        )
        return reply.deployment

    def set_active(
        self, name: str, active: bool, environment: str = "production"
    ) -> api_pb2.SetDeploymentActiveResponse:
        reply: api_pb2.SetDeploymentActiveResponse = self.deployments.SetDeploymentActive(
            api_pb2.SetDeploymentActiveRequest(name=name, environment=environment, active=active),
            timeout=10,
        )
        return reply

    def metrics(self) -> str:
        """The control plane's Prometheus page."""
        with urllib.request.urlopen(f"http://{self.metrics_address}/metrics", timeout=5) as r:
            text: str = r.read().decode()
        return text

    def region(self, name: str) -> resources_pb2.Region:
        return self.regions_api.GetRegion(api_pb2.GetRegionRequest(name=name), timeout=10).region

    def gateway(self, region: str) -> str:
        address = self.region(region).status.gateway_address
        assert address, f"region {region} has no gateway address yet"
        return address

    def gateway_hosts(self, region: str, cluster: str) -> dict[str, str]:
        """hostname → health flags of every host of `cluster`, from the region's Envoy admin."""
        hosts = read_clusters(self.region(region).status.admin_address)
        return {
            stats.get("hostname", address): stats.get("health_flags", "")
            for (name, address), stats in hosts.items()
            if name == cluster
        }

    def worker_pids(self, region: str, deployment: str, pattern: bool = False) -> list[int]:
        """Worker processes of `deployment` (any environment) that this mesh's agent of
        `region` runs now, in any state. Only this mesh's: the agent leads its own process group
        (ManagedProcess starts a new session) and its workers stay in it, so another run's mesh
        on the same machine, with the same names, is not seen. Matched on the worker's exact
        --model-name (a worker id's prefix would also match deployment `{deployment}-b`);
        with `pattern`, `deployment` is a regular expression for the names."""
        out = subprocess.run(
            [
                "pgrep",
                "-g",
                str(self.agents[region].pid),
                "-f",
                f"model-name {deployment if pattern else re.escape(deployment)}( |$)",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in out.stdout.split()]

    def shared_worker_pids(self, region: str) -> list[int]:
        """The shared worker processes (resources.packing: shared) this mesh's agent of
        `region` runs now."""
        out = subprocess.run(
            ["pgrep", "-g", str(self.agents[region].pid), "-f", "[-]-shared .*--control-port"],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in out.stdout.split()]

    def worker_metrics(self, region: str, deployment: str) -> list[str]:
        """The Prometheus page of each worker of `deployment` in `region`, read from the
        worker itself (its --http-port), not through the agent's periodic scrape. Raises
        LookupError when there is none: a count of nothing proves nothing."""
        pages = []
        for pid in self.worker_pids(region, deployment):
            try:
                # NUL-separated, or one line when a standby took the worker's command line as
                # its process title.
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            except FileNotFoundError:  # it exited since pgrep saw it
                continue
            flags = dict(_FLAG.findall(cmdline))
            url = f"http://{flags.get('host', '127.0.0.1')}:{flags['http-port']}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                pages.append(r.read().decode())
        if not pages:
            raise LookupError(f"no worker of {deployment} runs in {region}")
        return pages

    def worker_requests(self, region: str, deployment: str) -> int:
        """Inference requests the workers of `deployment` in `region` received (gRPC and REST),
        by their own counter (`meshline_worker_requests_total`)."""
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for page in self.worker_metrics(region, deployment)
            for line in page.splitlines()
            if line.startswith("meshline_worker_requests_total{")
        )

    def worker_principals(self, region: str, deployment: str) -> dict[str, int]:
        """principal → requests the workers of `deployment` in `region` received from it, by
        their own counter of the x-meshline-principal the entry gateway set."""
        counts: dict[str, int] = {}
        for page in self.worker_metrics(region, deployment):
            for line in page.splitlines():
                found = _PRINCIPAL_LINE.match(line)
                if found:
                    name = found.group("principal")
                    counts[name] = counts.get(name, 0) + int(float(found.group("value")))
        return counts

    # -- waiting --------------------------------------------------------------------------

    def wait_agents(self, timeout_s: float = 60) -> None:
        def connected() -> bool:
            return all(self.region(r).status.agent_connected for r in self.regions)

        wait_until(connected, timeout_s, "every agent to connect")

    def wait_ready(
        self,
        name: str,
        environment: str = "production",
        timeout_s: float = 120,
        replicas: int | None = None,
    ) -> resources_pb2.Deployment:
        def ready() -> bool:
            status = self.deployment(name, environment).status
            if status.phase != "Ready":
                return False
            return replicas is None or all(
                r.healthy_endpoints >= replicas for r in status.regions if not r.forwarding
            )

        try:
            wait_until(ready, timeout_s, f"deployment {name} to be Ready")
        except TimeoutError:
            raise TimeoutError(
                f"{name} not Ready: {self.deployment(name, environment).status}\n{self.logs()}"
            ) from None
        return self.deployment(name, environment)

    # -- processes ------------------------------------------------------------------------

    def start_controlplane(self) -> None:
        self.metrics_address = f"127.0.0.1:{free_port()}"
        if not self.mesh_address:
            host = self.address.rsplit(":", 1)[0]
            self.mesh_address = f"{host}:{free_port(host)}"
        self.controlplane = ManagedProcess(
            "controlplane",
            [
                *MESHLINE,
                "controlplane",
                "--listen",
                self.address,
                "--mesh-listen",
                self.mesh_address,
                "--state-dir",
                str(self.state_dir / "controlplane"),
                "--metrics-listen",
                self.metrics_address,
                *self.controlplane_flags,
            ],
            self.state_dir,
        )
        # its admin token and CA are on disk from then on
        wait_serving(self.address, self.state_dir / "controlplane")
        register_control_plane(self.address, self.state_dir / "controlplane")
        wait_until(
            lambda: (
                self.regions_api.ListRegions(api_pb2.ListRegionsRequest(), timeout=1) is not None
            ),
            60,
            "the control plane API",
        )

    def restart_controlplane(self) -> None:
        self.controlplane.stop()
        self.start_controlplane()

    def start_agent(
        self,
        region: str,
        *,
        country: str = "",
        continent: str = "",
        cpu_flavors: Sequence[str] = (),
        gpu_flavors: Sequence[str] = (),
        max_replicas: int = 0,
        standby_workers: int | None = None,
        netns: Netns | None = None,
        join_token: str | None = None,
        name: str = "",
        flags: Sequence[str] = (),
    ) -> ManagedProcess:
        """Start `region`'s agent with a join token made for it with these facts (what the
        region registers as), given in its environment as a user would (`standby_workers`:
        the agent's own setting, its default when None). `join_token`: this one instead ("":
        none at all). With `netns` the agent runs inside that namespace, its gateway on the
        namespace's address: a region on another host. `name`: of its process and log, when
        not `agent-<region>`. `flags`: more `meshline agent` flags (e.g. edge TLS)."""
        if join_token is None:
            join_token = self.create_join_token(
                region,
                country=country,
                continent=continent,
                cpu_flavors=cpu_flavors,
                gpu_flavors=gpu_flavors,
                max_replicas=max_replicas,
            )
        more: list[str] = list(flags)
        if netns is not None:
            more += ["--host", netns.inner_address]
        if standby_workers is not None:
            more += ["--standby-workers", str(standby_workers)]
        agent = ManagedProcess(
            name or f"agent-{region}",
            [
                *(netns.command(MESHLINE) if netns else MESHLINE),
                "agent",
                "--region",
                region,
                "--controlplane",
                self.address,
                "--ca-file",
                str(self.ca_file),
                "--state-dir",
                str(self.state_dir / region),
                *more,
            ],
            self.state_dir,
            env={JOIN_TOKEN_ENV: join_token},
        )
        self.agents[name or region] = agent
        return agent

    def logs(self) -> str:
        parts = [
            f"----- {p.name} -----\n{p.log()[-4000:]}"
            for p in [self.controlplane, *self.agents.values()]
        ]
        return "\n".join(parts)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        for agent in self.agents.values():
            agent.stop(timeout_s=20)
        self.controlplane.stop()


@contextmanager
def running_mesh(
    state_dir: Path,
    regions: tuple[str, ...] = ("eu", "us"),
    region_facts: dict[str, dict[str, Any]] | None = None,
    controlplane_host: str = "127.0.0.1",
    controlplane_flags: Sequence[str] = (),
) -> Iterator[Mesh]:
    """Start the control plane and one agent per region; stop all of it at the end.

    `region_facts` gives regions their place and capacity, as keyword arguments of
    `Mesh.start_agent`, e.g. {"eu-west": {"country": "FR", "continent": "EU"}}.
    `controlplane_host`: where its API listens (a namespace's `host_address` for agents inside).
    `controlplane_flags`: more flags for `meshline controlplane`.
    """
    facts = region_facts or {}
    unknown = set(facts) - set(regions)
    if unknown:
        raise ValueError(f"region_facts names regions not started: {sorted(unknown)}")
    address = f"{controlplane_host}:{free_port(controlplane_host)}"
    with ExitStack() as stack:
        mesh = Mesh(
            state_dir,
            address,
            regions,
            controlplane=None,  # type: ignore[arg-type]
            controlplane_flags=tuple(controlplane_flags),
        )
        stack.callback(lambda: mesh.close() if mesh.controlplane else None)
        mesh.start_controlplane()
        for region in regions:
            mesh.start_agent(region, **facts.get(region, {}))
        try:
            mesh.wait_agents()
            yield mesh
        except BaseException:
            sys.stderr.write(mesh.logs())
            raise
