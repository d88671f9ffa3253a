"""Placement changes are make-before-break: a deployment moving from region us to region eu
loses no request, whatever moved it (its own location policy, its environment's mandatory
policy, a region's flavors, a release from another environment).

Real control plane, Envoy gateways and Torch workers (module mesh: regions eu and us). During
each move clients keep calling at both gateways, over gRPC and REST.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from meshline.v1 import api_pb2
from tests.e2e.conftest import deployment_yaml
from tests.harness.load import ClientLoop
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until

BATCH = np.random.default_rng(5).standard_normal((1, 784)).astype(np.float32)


def _delete(mesh: Mesh, name: str, environment: str = "production") -> None:
    mesh.deployments.DeleteDeployment(
        api_pb2.DeleteDeploymentRequest(name=name, environment=environment), timeout=10
    )


def _with_policies(text: str, policies: str) -> str:
    """Replace the location policy deployment_yaml writes with `policies` (a YAML list)."""
    head, _, _ = text.rpartition("  policies:\n")
    return head + "  policies:\n" + policies


@contextmanager
def _clients(mesh: Mesh, name: str, environment: str) -> Iterator[list[ClientLoop]]:
    """gRPC and REST client loops entering at both gateways."""
    with ExitStack() as stack:
        loops = [
            stack.enter_context(
                ClientLoop(mesh.gateway(region), name, BATCH, environment, 1, rest=rest)
            )
            for region in mesh.regions
            for rest in (False, True)
        ]
        yield loops


def _moves_without_failures(
    mesh: Mesh, name: str, change: Callable[[], None], environment: str = "production"
) -> None:
    """Under client loops, `change` moves `name` from us to eu: not one request fails, and
    afterwards eu serves everything and us runs no worker of it."""
    status = mesh.wait_ready(name, environment).status
    assert list(status.placement) == ["us"], status
    seen: list[str] = []
    with _clients(mesh, name, environment) as loops:
        wait_until(lambda: all(loop.count() > 5 for loop in loops), 30, "traffic in us")
        change()

        def moved() -> bool:
            status = mesh.deployment(name, environment).status
            if status.phase != "Ready":
                seen.append(status.message)
            regions = {r.region: r for r in status.regions}
            return (
                status.phase == "Ready"
                and list(status.placement) == ["eu"]
                and regions["us"].forwarding
                and mesh.worker_pids("us", name) == []
            )

        try:
            wait_until(moved, 90, f"{name} to move to eu")
        except TimeoutError:
            raise TimeoutError(
                f"{mesh.deployment(name, environment).status}\n{mesh.logs()}"
            ) from None
        counts = [loop.count() for loop in loops]
        wait_until(
            lambda: all(loop.count() > n + 5 for loop, n in zip(loops, counts, strict=True)),
            30,
            "traffic after the move",
        )
    for loop in loops:
        assert loop.failures == [], (loop.gateway, loop.rest, loop.failures[:5], seen)
        # Served in eu once the move was over.
        assert loop.served[-1][1] == "eu", loop.served[-5:]
    # While it moved, status said so, and never that nothing serves it.
    assert any(m.startswith("moving from us to eu: ") for m in seen), seen
    assert not [m for m in seen if "does not reach a serving region" in m], seen


def test_a_changed_location_policy_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-location"
    mesh.apply(deployment_yaml(name, models, "v1", ["us"]))
    try:
        _moves_without_failures(
            mesh, name, lambda: mesh.apply(deployment_yaml(name, models, "v1", ["eu"]))
        )
    finally:
        _delete(mesh, name)


def _environment(name: str, region: str) -> str:
    return f"""\
kind: Environment
metadata: {{name: {name}}}
spec:
  policies:
    - {{mode: mandatory, location: {{regions: [{region}]}}}}
"""


def test_a_changed_mandatory_environment_policy_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name, environment = "mv-environment", "regulated"
    text = deployment_yaml(name, models, "v1", ["eu", "us"], environment=environment)
    # deployment_yaml's Environment document has no policy: the mandatory one replaces it.
    mesh.apply(_environment(environment, "us") + "---\n" + text.split("---\n", 1)[1])
    try:
        _moves_without_failures(
            mesh, name, lambda: mesh.apply(_environment(environment, "eu")), environment
        )
    finally:
        _delete(mesh, name, environment)


def _regions(eu_flavors: str, us_flavors: str) -> str:
    return f"""\
kind: Region
metadata: {{name: eu}}
spec: {{flavors: {{cpu: [{eu_flavors}]}}}}
---
kind: Region
metadata: {{name: us}}
spec: {{flavors: {{cpu: [{us_flavors}]}}}}
"""


def test_a_region_losing_a_flavor_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-flavor"
    text = _with_policies(
        deployment_yaml(name, models, "v1", ["eu", "us"]),
        "    - location: {regions: [eu, us]}\n    - flavor: {cpu: [small]}\n",
    )
    mesh.apply(_regions("big", "small, big"))
    try:
        mesh.apply(text)
        _moves_without_failures(mesh, name, lambda: mesh.apply(_regions("small, big", "big")))
    finally:
        _delete(mesh, name)
        mesh.apply(_regions("small, big", "small, big"))


def test_a_release_that_moves_a_deployment_loses_no_request(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-release"
    mesh.apply(deployment_yaml(name, models, "v1", ["eu"], environment="staging"))
    mesh.apply(deployment_yaml(name, models, "v1", ["us"]))
    try:

        def release() -> None:
            mesh.deployments.ReleaseDeployment(
                api_pb2.ReleaseDeploymentRequest(
                    name=name, source_environment="staging", target_environment="production"
                ),
                timeout=30,
            )

        _moves_without_failures(mesh, name, release)
    finally:
        _delete(mesh, name)
        _delete(mesh, name, "staging")
