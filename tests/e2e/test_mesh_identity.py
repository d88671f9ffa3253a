"""Who may be a region, end to end: a real control plane (API port TLS, mesh port mTLS), a real
region `eu` (agent, Envoy, Torch worker) that joined with a token carrying its country, and
everyone else trying their luck.

- Agents without a usable join token are refused (the control plane logs who tried, never the
  secret), end with a clear error, never start an Envoy, and their region is never routed to:
  a deployment placed by country stays on `eu` although every rogue token claims that country.
- A second agent for region `eu`, with a token of its own, is refused while `eu`'s agent is
  connected; a certificate of a region's earlier join renews nothing and opens nothing.
- The mesh port answers only certificates of the mesh CA, each only as its own region (the
  agent stream, and Envoy's ADS: an Envoy holding another region's certificate gets nothing).
- The join token the agent was started with is in no child's environment (Envoy, workers).
- Agent certificates live half a minute here (`--agent-cert-ttl`): they renew (the region's
  certificate serial changes) under a client loop with no failed request and no Envoy restart,
  and after a control-plane restart, after the first certificate expired, Envoy and the agent
  come back with the renewed ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshline import join_token
from meshline.certs import new_key_and_csr, read_certificate_facts
from meshline.join_token import JOIN_TOKEN_ENV
from meshline.v1 import agent_pb2, agent_pb2_grpc, api_pb2, api_pb2_grpc
from tests.e2e.conftest import deployment_yaml
from tests.harness.credentials import api_credentials
from tests.harness.load import ClientLoop
from tests.harness.mesh import MESHLINE, Mesh, running_mesh
from tests.harness.mesh_identity import (
    RegionIdentity,
    control_plane_ca,
    mesh_credentials,
    region_identity,
    stranger_ca,
)
from tests.harness.processes import ManagedProcess, free_port, wait_until
from workers.agent.config import AgentConfig
from workers.agent.envoy_process import envoy_binary, render_bootstrap
from workers.agent.identity import Identity, IdentityPaths, save_identity
from workers.demo import build_mlp

REGION = "eu"
COUNTRY, CONTINENT = "DE", "EU"
FACTS: dict[str, object] = {"country": COUNTRY, "continent": CONTINENT}
DEPLOYMENT = "ident"
# A new agent certificate about every 20 s: long enough that a renewal late by seconds on a
# loaded machine still comes well before the certificate ends.
AGENT_CERT_TTL = "30s"
CERT_TTL_S = 30
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
BATCH = np.random.default_rng(3).standard_normal((1, 784)).astype(np.float32)
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("mesh-identity")
    model = build_mlp(root / "mlp.pt", seed=0)
    with running_mesh(
        root,
        regions=(REGION,),
        region_facts={REGION: FACTS},
        controlplane_flags=("--agent-cert-ttl", AGENT_CERT_TTL),
    ) as m:
        documents = deployment_yaml(DEPLOYMENT, {"v1": model}, "v1", [REGION])
        # Placed by country: any region registered as DE would get it.
        m.apply(documents.replace("location: {regions: [eu]}", "location: {countries: [DE]}"))
        m.wait_ready(DEPLOYMENT)
        yield m


def _placed(mesh: Mesh) -> list[str]:
    return sorted(r.region for r in mesh.deployment(DEPLOYMENT).status.regions)


def _regions(mesh: Mesh) -> list[str]:
    regions = mesh.regions_api.ListRegions(api_pb2.ListRegionsRequest(), timeout=10).regions
    return sorted(r.metadata.name for r in regions)


def _expired_token(mesh: Mesh, region: str) -> str:
    token = mesh.create_join_token(region, country=COUNTRY, continent=CONTINENT, expires_in_s=1)
    token_id = join_token.parse(token).token_id

    def expired() -> bool:
        listed = mesh.regions_api.ListJoinTokens(
            api_pb2.ListJoinTokensRequest(region=region), timeout=10
        ).tokens
        return any(t.metadata.name == token_id and t.status.phase == "Expired" for t in listed)

    wait_until(expired, 30, "the token to expire")
    return token


def _revoked_token(mesh: Mesh, region: str) -> str:
    token = mesh.create_join_token(region, country=COUNTRY, continent=CONTINENT)
    request = api_pb2.RevokeJoinTokenRequest(name=join_token.parse(token).token_id)
    mesh.regions_api.RevokeJoinToken(request, timeout=10)
    return token


ROGUES = {
    # case: (region the agent claims, how its token is made, what the control plane says)
    "another region's token": (
        "de-1",
        lambda m: m.create_join_token("us-x", country=COUNTRY),
        "is for",
    ),
    "an expired token": ("de-2", lambda m: _expired_token(m, "de-2"), "expired at"),
    "a revoked token": ("de-3", lambda m: _revoked_token(m, "de-3"), "was revoked"),
}


@pytest.mark.parametrize("case", ROGUES, ids=list(ROGUES))
def test_an_agent_without_a_usable_token_is_refused_and_never_routed_to(
    mesh: Mesh, case: str
) -> None:
    region, make_token, says = ROGUES[case]
    token = make_token(mesh)
    agent = mesh.start_agent(region, join_token=token, name=f"rogue-{region}")
    wait_until(lambda: not agent.alive(), 60, f"the agent of {region} to give up")
    assert agent.proc.returncode == 1
    log = agent.log()
    assert f"agent for region {region}: joining as region {region} refused" in log
    assert says in log
    # Refused before anything started: no Envoy asked for configuration.
    assert "envoy for region" not in log and not (mesh.state_dir / region / "envoy").exists()
    secret = join_token.parse(token).secret
    refusal = next(
        line
        for line in mesh.controlplane.log().splitlines()
        if f"join refused (region '{region}', from ipv4:" in line
    )
    assert says in refusal
    assert secret not in mesh.controlplane.log() and secret not in log
    assert region not in _regions(mesh)
    assert _placed(mesh) == [REGION]


def test_an_agent_with_no_token_ends_with_where_to_get_one(mesh: Mesh) -> None:
    agent = mesh.start_agent("de-4", join_token="", name="rogue-de-4")
    wait_until(lambda: not agent.alive(), 60, "the agent to give up")
    assert agent.proc.returncode == 1
    assert "no join token: create one (`meshline regions token create de-4`)" in agent.log()
    assert not (mesh.state_dir / "de-4" / "envoy").exists()
    assert "de-4" not in _regions(mesh) and _placed(mesh) == [REGION]


def test_a_join_without_a_token_is_refused_and_logged(mesh: Mesh) -> None:
    """What an agent without a token could still send: the control plane says no, and who."""
    credentials = api_credentials(mesh.state_dir / "controlplane")
    with (
        grpc.secure_channel(mesh.address, credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        agent_pb2_grpc.JoinServiceStub(channel).Join(
            agent_pb2.JoinRequest(region="de-5", csr_pem=""), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no join token given" in (refused.value.details() or "")
    wait_until(
        lambda: "join refused (region 'de-5', from ipv4:127.0.0.1:" in mesh.controlplane.log(),
        10,
        "the refusal in the control plane's log",
    )


def test_the_join_is_in_the_audit_log(mesh: Mesh) -> None:
    """Who let region eu in: its token (by public id), the certificate, the caller."""
    stub = api_pb2_grpc.AuditServiceStub(mesh._channel())
    events = stub.ListAuditEvents(api_pb2.ListAuditEventsRequest(kind="Region"), timeout=10).events
    joins = [e for e in events if e.verb == "join" and e.name == REGION]
    assert len(joins) == 1, events
    assert joins[0].principal.startswith("jointoken:") and joins[0].outcome == "allowed"
    assert "issued to ipv4:127.0.0.1:" in joins[0].detail
    assert "registered from the token's facts" in joins[0].detail


def test_a_second_agent_for_the_connected_region_is_refused(mesh: Mesh, tmp_path: Path) -> None:
    """Another agent with a valid token of its own for eu, while eu's agent is connected: it
    gets no certificate, starts no Envoy, and eu keeps its certificate and its agent."""
    token = mesh.create_join_token(REGION, country=COUNTRY, continent=CONTINENT)
    second = mesh.start_agent(
        REGION, join_token=token, name="second-eu", flags=("--state-dir", str(tmp_path))
    )
    wait_until(lambda: not second.alive(), 60, "the second agent to give up")
    assert second.proc.returncode == 1
    log = second.log()
    assert f"agent for region {REGION}: joining as region {REGION} refused" in log
    assert "region 'eu' already has a connected agent (" in log
    assert not (tmp_path / "envoy").exists() and "envoy for region" not in log
    refusal = next(
        line
        for line in mesh.controlplane.log().splitlines()
        if "join refused (region 'eu', from ipv4:" in line
    )
    assert "already has a connected agent" in refusal
    assert join_token.parse(token).secret not in mesh.controlplane.log() + log
    # Nothing changed hands: eu joined once (its agent), the token was never used.
    assert mesh.controlplane.log().count(f"region {REGION} joined with join token") == 1
    tokens = mesh.regions_api.ListJoinTokens(
        api_pb2.ListJoinTokensRequest(region=REGION), timeout=10
    ).tokens
    used = {t.metadata.name: t.status.uses for t in tokens}
    assert used[join_token.parse(token).token_id] == 0
    assert mesh.region(REGION).status.agent_connected


def _raw_join(mesh: Mesh, region: str, token: str) -> RegionIdentity:
    """What an agent's join does, by hand: a fresh key, the token, the certificate back."""
    made = new_key_and_csr()
    request = agent_pb2.JoinRequest(region=region, join_token=token, csr_pem=made.csr_pem)
    credentials = api_credentials(mesh.state_dir / "controlplane")
    with grpc.secure_channel(mesh.address, credentials) as channel:
        reply = agent_pb2_grpc.JoinServiceStub(channel).Join(request, timeout=10)
    return RegionIdentity(region, reply.certificate_pem, made.key_pem.decode())


def _renew(mesh: Mesh, held: RegionIdentity) -> str:
    ca = control_plane_ca(mesh.state_dir / "controlplane")
    with grpc.secure_channel(mesh.mesh_address, mesh_credentials(ca.bundle_pem, held)) as channel:
        reply = agent_pb2_grpc.JoinServiceStub(channel).Renew(
            agent_pb2.RenewRequest(csr_pem=new_key_and_csr().csr_pem), timeout=10
        )
    return read_certificate_facts(reply.certificate_pem).serial


def _fetch_configuration(mesh: Mesh, held: RegionIdentity) -> grpc.RpcError:
    """An Envoy's first ADS request as node `held.region`, holding `held`: its refusal."""
    ca = control_plane_ca(mesh.state_dir / "controlplane")
    request = discovery_pb2.DiscoveryRequest(
        node=base_pb2.Node(id=held.region), type_url=CLUSTER_TYPE
    )
    with grpc.secure_channel(mesh.mesh_address, mesh_credentials(ca.bundle_pem, held)) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.StreamAggregatedResources(iter([request]), timeout=10))
    return refused.value


def _download(mesh: Mesh, held: RegionIdentity) -> grpc.RpcError:
    ca = control_plane_ca(mesh.state_dir / "controlplane")
    request = api_pb2.DownloadArtifactRequest(sha256="0" * 64)
    credentials = mesh_credentials(ca.bundle_pem, held)
    with (
        grpc.secure_channel(mesh.mesh_address, credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        next(api_pb2_grpc.ModelServiceStub(channel).DownloadArtifact(request, timeout=10))
    return refused.value


def test_a_certificate_of_an_earlier_join_opens_nothing(mesh: Mesh) -> None:
    """Region ap joined twice (no agent connected in between, as after a machine was
    replaced): the first join's certificate, still valid, is no longer ap's."""
    region = "ap"  # placed nowhere: the deployment wants DE
    earlier = _raw_join(mesh, region, mesh.create_join_token(region, country="JP"))
    current = _raw_join(mesh, region, mesh.create_join_token(region, country="JP"))
    not_after = read_certificate_facts(earlier.chain_pem).not_after
    why = "is no longer region 'ap''s"
    with pytest.raises(grpc.RpcError) as renewal:
        _renew(mesh, earlier)
    ca = control_plane_ca(mesh.state_dir / "controlplane")
    refusals = [
        renewal.value,
        _connect(mesh, mesh_credentials(ca.bundle_pem, earlier), region),
        _fetch_configuration(mesh, earlier),
        _download(mesh, earlier),
    ]
    assert datetime.now(UTC) < not_after  # refused as replaced, not as expired
    for refused in refusals:
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, refused.details()
        assert why in (refused.details() or ""), refused.details()
    # The current one renews (and would open all of it).
    assert _renew(mesh, current) == mesh.region(region).status.certificate_serial
    assert _placed(mesh) == [REGION]


def test_the_join_token_is_in_no_childs_environment(mesh: Mesh) -> None:
    """The agent got its token in its environment; Envoy and the workers (which run model
    code) never see it."""
    agent = mesh.agents[REGION]
    assert JOIN_TOKEN_ENV in _environ(agent.pid)  # as started: the test gave it there
    children = [pid for pid in _group(mesh) if pid != agent.pid]
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children]
    assert any(b"envoy" in c for c in commands) and any(b"workers" in c for c in commands)
    for pid in children:
        assert JOIN_TOKEN_ENV not in _environ(pid), Path(f"/proc/{pid}/cmdline").read_bytes()


def _group(mesh: Mesh) -> list[int]:
    """The processes of the agent's process group: the agent, its Envoy and workers."""
    out = subprocess.run(
        ["pgrep", "-g", str(mesh.agents[REGION].pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [int(pid) for pid in out.stdout.split()]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0"))
    return {name: value for name, _, value in pairs if name}


def _connect(mesh: Mesh, credentials: grpc.ChannelCredentials | None, region: str) -> grpc.RpcError:
    """An agent stream opened as `region` on the mesh port (None: plain text); its error."""
    hello = agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(region=region, agent_id="rogue"))
    if credentials is None:
        channel = grpc.insecure_channel(mesh.mesh_address)
    else:
        channel = grpc.secure_channel(mesh.mesh_address, credentials)
    with channel:
        stream = agent_pb2_grpc.AgentServiceStub(channel).Connect(iter([hello]), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            next(stream)
    return refused.value


def test_the_mesh_port_takes_only_mesh_certificates_each_as_its_own_region(mesh: Mesh) -> None:
    ca = control_plane_ca(mesh.state_dir / "controlplane")
    trusted = ca.bundle_pem
    # Plain text, TLS without a certificate, a certificate of another CA: the handshake fails.
    for credentials in (
        None,
        mesh_credentials(trusted, None),
        mesh_credentials(trusted, region_identity(stranger_ca(), REGION)),
    ):
        assert _connect(mesh, credentials, REGION).code() == grpc.StatusCode.UNAVAILABLE
    # Region us's certificate (stolen, say) cannot open eu's stream.
    error = _connect(mesh, mesh_credentials(trusted, region_identity(ca, "us")), REGION)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "region 'eu'" in (error.details() or "") and "region 'us'" in (error.details() or "")
    wait_until(
        lambda: (
            "opening the agent stream of region 'eu' refused (from ipv4:127.0.0.1:"
            in mesh.controlplane.log()
        ),
        10,
        "the refusal in the control plane's log",
    )
    assert mesh.region(REGION).status.agent_connected  # the real agent is unharmed


def test_the_api_port_speaks_tls_and_renew_needs_a_certificate(mesh: Mesh) -> None:
    with grpc.insecure_channel(mesh.address) as plain, pytest.raises(grpc.RpcError) as refused:
        health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    credentials = api_credentials(mesh.state_dir / "controlplane")
    with grpc.secure_channel(mesh.address, credentials) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as refused:
            agent_pb2_grpc.JoinServiceStub(channel).Renew(agent_pb2.RenewRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no client certificate" in (refused.value.details() or "")


def _config_dump(admin: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{admin}/config_dump", timeout=5) as reply:
        dumped: dict[str, object] = json.loads(reply.read())
    return dumped


def _dynamic(dump: dict[str, object]) -> list[object]:
    """Every listener and cluster Envoy took from the control plane."""
    found: list[object] = []
    for config in dump["configs"]:  # type: ignore[attr-defined]
        for key in ("dynamic_active_clusters", "dynamic_warming_clusters"):
            found += config.get(key, [])
        for listener in config.get("dynamic_listeners", []):
            found.append(listener)
    return found


def test_an_envoy_with_another_regions_certificate_gets_no_configuration(
    mesh: Mesh, tmp_path: Path
) -> None:
    """An Envoy bootstrapped as node `eu` (the real template), holding region us's certificate:
    its ADS stream is refused, so it never sees eu's listeners or clusters."""
    ca = control_plane_ca(mesh.state_dir / "controlplane")
    stolen: RegionIdentity = region_identity(ca, "us")
    identity = Identity(
        "us", stolen.chain_pem, stolen.key_pem, mesh.mesh_address, datetime.now(UTC)
    )
    save_identity(IdentityPaths.of(tmp_path), identity, ca.bundle_pem.decode())
    admin = free_port()
    config = AgentConfig(region=REGION, controlplane=mesh.address, state_dir=tmp_path)
    bootstrap = tmp_path / "bootstrap.yaml"
    bootstrap.write_text(render_bootstrap(config, "rogue", admin, mesh.mesh_address))
    envoy = ManagedProcess(
        "rogue-envoy",
        [envoy_binary("envoy"), "-c", str(bootstrap), "--disable-hot-restart", "-l", "warn"],
        tmp_path,
    )
    try:
        wait_until(
            lambda: "of node 'eu' by region us refused" in mesh.controlplane.log(),
            60,
            "the control plane to refuse the rogue Envoy's ADS stream",
        )
        assert envoy.alive()
        assert _dynamic(_config_dump(f"127.0.0.1:{admin}")) == []
    finally:
        envoy.stop()
    # eu's own Envoy keeps its configuration.
    assert _dynamic(_config_dump(mesh.region(REGION).status.admin_address))


def _envoy_pids(mesh: Mesh) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-g", str(mesh.agents[REGION].pid), "-x", "envoy"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [int(pid) for pid in out.stdout.split()]


def _serial(mesh: Mesh) -> str:
    """The region's certificate of record, as `meshline get regions` reads it."""
    return mesh.region(REGION).status.certificate_serial


def _renewed(mesh: Mesh, seen: list[str]) -> None:
    """Until the region holds a certificate other than those `seen` (appended)."""
    wait_until(lambda: _serial(mesh) not in seen, CERT_TTL_S * 2, f"a renewal after {seen[-1]}")
    seen.append(_serial(mesh))


def test_certificates_renew_under_load_and_survive_a_control_plane_restart(mesh: Mesh) -> None:
    gateway = mesh.gateway(REGION)
    pids = _envoy_pids(mesh)
    assert len(pids) == 1
    first_expiry = mesh.region(REGION).status.certificate_expires_at
    seen = [_serial(mesh)]
    with ClientLoop(gateway, DEPLOYMENT, BATCH) as loop:
        _renewed(mesh, seen)
        _renewed(mesh, seen)  # the first certificate has expired by now
        wait_until(lambda: loop.count() > 20, 30, "requests through the gateway")
        # A new control plane: Envoy's ADS and the agent's stream reconnect, with the
        # certificate of record it keeps in its store (an earlier one would be refused).
        mesh.restart_controlplane()
        mesh.wait_agents()
        _renewed(mesh, seen)
        done = loop.count()
        wait_until(lambda: loop.count() > done + 20, 30, "requests after the restart")
    assert loop.failures == [], loop.failures[:5]
    assert _envoy_pids(mesh) == pids  # never restarted: the SDS file was reloaded in place
    assert mesh.region(REGION).status.agent_connected
    expiry = mesh.region(REGION).status.certificate_expires_at
    assert expiry > first_expiry
    # The agent holds what the control plane recorded (renewed by the agent, not replaced).
    renewals = mesh.agents[REGION].log().count("certificate of region eu renewed")
    assert renewals >= 3 and "joining again" not in mesh.agents[REGION].log()
    # Envoy took configuration from the new control plane, over its renewed certificate.
    wait_until(
        lambda: mesh.deployment(DEPLOYMENT).status.phase == "Ready", 60, "Ready after restart"
    )
    listed = subprocess.run(
        [*MESHLINE, "get", "regions", "--address", mesh.address],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "CERT EXPIRES" in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if line.split()[:1] == [REGION])
    shown = [cell for cell in row.split() if RFC3339.match(cell)]
    # The one it showed, or a later one (a renewal every few seconds).
    assert len(shown) == 1 and shown[0] >= expiry, row
