"""A shared worker serves many deployments' models: a caller allowed one must not reach another.

The region's gateway authorizes each request for one deployment (policy `access`) and sets
`x-meshline-deployment` to it on every request it routes, overwriting what the client sent
(DESIGN.md §3). A one-model worker serves that deployment alone; a shared worker serves its
neighbours too, so it refuses a request whose header names another deployment than the model
the request names (gRPC PERMISSION_DENIED, HTTP 403), before the request is counted or runs. A
request without the header comes from a local caller that skipped the gateway (the agent, a
test): allowed, as the worker listens where only its host reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from meshline.wire import DEPLOYMENT_HEADER
from workers.oip.errors import PermissionDeniedError
from workers.torch_worker.rest_adapter import Handler

log = logging.getLogger(__name__)


def check_deployment_scope(authorized: Sequence[str], model: str) -> None:
    """`authorized`: every value of the request's x-meshline-deployment (none: no gateway).

    PermissionDeniedError naming both when any differs from `model`.
    """
    others = [value for value in authorized if value != model]
    if not others:
        return
    log.warning(
        "refused a request for model %r authorized for deployment %r (%s)",
        model,
        others[0],
        DEPLOYMENT_HEADER,
    )
    raise PermissionDeniedError(
        f"this request was authorized for deployment '{others[0]}' ({DEPLOYMENT_HEADER}) but "
        f"names model '{model}': a caller of one deployment cannot reach another's model"
    )


@web.middleware
async def deployment_scope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """REST: the same check on every route that names a model (/v2/models/{model}/...)."""
    model = request.match_info.get("model")
    if model is not None:
        check_deployment_scope(request.headers.getall(DEPLOYMENT_HEADER, []), model)
    return await handler(request)
