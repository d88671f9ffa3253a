"""gRPC adapter of a shared worker: the OIP RPCs over its ModelRepository, plus the model
repository extension (RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload) as Triton
serves them, so tritonclient's load_model / unload_model / get_model_repository_index work.

Two servicers run in one worker: one on the inference port, where the region's gateway routes
clients, and one on the control port, which only the agent uses. The repository RPCs are served
on the control port alone: through the gateway a client could otherwise unload a neighbour's
model. On both, a request the gateway authorized for one deployment reaches that deployment's
model only (workers/torch_worker/deployment_scope.py).
"""

from __future__ import annotations

from typing import Any

import grpc

from meshline.inference import grpc_service_pb2 as pb
from meshline.wire import DEPLOYMENT_HEADER
from workers.oip.errors import InferenceError, PermissionDeniedError
from workers.torch_worker.backend import RequestMetrics
from workers.torch_worker.deployment_scope import check_deployment_scope
from workers.torch_worker.grpc_adapter import InferenceServicer
from workers.torch_worker.identity import WorkerIdentity
from workers.torch_worker.model_config import load_request_config
from workers.torch_worker.repository import ModelRepository

CONTROL_PORT_ONLY = "the model repository is served on the worker's control port only"


def repository_parameter(value: pb.ModelRepositoryParameter) -> Any:
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


def metadata_values(context: grpc.aio.ServicerContext, key: str) -> list[str]:
    """Every value the request's metadata has for `key`."""
    return [str(item.value) for item in context.invocation_metadata() or () if item.key == key]


class SharedInferenceServicer(InferenceServicer):
    """InferenceServicer over a ModelRepository, with the repository RPCs where `control`."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: RequestMetrics,
        identity: WorkerIdentity,
        control: bool,
    ) -> None:
        super().__init__(repository, metrics, identity)
        self._repository = repository
        self._control = control

    # ---- the OIP RPCs that name a model: the caller's deployment only --------------------

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        await self._check_scope(context, request.name)
        return await super().ModelReady(request, context)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        await self._check_scope(context, request.name)
        return await super().ModelMetadata(request, context)

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        await self._check_scope(context, request.model_name)
        return await super().ModelInfer(request, context)

    async def _check_scope(self, context: grpc.aio.ServicerContext, model: str) -> None:
        try:
            check_deployment_scope(metadata_values(context, DEPLOYMENT_HEADER), model)
        except InferenceError as exc:
            await self._abort(context, exc)

    # ---- the repository extension: on the control port only -----------------------------

    async def _check_control(self, context: grpc.aio.ServicerContext) -> None:
        if not self._control:
            await self._abort(context, PermissionDeniedError(CONTROL_PORT_ONLY))

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        await self._check_control(context)
        entries = self._repository.index(ready_only=request.ready)
        context.set_trailing_metadata(self._trailers)
        model = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(
            models=[
                model(name=e.name, version=e.version, state=e.state, reason=e.reason)
                for e in entries
            ]
        )

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelLoadResponse:
        await self._check_control(context)
        try:
            parameters = {k: repository_parameter(v) for k, v in request.parameters.items()}
            config = load_request_config(request.model_name, parameters)
            await self._repository.load(request.model_name, config)
        except InferenceError as exc:
            await self._abort(context, exc)
        context.set_trailing_metadata(self._trailers)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryModelUnloadResponse:
        await self._check_control(context)
        # `unload_dependents` (tritonclient always sends it) concerns ensembles: none here.
        try:
            await self._repository.unload(request.model_name)
        except InferenceError as exc:
            await self._abort(context, exc)
        context.set_trailing_metadata(self._trailers)
        return pb.RepositoryModelUnloadResponse()
