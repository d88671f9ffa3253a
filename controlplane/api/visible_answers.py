"""What of a list answer the caller may see: the entries of environments it may view
(MethodRule.visible; the call itself was allowed as a list of every environment)."""

from __future__ import annotations

from controlplane.api.authz import Principal
from controlplane.api.request_actions import env_or_default
from meshline.v1 import api_pb2 as api


def only_visible_deployments(response: api.ListDeploymentsResponse, who: Principal) -> None:
    keep = [d for d in response.deployments if who.may_view(env_or_default(d.spec.environment))]
    del response.deployments[:]
    response.deployments.extend(keep)


def only_visible_keys(response: api.ListKeysResponse, who: Principal) -> None:
    keep = [k for k in response.keys if who.may_view(k.spec.environment)]
    del response.keys[:]
    response.keys.extend(keep)
