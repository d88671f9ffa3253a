"""What the gRPC and REST adapters call: one model's DataPlane, or a shared worker's repository.

Both satisfy these protocols structurally, so the adapters stay thin and protocol-only whichever
mode the worker runs in.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from workers.torch_worker.dataplane import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
)


class InferenceBackend(Protocol):
    """The OIP endpoints, protocol-neutral (DataPlane: one model; ModelRepository: many)."""

    @property
    def priority_levels(self) -> int: ...

    def live(self) -> bool: ...

    def ready(self) -> bool: ...

    def resolve(self, name: str, version: str = "") -> None: ...

    def model_ready(self, name: str, version: str = "") -> bool: ...

    def server_metadata(self) -> ServerMetadata: ...

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata: ...

    async def infer(self, request: InferenceRequest) -> InferenceResponse: ...


class RequestMetrics(Protocol):
    """Counts requests around their handling and renders /metrics (WorkerMetrics,
    SharedMetrics)."""

    content_type: str

    def track(
        self, protocol: str, principal: str | None = None, model: str = ""
    ) -> AbstractContextManager[None]: ...

    def render(self) -> bytes: ...
