"""A deployment's configuration as one digest: what must change to lift its quarantine."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata

from meshline.keys import DeploymentKey
from meshline.v1 import resources_pb2

# Bumped when translation of the same spec changes: a quarantine (or an accepted baseline) is
# about what one translator made of a spec, and another translator may make something Envoy
# takes. The installed meshline version is digested too, so an upgrade tries everything again.
TRANSLATION_FORMAT = 1


def _translator() -> bytes:
    try:
        release = metadata.version("meshline")
    except metadata.PackageNotFoundError:
        release = "unknown"
    return f"{TRANSLATION_FORMAT}/{release}".encode()


TRANSLATOR = _translator()


def fingerprint(
    deployment: resources_pb2.Deployment,
    environment: resources_pb2.Environment | None,
    translator: bytes = TRANSLATOR,
) -> str:
    """Digest of the deployment's spec and its environment's spec (whose policies apply too).

    Deterministic across processes, so a quarantine kept in the store still matches after a
    restart; re-applying the same spec does not change it. Another translator (an upgrade)
    changes it (`translator`: this installation's, see TRANSLATION_FORMAT).
    """
    digest = hashlib.sha256(translator)
    for spec in (deployment.spec, environment.spec if environment is not None else None):
        data = spec.SerializeToString(deterministic=True) if spec is not None else b""
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:16]


def fingerprints(
    deployments: Iterable[resources_pb2.Deployment],
    environments: Iterable[resources_pb2.Environment],
) -> dict[DeploymentKey, str]:
    """(environment, deployment) -> `fingerprint` of every deployment."""
    by_name = {e.metadata.name: e for e in environments}
    return {
        DeploymentKey(d.spec.environment, d.metadata.name): fingerprint(
            d, by_name.get(d.spec.environment)
        )
        for d in deployments
    }
