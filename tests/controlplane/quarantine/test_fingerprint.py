"""A quarantine is lifted exactly when the deployment's configuration changes."""

from __future__ import annotations

from controlplane.quarantine.fingerprint import TRANSLATOR, fingerprint, fingerprints
from meshline.v1 import resources_pb2


def deployment(timeout_s: float, replicas: int = 1) -> resources_pb2.Deployment:
    d = resources_pb2.Deployment()
    d.metadata.name = "b"
    d.spec.environment = "production"
    d.spec.model = "m"
    d.spec.version = "v1"
    d.spec.replicas = replicas
    d.spec.policies.add().failover.health_check.timeout_s = timeout_s
    return d


def environment(mandatory_timeout_s: float = 0) -> resources_pb2.Environment:
    e = resources_pb2.Environment()
    e.metadata.name = "production"
    if mandatory_timeout_s:
        e.spec.policies.add().failover.health_check.timeout_s = mandatory_timeout_s
    return e


def test_same_configuration_same_fingerprint() -> None:
    assert fingerprint(deployment(1e11), environment()) == fingerprint(
        deployment(1e11), environment()
    )


def test_a_change_of_the_deployment_or_its_environment_changes_it() -> None:
    base = fingerprint(deployment(1e11), environment())
    assert fingerprint(deployment(2), environment()) != base
    assert fingerprint(deployment(1e11, replicas=2), environment()) != base
    assert fingerprint(deployment(1e11), environment(5)) != base


def test_metadata_alone_does_not_change_it() -> None:
    touched = deployment(1e11)
    touched.metadata.labels["owner"] = "me"
    assert fingerprint(touched, environment()) == fingerprint(deployment(1e11), environment())


def test_fingerprints_keys_deployments_by_environment_and_name() -> None:
    got = fingerprints([deployment(1e11)], [environment()])
    assert got == {("production", "b"): fingerprint(deployment(1e11), environment())}


def test_another_translator_changes_it() -> None:
    """After an upgrade a quarantine (and a baseline) from the old translator no longer
    matches: what Envoy rejected then may be translated into something it takes now."""
    before = fingerprint(deployment(1e11), environment())
    assert before == fingerprint(deployment(1e11), environment(), TRANSLATOR)
    assert fingerprint(deployment(1e11), environment(), b"2/0.2.0") != before
