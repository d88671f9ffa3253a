"""The agent's --xds-protocol picks the bootstrap's ADS protocol: GRPC (state of the world, the
default) or DELTA_GRPC (incremental). Everything else in the bootstrap stays as it is; the
resources' config sources stay `ads: {}` (Envoy's ConfigSource.ads: "the ADS API
configuration source in the bootstrap configuration is used"). Golden files pin both
bootstraps; both pass `envoy --mode validate` with real identity files.

Regenerate the golden files with MESHLINE_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from controlplane.pki.gateway import issue_gateway_certificate
from tests.harness.peer_tls import new_ca
from workers.agent.config import AgentConfig, XdsProtocol
from workers.agent.envoy_process import envoy_binary, render_bootstrap
from workers.agent.identity import Identity, IdentityPaths, save_identity

GOLDEN = Path(__file__).parent / "golden"
MESH_ADDRESS = "10.77.0.1:7071"
# A fixed state dir, so the paths in the golden files do not depend on the test's tmp dir.
STATE_DIR = Path("/var/lib/meshline/regions/eu")


def _config(state_dir: Path, protocol: XdsProtocol) -> AgentConfig:
    return AgentConfig(
        region="eu",
        controlplane="10.77.0.1:7070",
        state_dir=state_dir,
        admin_port=9901,
        xds_protocol=protocol,
    )


@pytest.mark.parametrize("protocol", list(XdsProtocol))
def test_bootstrap_golden(protocol: XdsProtocol) -> None:
    rendered = render_bootstrap(_config(STATE_DIR, protocol), "a1", 9901, MESH_ADDRESS)
    golden = GOLDEN / f"bootstrap-{protocol.value}.yaml"
    if os.environ.get("MESHLINE_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"{golden.name} differs (MESHLINE_UPDATE_GOLDEN=1)"


def test_only_the_ads_api_type_differs() -> None:
    sotw, delta = (
        yaml.safe_load(render_bootstrap(_config(STATE_DIR, p), "a1", 9901, MESH_ADDRESS))
        for p in (XdsProtocol.SOTW, XdsProtocol.DELTA)
    )
    assert sotw["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"
    assert delta["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    delta["dynamic_resources"]["ads_config"]["api_type"] = "GRPC"
    assert delta == sotw
    for source in ("cds_config", "lds_config"):
        assert sotw["dynamic_resources"][source] == {"ads": {}, "resource_api_version": "V3"}
    assert AgentConfig(region="eu", controlplane="x:1", state_dir=STATE_DIR).xds_protocol is (
        XdsProtocol.SOTW
    )


@pytest.mark.parametrize("protocol", list(XdsProtocol))
def test_envoy_validates_the_bootstrap(protocol: XdsProtocol, tmp_path: Path) -> None:
    ca = new_ca()
    issued = issue_gateway_certificate(ca, "eu", datetime.now(UTC), timedelta(hours=1))
    identity = Identity("eu", issued.chain_pem, issued.key_pem, MESH_ADDRESS, datetime.now(UTC))
    save_identity(IdentityPaths.of(tmp_path), identity, ca.bundle_pem.decode())
    bootstrap = tmp_path / "bootstrap.yaml"
    bootstrap.write_text(render_bootstrap(_config(tmp_path, protocol), "a1", 9901, MESH_ADDRESS))
    result = subprocess.run(
        [envoy_binary("envoy"), "--mode", "validate", "-c", str(bootstrap), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
