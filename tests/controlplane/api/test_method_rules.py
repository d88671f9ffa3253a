"""Every RPC of the management services has an authorization rule (walking the generated
service descriptors, so a new RPC fails here until it gets one), and the rules' actions for
the requests that matter."""

from __future__ import annotations

import pytest

from controlplane.api.authz import ANY_ENVIRONMENT, Action
from controlplane.api.method_rules import MANAGED_SERVICES, RULES, managed, rule_for
from controlplane.api.rule_types import DeploymentFacts, KeyFacts
from meshline.v1 import agent_pb2, api_pb2
from meshline.v1.resources_pb2 import ApiKeySpec, JoinTokenSpec
from tests.controlplane.store.builders import deployment, environment, model, region

# The mesh's own services: agents authenticate with join tokens and mTLS there, not here.
UNMANAGED_SERVICES = {"meshline.v1.AgentService", "meshline.v1.JoinService"}


def _methods() -> list[str]:
    found = []
    for module in (api_pb2, agent_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            found.extend(f"/{service.full_name}/{m.name}" for m in service.methods)
    return found


def test_every_service_is_managed_or_known_to_be_the_meshs_own() -> None:
    services = {m.lstrip("/").split("/")[0] for m in _methods()}
    assert services - UNMANAGED_SERVICES == set(MANAGED_SERVICES)


@pytest.mark.parametrize("method", [m for m in _methods() if managed(m)])
def test_every_managed_method_has_a_rule(method: str) -> None:
    assert rule_for(method) is not None, f"{method} has no authorization rule"


def test_every_rule_names_a_real_method() -> None:
    assert set(RULES) <= set(_methods())
    assert not any(managed(m) for m in _methods() if m.split("/")[1] in UNMANAGED_SERVICES)


class Facts:
    def key(self, name: str) -> KeyFacts | None:
        return {"ci": KeyFacts("staging", ("deployer",))}.get(name)

    def deployment(self, environment: str, name: str) -> DeploymentFacts | None:
        return {("production", "fraud"): DeploymentFacts("v1", 2)}.get((environment, name))


def actions(method: str, request: object) -> tuple[Action, ...]:
    rule = rule_for(f"/meshline.v1.{method}")
    assert rule is not None
    return rule.actions(request, Facts())


@pytest.mark.parametrize(
    ("method", "request_", "expected"),
    [
        (
            "ApplyService/Apply",
            api_pb2.ApplyRequest(
                resources=[
                    region("eu"),
                    environment("staging"),
                    model("m", []),
                    deployment("fraud", "m", "v1", environment_name=""),
                    api_pb2.Resource(),
                ]
            ),
            (
                Action("apply", "Region", "eu"),
                Action("apply", "Environment", "staging", "staging"),
                Action("apply", "Model", "m"),
                Action("apply", "Deployment", "fraud", "production"),
                Action("apply", "Resource", "resources[4]"),
            ),
        ),
        (
            "ApplyService/Apply",
            api_pb2.ApplyRequest(resources=[deployment("fraud", "m", "v1")], dry_run=True),
            (Action("plan", "Deployment", "fraud", "production"),),
        ),
        (
            "ApplyService/Delete",
            api_pb2.DeleteRequest(
                targets=[
                    api_pb2.ResourceRef(kind="Deployment", name="d"),
                    api_pb2.ResourceRef(kind="Environment", name="staging"),
                ]
            ),
            (
                Action("delete", "Deployment", "d", "production"),
                Action("delete", "Environment", "staging", "staging"),
            ),
        ),
        (
            "DeploymentService/ReleaseDeployment",
            api_pb2.ReleaseDeploymentRequest(
                name="fraud", source_environment="staging", target_environment="production"
            ),
            (
                Action("release", "Deployment", "fraud", "staging"),
                Action("release", "Deployment", "fraud", "production"),
            ),
        ),
        (
            "DeploymentService/ListDeployments",
            api_pb2.ListDeploymentsRequest(),
            (Action("list", "Deployment", "", ANY_ENVIRONMENT),),
        ),
        (
            "KeyService/CreateKey",
            api_pb2.CreateKeyRequest(
                name="x", spec=ApiKeySpec(environment="staging", roles=["viewer", "reader"])
            ),
            (Action("key-create", "ApiKey", "x", "staging", ("viewer", "reader")),),
        ),
        # from the stored key: its environment and roles
        (
            "KeyService/RotateKey",
            api_pb2.RotateKeyRequest(name="ci"),
            (Action("key-rotate", "ApiKey", "ci", "staging", ("deployer",)),),
        ),
        (
            "KeyService/RevokeKey",
            api_pb2.RevokeKeyRequest(name="unknown"),
            (Action("key-revoke", "ApiKey", "unknown"),),
        ),
        (
            "RolloutService/ControlRollout",
            api_pb2.ControlRolloutRequest(name="fraud", action="pause"),
            (Action("rollout-pause", "Rollout", "fraud", "production"),),
        ),
        (
            "RegionService/CreateJoinToken",
            api_pb2.CreateJoinTokenRequest(spec=JoinTokenSpec(region="eu")),
            (Action("join-token-create", "JoinToken", "eu"),),
        ),
        (
            "ModelService/PushModelVersion",
            None,
            (Action("push", "ModelVersion", ""),),
        ),
        (
            "ModelService/DeleteModelVersion",
            api_pb2.DeleteModelVersionRequest(model="m", version="v2"),
            (Action("delete", "ModelVersion", "m:v2"),),
        ),
    ],
)
def test_actions_of_requests(method: str, request_: object, expected: tuple[Action, ...]) -> None:
    assert actions(method, request_) == expected


def test_user_text_in_an_action_is_clipped() -> None:
    (action,) = actions(
        "DeploymentService/GetDeployment", api_pb2.GetDeploymentRequest(name="x" * 5000)
    )
    assert len(action.name) == 200
