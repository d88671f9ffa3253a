"""The offload controller: saturation in, percent of traffic sent away out."""

from __future__ import annotations

import pytest

from controlplane.offload import COOLDOWN_S, OffloadController, target_percent
from controlplane.policy import ResolvedDeployment, resolve_deployment
from meshline.v1 import agent_pb2
from meshline.v1.resources_pb2 import Deployment, Environment
from tests.controlplane.store.builders import policy
from tests.controlplane.store.builders import region as region_resource

REGIONS = [region_resource(n, "FR", "EU").region for n in ("eu-west", "eu-central")]
KEY = ("production", "busy", "eu-west")


@pytest.mark.parametrize(
    ("inflight", "current", "expected"),
    [
        pytest.param(1.0, 0, 0, id="under-threshold"),
        pytest.param(2.0, 0, 0, id="at-threshold"),
        pytest.param(4.0, 0, 50, id="twice-the-threshold-halves"),
        pytest.param(6.0, 0, 70, id="rounded-up-to-a-step"),
        pytest.param(100.0, 0, 80, id="capped-at-max-percent"),
        # Already sending half away: 2 in flight locally means a demand of 4 per replica.
        pytest.param(2.0, 50, 50, id="estimates-demand-from-the-kept-share"),
    ],
)
def test_target_percent(inflight: float, current: int, expected: int) -> None:
    assert target_percent(inflight, current, threshold=2, cap=80) == expected


def _busy() -> ResolvedDeployment:
    dep = Deployment()
    dep.metadata.name = "busy"
    dep.spec.environment = "production"
    dep.spec.version = "v1"
    dep.spec.replicas = 1
    dep.spec.policies.append(
        policy({"offload": {"max_inflight_per_replica": 2, "max_percent": 80}})
    )
    env = Environment()
    env.metadata.name = "production"
    return resolve_deployment(dep, env, REGIONS)


def _load(inflight: int) -> dict[str, list[agent_pb2.WorkerReport]]:
    worker = agent_pb2.WorkerReport(
        worker_id="w1",
        deployment="busy",
        environment="production",
        state=agent_pb2.WORKER_STATE_HEALTHY,
        inflight=inflight,
    )
    return {"eu-west": [worker]}


def test_grows_at_once_and_shrinks_one_step_per_cooldown() -> None:
    now = [0.0]
    controller = OffloadController(clock=lambda: now[0])
    dep = _busy()
    assert controller.update([dep], _load(8)) == {KEY: 80}
    # Load gone: one 10 % step per cooldown, never faster.
    assert controller.update([dep], _load(0)) == {KEY: 80}
    now[0] += COOLDOWN_S
    assert controller.update([dep], _load(0)) == {KEY: 70}
    assert controller.update([dep], _load(0)) == {KEY: 70}
    for _ in range(7):
        now[0] += COOLDOWN_S
        controller.update([dep], _load(0))
    assert controller.update([dep], _load(0)) == {}


def test_no_local_worker_means_no_offload_and_deleted_deployments_are_forgotten() -> None:
    controller = OffloadController(clock=lambda: 0.0)
    dep = _busy()
    assert controller.update([dep], {}) == {}
    assert controller.update([dep], _load(8)) == {KEY: 80}
    assert controller.update([], _load(8)) == {}


def test_one_sample_raises_the_share_once() -> None:
    """Rebuilds triggered by ACKs re-read the same report: that must not escalate."""
    controller = OffloadController(clock=lambda: 0.0)
    dep = _busy()
    assert controller.update([dep], _load(3)) == {KEY: 40}
    for _ in range(5):
        assert controller.update([dep], _load(3)) == {KEY: 40}
    # A new report with the same pressure under the raised share does raise it.
    assert controller.update([dep], _load(4)) == {KEY: 70}
