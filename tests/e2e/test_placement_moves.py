"""Placement changes are make-before-break: a deployment moving from region us to region eu
loses no request, whatever moved it (its own location or flavor policy, its environment's
mandatory policy, a region's flavors or capacity, a release from another environment).

Real control plane, Envoy gateways and Torch workers (module mesh: regions eu and us). During
each move clients keep calling at both gateways, over gRPC and REST.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
import numpy as np

from meshline.v1 import api_pb2, resources_pb2
from tests.e2e.conftest import OPEN_ACCESS, deployment_yaml
from tests.harness.load import ClientLoop
from tests.harness.mesh import Mesh
from tests.harness.processes import wait_until

BATCH = np.random.default_rng(5).standard_normal((1, 784)).astype(np.float32)


def _delete(mesh: Mesh, name: str, environment: str = "production") -> None:
    """Cleanup: gone already (the test failed before creating it) is fine."""
    try:
        mesh.deployments.DeleteDeployment(
            api_pb2.DeleteDeploymentRequest(name=name, environment=environment), timeout=10
        )
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise


def _apply_regions(mesh: Mesh, specs: dict[str, resources_pb2.RegionSpec]) -> None:
    resources = []
    for name, spec in specs.items():
        region = resources_pb2.Region(spec=spec)
        region.metadata.name = name
        resources.append(api_pb2.Resource(region=region))
    mesh.apply_resources(resources)


@contextmanager
def _regions_restored(mesh: Mesh) -> Iterator[dict[str, resources_pb2.RegionSpec]]:
    """The regions' specs as they are; applied again at the end, whatever the test changed."""
    original = {name: mesh.region(name).spec for name in mesh.regions}
    try:
        yield original
    finally:
        _apply_regions(mesh, original)


def _changed(
    spec: resources_pb2.RegionSpec, cpu: list[str] | None = None, max_replicas: int | None = None
) -> resources_pb2.RegionSpec:
    out = resources_pb2.RegionSpec()
    out.CopyFrom(spec)
    if cpu is not None:
        del out.flavors.cpu[:]
        out.flavors.cpu.extend(cpu)
    if max_replicas is not None:
        out.max_replicas = max_replicas
    return out


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
    # The control plane told the move's steps in the words status shows while it lasts (its
    # log keeps them: a status poll could miss a short step), and how it ended.
    log = mesh.controlplane.log()
    assert f"{environment}/{name}: moving from us to eu: " in log, mesh.logs()
    assert f"{environment}/{name}: moved from us to eu; eu serves it" in log, mesh.logs()
    # Status never said that nothing serves it.
    assert not [m for m in seen if "does not reach a serving region" in m], seen


def test_a_changed_location_policy_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-location"
    with ExitStack() as cleanup:
        cleanup.callback(_delete, mesh, name)
        mesh.apply(deployment_yaml(name, models, "v1", ["us"]))
        _moves_without_failures(
            mesh, name, lambda: mesh.apply(deployment_yaml(name, models, "v1", ["eu"]))
        )


def test_a_changed_flavor_policy_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-flavor-policy"

    def wanting(flavor: str) -> str:
        return _with_policies(
            deployment_yaml(name, models, "v1", ["eu", "us"]),
            f"    - location: {{regions: [eu, us]}}\n    - flavor: {{cpu: [{flavor}]}}\n",
        )

    with ExitStack() as cleanup:
        original = cleanup.enter_context(_regions_restored(mesh))
        cleanup.callback(_delete, mesh, name)
        _apply_regions(
            mesh,
            {"eu": _changed(original["eu"], ["big"]), "us": _changed(original["us"], ["small"])},
        )
        mesh.apply(wanting("small"))
        _moves_without_failures(mesh, name, lambda: mesh.apply(wanting("big")))


def _environment(name: str, region: str) -> str:
    return f"""\
kind: Environment
metadata: {{name: {name}}}
spec:
  policies:
    - {{mode: mandatory, location: {{regions: [{region}]}}}}
    - {OPEN_ACCESS}
"""


def test_a_changed_mandatory_environment_policy_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name, environment = "mv-environment", "regulated"
    text = deployment_yaml(name, models, "v1", ["eu", "us"], environment=environment)
    # deployment_yaml's Environment document has no policy: the mandatory one replaces it.
    with ExitStack() as cleanup:
        cleanup.callback(_delete, mesh, name, environment)
        mesh.apply(_environment(environment, "us") + "---\n" + text.split("---\n", 1)[1])
        _moves_without_failures(
            mesh, name, lambda: mesh.apply(_environment(environment, "eu")), environment
        )


def test_a_region_losing_a_flavor_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-flavor"
    text = _with_policies(
        deployment_yaml(name, models, "v1", ["eu", "us"]),
        "    - location: {regions: [eu, us]}\n    - flavor: {cpu: [small]}\n",
    )
    with ExitStack() as cleanup:
        original = cleanup.enter_context(_regions_restored(mesh))
        cleanup.callback(_delete, mesh, name)

        def flavors(eu: list[str], us: list[str]) -> None:
            _apply_regions(
                mesh, {"eu": _changed(original["eu"], eu), "us": _changed(original["us"], us)}
            )

        flavors(["big"], ["small", "big"])
        mesh.apply(text)
        _moves_without_failures(mesh, name, lambda: flavors(["small", "big"], ["big"]))


def test_a_region_capacity_change_moves_a_deployment_without_failures(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    """Capacity goes to deployments in creation order: with an older deployment in both
    regions, eu full and us with room place it in us; the other way round, in eu."""
    name, older = "mv-capacity", "mv-capacity-older"
    with ExitStack() as cleanup:
        original = cleanup.enter_context(_regions_restored(mesh))
        cleanup.callback(_delete, mesh, older)
        cleanup.callback(_delete, mesh, name)

        def capacity(eu: int, us: int) -> None:
            _apply_regions(
                mesh,
                {
                    "eu": _changed(original["eu"], max_replicas=eu),
                    "us": _changed(original["us"], max_replicas=us),
                },
            )

        capacity(eu=1, us=2)
        mesh.apply(deployment_yaml(older, models, "v1", ["eu", "us"]))
        assert list(mesh.wait_ready(older).status.placement) == ["eu", "us"]
        mesh.apply(deployment_yaml(name, models, "v1", ["eu", "us"]))
        _moves_without_failures(mesh, name, lambda: capacity(eu=2, us=1))
        assert list(mesh.deployment(older).status.placement) == ["eu", "us"]


def test_a_release_that_moves_a_deployment_loses_no_request(
    mesh: Mesh, models: dict[str, Path]
) -> None:
    name = "mv-release"
    with ExitStack() as cleanup:
        cleanup.callback(_delete, mesh, name, "staging")
        cleanup.callback(_delete, mesh, name)
        mesh.apply(deployment_yaml(name, models, "v1", ["eu"], environment="staging"))
        mesh.apply(deployment_yaml(name, models, "v1", ["us"]))

        def release() -> None:
            mesh.deployments.ReleaseDeployment(
                api_pb2.ReleaseDeploymentRequest(
                    name=name, source_environment="staging", target_environment="production"
                ),
                timeout=30,
            )

        _moves_without_failures(mesh, name, release)
