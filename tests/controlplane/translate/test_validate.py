"""Every generated resource set is accepted by the real Envoy (`envoy --mode validate`).

The resources go into static_resources (EDS inlined, RDS inlined) via static_bootstrap.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap_yaml
from tests.controlplane.translate.cases import CASES
from tests.controlplane.translate.edge_files import with_edge_files
from tests.controlplane.translate.fixed_tls import edge_tls_certificate
from tests.harness.processes import VENV_BIN

ENVOY = VENV_BIN / "envoy"


def envoy_validate(config: str | bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`config` is YAML, or a serialized Bootstrap: binary, as xDS sends resources, and far
    faster for Envoy (and us) than YAML when the config is large."""
    if isinstance(config, bytes):
        path = tmp_path / "bootstrap.pb"
        path.write_bytes(config)
    else:
        path = tmp_path / "bootstrap.yaml"
        path.write_text(config)
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_envoy_accepts_resources(case: str, tmp_path: Path) -> None:
    # Edge TLS from files: Envoy reads the SDS file and the files it names, so they must exist.
    ir = with_edge_files(CASES[case], tmp_path / "edge", edge_tls_certificate("127.0.0.1"))
    config = static_bootstrap_yaml(translate_gateway(ir), admin_port=0)
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_catches_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: a route to a cluster that does not exist is refused."""
    resources = translate_gateway(CASES["one_deployment_draining"])
    del resources.clusters["fraud.production.grpc"]
    result = envoy_validate(static_bootstrap_yaml(resources), tmp_path)
    assert result.returncode != 0
    assert "fraud.production.grpc" in result.stdout + result.stderr
