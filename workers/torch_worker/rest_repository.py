"""REST routes of a shared worker's model repository (KServe v2 / Triton repository extension):

    POST /v2/repository/index                  {"ready": bool}?  -> [{name, version, state, reason}]
    POST /v2/repository/models/{name}/load     {"parameters": {"config": "<JSON>"}}?
    POST /v2/repository/models/{name}/unload   {"parameters": {"unload_dependents": bool}}?

Errors come back as the other routes' do: `{"error": "..."}` with the status of their kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from workers.oip.errors import InvalidInputError
from workers.torch_worker.model_config import load_request_config
from workers.torch_worker.repository import ModelRepository


async def _json_body(request: web.Request) -> Mapping[str, Any]:
    """The body as a JSON object; an empty body is {} (tritonclient sends none for index)."""
    body = await request.read()
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInputError("request body must be a JSON object")
    return document


def _parameters(document: Mapping[str, Any]) -> Mapping[str, Any]:
    parameters = document.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInputError("request field 'parameters' must be an object")
    return parameters


class RepositoryHandlers:
    def __init__(self, repository: ModelRepository) -> None:
        self._repository = repository

    async def index(self, request: web.Request) -> web.Response:
        ready = (await _json_body(request)).get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidInputError("request field 'ready' must be true or false")
        return web.json_response(
            [
                {"name": e.name, "version": e.version, "state": e.state, "reason": e.reason}
                for e in self._repository.index(ready_only=ready)
            ]
        )

    async def load(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        parameters = _parameters(await _json_body(request))
        await self._repository.load(name, load_request_config(name, parameters))
        return web.json_response({})

    async def unload(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        _parameters(await _json_body(request))  # unload_dependents: no ensembles here
        await self._repository.unload(name)
        return web.json_response({})


def add_repository_routes(app: web.Application, repository: ModelRepository) -> None:
    h = RepositoryHandlers(repository)
    app.router.add_post("/v2/repository/index", h.index)
    app.router.add_post("/v2/repository/models/{model}/load", h.load)
    app.router.add_post("/v2/repository/models/{model}/unload", h.unload)
