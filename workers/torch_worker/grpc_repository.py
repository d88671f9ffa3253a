"""gRPC adapter of a shared worker: the OIP RPCs over its ModelRepository, plus the model
repository extension (RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload) as Triton
serves them, so tritonclient's load_model / unload_model / get_model_repository_index work."""

from __future__ import annotations

from typing import Any

import grpc

from meshline.inference import grpc_service_pb2 as pb
from workers.oip.errors import InferenceError
from workers.torch_worker.backend import RequestMetrics
from workers.torch_worker.grpc_adapter import InferenceServicer
from workers.torch_worker.identity import WorkerIdentity
from workers.torch_worker.model_config import load_request_config
from workers.torch_worker.repository import ModelRepository


def repository_parameter(value: pb.ModelRepositoryParameter) -> Any:
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


class SharedInferenceServicer(InferenceServicer):
    """InferenceServicer over a ModelRepository, with the repository RPCs."""

    def __init__(
        self, repository: ModelRepository, metrics: RequestMetrics, identity: WorkerIdentity
    ) -> None:
        super().__init__(repository, metrics, identity)
        self._repository = repository

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
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
        # `unload_dependents` (tritonclient always sends it) concerns ensembles: none here.
        try:
            await self._repository.unload(request.model_name)
        except InferenceError as exc:
            await self._abort(context, exc)
        context.set_trailing_metadata(self._trailers)
        return pb.RepositoryModelUnloadResponse()
