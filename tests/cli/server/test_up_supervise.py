"""`meshline up` survives its own processes (issue 16): the real `meshline up` (regions eu and us,
the demo deployment in both), a REST client loop entering eu and a gRPC one entering us.

- Its control plane SIGKILLed: `up` starts it again on the same addresses (a new pid), 0 requests
  fail while it is down or after it is back, both agents reconnect by themselves, and a
  deployment applied afterwards serves across regions.
- Region eu's agent SIGKILLed: its Envoy and workers die with it, `up` starts it again, it keeps
  its certificate (no join token needed) and eu serves again; requests entering us never fail
  (requests entering eu do while eu's Envoy is down: the docs say so).

`up` is stopped at the end, also on failure, and nothing it started (at any time) may still run.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from cli.client.api import api_client
from cli.client.credentials import API_KEY_FILE
from cli.client.token_lookup import ApiCredential
from cli.server.local_admin import admin_credential, ca_path, serving
from controlplane.api.documents import parse_resource_document
from meshline.phases import DeploymentPhase
from meshline.process.children import RUN_MARKER
from meshline.v1 import api_pb2
from tests.harness.load import ClientLoop, rest_infer_served
from tests.harness.process_tree import (
    ProcessId,
    child_running,
    command_line,
    descendants,
    running,
    still_running,
    swept,
)
from tests.harness.processes import VENV_BIN, ManagedProcess, free_port, managed, wait_until

pytestmark = pytest.mark.timeout(1200)

UP_START_TIMEOUT_S = 300.0  # `up` itself waits up to 180 s for the demo to be Ready
UP_STOP_TIMEOUT_S = 120.0  # agents drain and stop their workers and Envoy first
CONTROLPLANE = "-m cli controlplane "
AGENT_EU = "-m cli agent --region eu "
BATCH = np.full((1, 784), 0.5, dtype=np.float32)
# Applied after the control plane's restart: served in eu only, so that a call entering us
# needs the new config on both gateways.
AFTER_RESTART = """\
kind: Deployment
metadata: {name: after-restart}
spec:
  environment: production
  model: demo-mlp
  version: v1
  replicas: 1
  policies:
    - location: {regions: [eu]}
"""


@dataclass(frozen=True)
class Up:
    """The test's `meshline up`, and what it printed."""

    process: ManagedProcess
    state_dir: Path
    address: str
    admin: ApiCredential
    auth: tuple[tuple[str, str], ...]  # the demo API key, as a request header
    gateways: dict[str, str]  # region → gateway host:port

    def child(self, marker: str) -> ProcessId | None:
        return child_running(self.process.pid, marker)

    def said(self, text: str) -> bool:
        return text in self.process.log()

    def connected_regions(self) -> set[str]:
        with api_client(self.address, self.admin) as api:
            regions = api.regions.ListRegions(api_pb2.ListRegionsRequest(), timeout=5).regions
        return {r.metadata.name for r in regions if r.status.agent_connected}

    def ready(self, deployment: str) -> bool:
        with api_client(self.address, self.admin) as api:
            request = api_pb2.GetDeploymentRequest(name=deployment)
            status = api.deployments.GetDeployment(request, timeout=5).deployment.status
        return bool(status.phase == DeploymentPhase.READY)

    def loop(self, region: str, rest: bool) -> ClientLoop:
        return ClientLoop(self.gateways[region], "demo", BATCH, rest=rest, extra_metadata=self.auth)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`meshline up` for this module; afterwards every process it ran is gone, also on failure."""
    work = tmp_path_factory.mktemp("up")
    state_dir = work / "state"
    args = [str(VENV_BIN / "meshline"), "up", "--state-dir", str(state_dir)]
    args += ["--api-port", str(free_port())]
    seen: set[ProcessId] = set()
    with swept(work) as left:
        with managed("meshline-up", args, work / "logs", stop_timeout_s=UP_STOP_TIMEOUT_S) as proc:
            wait_until(
                lambda: "meshline is up" in proc.log() or not proc.alive(),
                UP_START_TIMEOUT_S,
                "`meshline up` to print 'meshline is up'",
            )
            assert proc.alive(), f"meshline up exited:\n{proc.log()[-4000:]}"
            address = (state_dir / "controlplane.addr").read_text().strip()
            admin = admin_credential(state_dir / "controlplane")
            assert admin is not None
            key = (state_dir / API_KEY_FILE).read_text().strip()
            with api_client(address, admin) as api:
                regions = api.regions.ListRegions(api_pb2.ListRegionsRequest(), timeout=10)
            gateways = {r.metadata.name: r.status.gateway_address for r in regions.regions}
            assert sorted(gateways) == ["eu", "us"]
            network = Up(
                proc, state_dir, address, admin, (("authorization", f"Bearer {key}"),), gateways
            )
            try:
                yield network
            finally:
                seen |= descendants(proc.pid)
        log = proc.log()
    assert not left, f"processes of the test's `up` still ran after it stopped: {left}"
    alive = still_running(seen)
    assert not alive, f"processes `up` started still ran after it stopped: {alive}"
    assert log.rstrip().endswith("stopped controlplane"), log[-2000:]
    for name in ("agent-us", "agent-eu"):
        assert f"stopped {name}" in log


def test_a_killed_control_plane_is_started_again_and_nothing_fails(up: Up) -> None:
    old = up.child(CONTROLPLANE)
    assert old is not None, "no control plane under `up`"
    ca = ca_path(up.state_dir / "controlplane")
    with up.loop("eu", rest=True) as eu_loop, up.loop("us", rest=False) as us_loop:
        wait_until(lambda: eu_loop.count() > 20 and us_loop.count() > 20, 60, "answers")
        down_at = time.monotonic()
        os.kill(old.pid, signal.SIGKILL)

        def started_again() -> bool:
            new = up.child(CONTROLPLANE)
            return new is not None and new != old

        wait_until(started_again, 60, "`up` to start the control plane again")
        new = up.child(CONTROLPLANE)
        assert new is not None
        wait_until(lambda: serving(up.address, ca), 120, "the control plane API on its address")
        back_at = time.monotonic()
        assert up.said("controlplane was killed by SIGKILL after ")
        assert up.said(f"started controlplane again (pid {new.pid})")
        for loop in (eu_loop, us_loop):
            while_down = [a for a in loop.answers if down_at < a.sent and a.done < back_at]
            assert while_down, "no request was answered while the control plane was down"

        wait_until(lambda: up.connected_regions() == {"eu", "us"}, 60, "both agents to reconnect")
        wait_until(lambda: up.ready("demo"), 60, "demo to be Ready again")
        document = yaml.safe_load(AFTER_RESTART)
        with api_client(up.address, up.admin) as api:
            resource = parse_resource_document(document, "<test>", 0)
            api.apply.Apply(api_pb2.ApplyRequest(resources=[resource]), timeout=30)
        wait_until(lambda: up.ready("after-restart"), 180, "the new deployment to be Ready")
        _, region = rest_infer_served(
            up.gateways["us"], "after-restart", BATCH, headers=dict(up.auth)
        )
        assert region == "eu", "the new deployment runs in eu only"
        counts = eu_loop.count(), us_loop.count()
        wait_until(
            lambda: eu_loop.count() > counts[0] + 20 and us_loop.count() > counts[1] + 20,
            60,
            "answers after the restart",
        )
    assert eu_loop.failures == []
    assert us_loop.failures == []


def test_a_killed_agent_is_started_again_with_its_identity_and_its_region_serves(
    up: Up,
) -> None:
    old = up.child(AGENT_EU)
    assert old is not None, "no eu agent under `up`"
    its_processes = descendants(old.pid)
    assert any("envoy" in command_line(p.pid) for p in its_processes), "eu's Envoy"
    # Requests entering eu fail while its Envoy is down; the demo is placed in us too, so
    # requests entering us must not.
    with up.loop("us", rest=False) as us_loop:
        wait_until(lambda: us_loop.count() > 20, 60, "answers")
        os.kill(old.pid, signal.SIGKILL)

        def started_again() -> bool:
            new = up.child(AGENT_EU)
            return new is not None and new != old

        wait_until(started_again, 60, "`up` to start eu's agent again")
        new = up.child(AGENT_EU)
        assert new is not None
        wait_until(
            lambda: not any(running(p) for p in its_processes),
            60,
            "the killed agent's Envoy and workers to die with it",
        )
        assert up.said("agent-eu was killed by SIGKILL after ")
        assert up.said(f"started agent-eu again (pid {new.pid})")
        wait_until(lambda: "eu" in up.connected_regions(), 120, "eu's agent to reconnect")
        wait_until(lambda: up.ready("demo"), 180, "demo to be Ready in eu again")

        def eu_serves() -> bool:
            _, region = rest_infer_served(up.gateways["eu"], "demo", BATCH, headers=dict(up.auth))
            return region == "eu"

        wait_until(eu_serves, 60, "eu's gateway to serve again")
        with up.loop("eu", rest=True) as eu_loop:
            wait_until(lambda: eu_loop.count() > 20, 60, "answers through eu")
        assert eu_loop.failures == []
        count = us_loop.count()
        wait_until(lambda: us_loop.count() > count + 20, 60, "answers through us")
    assert us_loop.failures == []
    runs = (up.state_dir / "logs" / "agent-eu.log").read_text().split(RUN_MARKER)
    assert "starting with the stored identity" in runs[-1], runs[-1][-3000:]
    assert "joining the mesh" not in runs[-1]
