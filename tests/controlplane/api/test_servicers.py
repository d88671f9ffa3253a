"""The management API through a real grpc.aio server and the generated stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from controlplane.api import add_api_to_server, field_errors_from_trailers
from controlplane.registry.identity import serving_identity
from controlplane.store import Store
from meshline.v1 import api_pb2 as api
from meshline.v1 import api_pb2_grpc
from meshline.v1.api_pb2 import Resource
from meshline.v1.resources_pb2 import (
    Deployment,
    DeploymentStatus,
    Policy,
    Region,
    RegionDeploymentStatus,
    RegionStatus,
)
from tests.controlplane.store.builders import (
    deployment,
    environment,
    location,
    model,
    model_file,
    policy,
    region,
)
from tests.harness.credentials import admin_aio_channel, guarded_server


class StaticStatusProvider:
    """Fixed status standing in for the live one (the data plane is out of scope here)."""

    def deployment_status(self, dep: Deployment) -> DeploymentStatus:
        return DeploymentStatus(
            phase="Ready",
            message=f"static status of {dep.metadata.name}",
            regions=[RegionDeploymentStatus(region="eu", config_acked=True)],
            placement=["eu"],
        )

    def region_status(self, region: Region) -> RegionStatus:
        return RegionStatus(agent_connected=True, gateway_address=f"{region.metadata.name}:1")


@dataclass
class Api:
    store: Store
    apply: api_pb2_grpc.ApplyServiceStub
    models: api_pb2_grpc.ModelServiceStub
    environments: api_pb2_grpc.EnvironmentServiceStub
    deployments: api_pb2_grpc.DeploymentServiceStub
    regions: api_pb2_grpc.RegionServiceStub


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Api]:
    store = Store.open(tmp_path / "store.db")
    server, token = guarded_server(store, tmp_path)
    add_api_to_server(server, store, StaticStatusProvider())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = admin_aio_channel(f"127.0.0.1:{port}", token)
    try:
        yield Api(
            store,
            api_pb2_grpc.ApplyServiceStub(channel),
            api_pb2_grpc.ModelServiceStub(channel),
            api_pb2_grpc.EnvironmentServiceStub(channel),
            api_pb2_grpc.DeploymentServiceStub(channel),
            api_pb2_grpc.RegionServiceStub(channel),
        )
    finally:
        await channel.close()
        await server.stop(None)
        store.close()


def _network(tmp_path: Path) -> list[Resource]:
    artifact = model_file(tmp_path)
    return [
        region("eu", "DE"),
        region("us", "US"),
        environment("production", [location(countries=["DE", "US"], mode="mandatory")]),
        environment("staging"),
        model("mnist", [("v1", artifact), ("v2", artifact)]),
        deployment("mnist", "mnist", "v1", replicas=2),
        deployment("mnist-eu", "mnist", "v2", policies=[location(["eu"])]),
        deployment("mnist", "mnist", "v2", environment_name="staging"),
    ]


async def _apply(client: Api, docs: list[Resource], dry_run: bool = False) -> api.ApplyResponse:
    response: api.ApplyResponse = await client.apply.Apply(
        api.ApplyRequest(resources=docs, dry_run=dry_run)
    )
    return response


async def test_apply_stores_everything_and_reports_placement(client: Api, tmp_path: Path) -> None:
    response = await _apply(client, _network(tmp_path))
    assert [(r.kind, r.name, r.action, list(r.placement)) for r in response.results] == [
        ("Region", "eu", "created", []),
        ("Region", "us", "created", []),
        ("Environment", "production", "created", []),
        ("Environment", "staging", "created", []),
        ("Model", "mnist", "created", []),
        ("Deployment", "mnist", "created", ["eu", "us"]),
        ("Deployment", "mnist-eu", "created", ["eu"]),
        ("Deployment", "mnist", "created", ["eu", "us"]),
    ]
    again = await _apply(client, _network(tmp_path))
    assert {r.action for r in again.results} == {"unchanged"}


async def test_dry_run_stores_nothing(client: Api, tmp_path: Path) -> None:
    revision = client.store.revision  # the admin key's creation
    response = await _apply(client, _network(tmp_path), dry_run=True)
    assert {r.action for r in response.results} == {"created"}
    assert list(response.results[6].placement) == ["eu"]
    assert (await client.models.ListModels(api.ListModelsRequest())).models == []
    assert (await client.regions.ListRegions(api.ListRegionsRequest())).regions == []
    assert client.store.revision == revision


async def test_get_and_list_every_kind(client: Api, tmp_path: Path) -> None:
    docs = _network(tmp_path)
    await _apply(client, docs)

    got_model = (await client.models.GetModel(api.GetModelRequest(name="mnist"))).model
    # As applied, plus what the registry recorded about each version's artifact.
    got_versions = got_model.spec.versions
    assert [serving_identity(v) for v in got_versions] == list(docs[4].model.spec.versions)
    assert all(len(v.sha256) == 64 and v.size_bytes > 0 for v in got_versions)
    assert got_model.metadata.generation == 1
    models = (await client.models.ListModels(api.ListModelsRequest())).models
    assert [m.metadata.name for m in models] == ["mnist"]

    env = await client.environments.GetEnvironment(api.GetEnvironmentRequest(name="staging"))
    assert env.environment.metadata.name == "staging"
    envs = (await client.environments.ListEnvironments(api.ListEnvironmentsRequest())).environments
    assert [e.metadata.name for e in envs] == ["production", "staging"]

    # Environment defaults to production.
    dep = await client.deployments.GetDeployment(api.GetDeploymentRequest(name="mnist"))
    assert dep.deployment.spec == docs[5].deployment.spec
    assert dep.deployment.status.phase == "Ready"
    assert dep.deployment.status.message == "static status of mnist"
    staged = await client.deployments.GetDeployment(
        api.GetDeploymentRequest(name="mnist", environment="staging")
    )
    assert staged.deployment.spec.version == "v2"
    listed = (await client.deployments.ListDeployments(api.ListDeploymentsRequest())).deployments
    assert [(d.spec.environment, d.metadata.name) for d in listed] == [
        ("production", "mnist"),
        ("production", "mnist-eu"),
        ("staging", "mnist"),
    ]
    assert {d.status.phase for d in listed} == {"Ready"}
    only_staging = await client.deployments.ListDeployments(
        api.ListDeploymentsRequest(environment="staging")
    )
    assert [d.metadata.name for d in only_staging.deployments] == ["mnist"]

    got_region = (await client.regions.GetRegion(api.GetRegionRequest(name="eu"))).region
    assert got_region.spec.country == "DE"
    assert got_region.status.gateway_address == "eu:1"
    regions = (await client.regions.ListRegions(api.ListRegionsRequest())).regions
    assert [(r.metadata.name, r.status.agent_connected) for r in regions] == [
        ("eu", True),
        ("us", True),
    ]


async def _code_and_details(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), caught.value.details() or ""


async def test_invalid_apply_names_every_field_and_stores_nothing(
    client: Api, tmp_path: Path
) -> None:
    revision = client.store.revision  # the admin key's creation
    missing = tmp_path / "b.pt"
    docs = [
        region("eu", "DE"),
        environment("production"),
        model("x", [("v1", model_file(tmp_path)), ("v2", missing)]),
        deployment("mnist", "x", "v3", replicas=99),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _apply(client, docs)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").splitlines() == [
        f"model 'x' version 'v2': spec.versions[1].path: file {missing} does not exist",
        "deployment 'mnist': spec.version: model 'x' has no version 'v3' (versions: v1, v2)",
        "deployment 'mnist': spec.replicas: must be between 0 and 64, got 99",
    ]
    errors = field_errors_from_trailers(caught.value.trailing_metadata())
    assert [(e.document_index, e.field_path) for e in errors] == [
        (2, "spec.versions[1].path"),
        (3, "spec.version"),
        (3, "spec.replicas"),
    ]
    assert (await client.regions.ListRegions(api.ListRegionsRequest())).regions == []
    assert client.store.revision == revision


async def test_colliding_policies_fail_the_apply(client: Api, tmp_path: Path) -> None:
    docs = _network(tmp_path)
    docs[2] = environment("production", [location(countries=["DE"], mode="mandatory")])
    docs[6] = deployment("mnist-eu", "mnist", "v2", policies=[location(["us"])])
    code, details = await _code_and_details(_apply(client, docs))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == (
        "deployment 'mnist-eu' in environment 'production': spec.policies: "
        "environment 'production' mandatory location {countries: [DE]} and deployment "
        "'mnist-eu' location {regions: [us]} allow no common region "
        "(registered: eu (DE), us (US))"
    )


async def test_deletes_and_their_refusals(client: Api, tmp_path: Path) -> None:
    await _apply(client, _network(tmp_path))
    code, details = await _code_and_details(
        client.models.DeleteModel(api.DeleteModelRequest(name="mnist"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.startswith(
        "model 'mnist' is used by deployment 'mnist' in environment 'production', "
        "deployment 'mnist-eu' in environment 'production', "
        "deployment 'mnist' in environment 'staging'"
    )
    code, details = await _code_and_details(
        client.environments.DeleteEnvironment(api.DeleteEnvironmentRequest(name="staging"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "environment 'staging' is used by deployment 'mnist'" in details
    code, details = await _code_and_details(
        client.regions.DeleteRegion(api.DeleteRegionRequest(name="eu"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "deployment 'mnist-eu' in environment 'production' "
        "(its policy names it in spec.policies[0].location.regions)"
    ) in details
    assert "deployment 'mnist' in environment 'staging' (placed there)" in details

    await client.deployments.DeleteDeployment(api.DeleteDeploymentRequest(name="mnist"))
    await client.deployments.DeleteDeployment(api.DeleteDeploymentRequest(name="mnist-eu"))
    await client.deployments.DeleteDeployment(
        api.DeleteDeploymentRequest(name="mnist", environment="staging")
    )
    await client.environments.DeleteEnvironment(api.DeleteEnvironmentRequest(name="staging"))
    await client.models.DeleteModel(api.DeleteModelRequest(name="mnist"))
    await client.regions.DeleteRegion(api.DeleteRegionRequest(name="us"))
    assert (await client.models.ListModels(api.ListModelsRequest())).models == []
    regions = (await client.regions.ListRegions(api.ListRegionsRequest())).regions
    assert [r.metadata.name for r in regions] == ["eu"]


async def test_a_region_an_environment_policy_names_stays(client: Api) -> None:
    await _apply(
        client,
        [
            region("eu", "DE"),
            region("us"),
            environment(
                "production",
                [location(["eu", "us"]), policy({"failover": {"regions": ["us"]}})],
            ),
        ],
    )
    code, details = await _code_and_details(
        client.regions.DeleteRegion(api.DeleteRegionRequest(name="us"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.startswith(
        "region 'us' is used by environment 'production' (its policy names it in "
        "spec.policies[0].location.regions and spec.policies[1].failover.regions)"
    )


# Every list of region names a policy holds keeps the region: without it, resolving the
# policy fails ("names unknown region") and the deployments it governs are stranded.
NAMING_POLICIES = [
    pytest.param(policy({"location": {"deny": {"regions": ["us"]}}}), "location.deny.regions"),
    pytest.param(
        policy({"routing": {"region_preference": "ordered", "region_order": ["eu", "us"]}}),
        "routing.region_order",
    ),
    pytest.param(policy({"failover": {"regions": ["us"]}}), "failover.regions"),
    pytest.param(
        policy({"offload": {"max_inflight_per_replica": 4, "regions": ["us"]}}), "offload.regions"
    ),
]


@pytest.mark.parametrize(("naming", "field"), NAMING_POLICIES)
async def test_a_region_any_environment_policy_names_stays(
    client: Api, naming: Policy, field: str
) -> None:
    await _apply(
        client,
        [
            region("eu", "DE"),
            region("us"),
            region("asia"),
            environment("production", [naming]),
        ],
    )
    code, details = await _code_and_details(
        client.regions.DeleteRegion(api.DeleteRegionRequest(name="us"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details == (
        "region 'us' is used by environment 'production' "
        f"(its policy names it in spec.policies[0].{field}); delete or change those first"
    )
    # A region no policy names can go.
    await client.regions.DeleteRegion(api.DeleteRegionRequest(name="asia"))


@pytest.mark.parametrize(("naming", "field"), NAMING_POLICIES)
async def test_a_region_any_deployment_policy_names_stays(
    client: Api, tmp_path: Path, naming: Policy, field: str
) -> None:
    await _apply(
        client,
        [
            region("eu", "DE"),
            region("us", "US"),
            environment("production", [location(countries=["DE"], mode="mandatory")]),
            model("mnist", [("v1", model_file(tmp_path))]),
            deployment("mnist", "mnist", "v1", policies=[naming]),
        ],
    )
    # us is not in the placement (the environment allows DE only), yet the policy names it.
    dep = await client.deployments.GetDeployment(api.GetDeploymentRequest(name="mnist"))
    assert dep.deployment.spec.policies[0] == naming
    code, details = await _code_and_details(
        client.regions.DeleteRegion(api.DeleteRegionRequest(name="us"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details == (
        "region 'us' is used by deployment 'mnist' in environment 'production' "
        f"(its policy names it in spec.policies[0].{field}); delete or change those first"
    )
    regions = (await client.regions.ListRegions(api.ListRegionsRequest())).regions
    assert [r.metadata.name for r in regions] == ["eu", "us"]
    # Once the deployment no longer names it, the region can go.
    await client.deployments.DeleteDeployment(api.DeleteDeploymentRequest(name="mnist"))
    await client.regions.DeleteRegion(api.DeleteRegionRequest(name="us"))


NOT_FOUND = [
    pytest.param("models", "GetModel", api.GetModelRequest(name="x"), "model 'x' not found"),
    pytest.param("models", "DeleteModel", api.DeleteModelRequest(name="x"), "model 'x' not found"),
    pytest.param(
        "environments",
        "GetEnvironment",
        api.GetEnvironmentRequest(name="x"),
        "environment 'x' not found",
    ),
    pytest.param(
        "environments",
        "DeleteEnvironment",
        api.DeleteEnvironmentRequest(name="x"),
        "environment 'x' not found",
    ),
    pytest.param(
        "deployments",
        "GetDeployment",
        api.GetDeploymentRequest(name="x"),
        "deployment 'x' in environment 'production' not found",
    ),
    pytest.param(
        "deployments",
        "DeleteDeployment",
        api.DeleteDeploymentRequest(name="x", environment="staging"),
        "deployment 'x' in environment 'staging' not found",
    ),
    pytest.param("regions", "GetRegion", api.GetRegionRequest(name="x"), "region 'x' not found"),
    pytest.param(
        "regions", "DeleteRegion", api.DeleteRegionRequest(name="x"), "region 'x' not found"
    ),
]


@pytest.mark.parametrize(("service", "method", "request_message", "message"), NOT_FOUND)
async def test_missing_things_are_not_found(
    client: Api, service: str, method: str, request_message: object, message: str
) -> None:
    call = getattr(getattr(client, service), method)(request_message)
    assert await _code_and_details(call) == (grpc.StatusCode.NOT_FOUND, message)


async def test_a_request_without_a_name_is_invalid(client: Api) -> None:
    code, details = await _code_and_details(client.models.GetModel(api.GetModelRequest()))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "model name is required")
