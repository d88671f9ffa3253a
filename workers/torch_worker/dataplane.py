"""The protocol-neutral data plane: what every OIP endpoint does, without gRPC or HTTP types.

Adapters decode the wire format into these dataclasses (numpy arrays inside), call DataPlane, and
encode the result back; DataPlane checks names, the signature and the priority of each request
and then calls the runtime directly, or queues the request in the Batcher when batching or
priority levels are on (so a bad request fails alone, before it can join a batch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.oip.errors import ModelNotFoundError, NotReadyError
from workers.oip.signature import Signature, TensorSpec
from workers.torch_worker.batcher import (
    Batcher,
    BatchObserver,
    BatchPolicy,
    NullObserver,
    batching_blocker,
)
from workers.torch_worker.runtime import TorchRuntime

SERVER_NAME = "meshline-torch-worker"
PLATFORM = "pytorch_libtorch"  # what Triton reports for TorchScript models
EXTENSIONS = ("binary_tensor_data",)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferInput:
    """One decoded input tensor; `data` already has `shape` and the datatype's dtype."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray


@dataclass(frozen=True)
class InferOutput:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray


@dataclass
class InferenceRequest:
    model_name: str
    inputs: list[InferInput]
    model_version: str = ""
    id: str = ""
    # Names of the outputs wanted, in reply order; empty means all declared outputs.
    outputs: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    # The x-meshline-priority header (or gRPC metadata) as sent, if any.
    priority_header: str | None = None

    @property
    def priority(self) -> Any:
        """The raw priority: the `priority` parameter, else the header, else None."""
        value = self.parameters.get("priority")
        return self.priority_header if value is None else value


@dataclass
class InferenceResponse:
    model_name: str
    model_version: str
    outputs: list[InferOutput]
    id: str = ""


@dataclass(frozen=True)
class ServerMetadata:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class DataPlane:
    """One model, one version, one runtime."""

    def __init__(
        self,
        model_name: str,
        model_version: str,
        runtime: TorchRuntime,
        server_version: str,
        policy: BatchPolicy | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.runtime = runtime
        self.server_version = server_version
        self.policy = policy or BatchPolicy()
        self._observer: BatchObserver = observer or NullObserver()
        self._draining = False
        self.batcher: Batcher | None = None
        if self.policy.batching:
            blocker = batching_blocker(runtime.signature)
            if blocker:
                log.warning("batching is off, requests run one by one: %s", blocker)
                self.policy = self.policy.unbatched()
        if self.policy.queued:
            self.batcher = Batcher(runtime, self.policy, self._observer)

    @property
    def priority_levels(self) -> int:
        return self.policy.priority_levels

    def close(self) -> None:
        """Fail requests still queued (after the drain); running ones finish."""
        if self.batcher is not None:
            self.batcher.close()

    @property
    def signature(self) -> Signature:
        return self.runtime.signature

    # ---- health --------------------------------------------------------------------------

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.runtime.loaded and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    def start_draining(self) -> None:
        """Report not-ready from now on; requests already arriving are still served."""
        self._draining = True

    def resolve(self, name: str, version: str = "") -> None:
        """ModelNotFoundError unless this worker serves `name` (and `version`, when given)."""
        if name != self.model_name:
            raise ModelNotFoundError(
                f"unknown model '{name}' (this worker serves '{self.model_name}')"
            )
        if version and version != self.model_version:
            raise ModelNotFoundError(
                f"model '{name}' has no version '{version}' here "
                f"(this worker serves version '{self.model_version}')"
            )

    def model_ready(self, name: str, version: str = "") -> bool:
        self.resolve(name, version)
        return self.ready()

    # ---- metadata ------------------------------------------------------------------------

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata(SERVER_NAME, self.server_version, EXTENSIONS)

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        self.resolve(name, version)
        return ModelMetadata(
            name=self.model_name,
            versions=(self.model_version,),
            platform=PLATFORM,
            inputs=self.signature.inputs,
            outputs=self.signature.outputs,
        )

    # ---- inference -----------------------------------------------------------------------

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Validate against the signature, run the model, keep the requested outputs."""
        self.resolve(request.model_name, request.model_version)
        if not self.runtime.loaded:
            raise NotReadyError(f"model '{self.model_name}' is not loaded")
        signature = self.signature
        signature.check_inputs(request.inputs)
        signature.check_requested_outputs(request.outputs)
        by_name = {t.name: t.data for t in request.inputs}
        inputs = [by_name[name] for name in signature.input_names]
        if self.batcher is not None:
            level = self.policy.level_index(request.priority)
            arrays = await self.batcher.infer(inputs, level)
        else:
            first = inputs[0]
            self._observer.observe_batch(1, first.shape[0] if first.ndim else 1)
            arrays = await self.runtime.infer(inputs)
        wanted = request.outputs or signature.output_names
        outputs = [
            InferOutput(
                name=name,
                datatype=signature.output(name).datatype,
                shape=tuple(arrays[name].shape),
                data=arrays[name],
            )
            for name in wanted
        ]
        return InferenceResponse(
            model_name=self.model_name,
            model_version=self.model_version,
            outputs=outputs,
            id=request.id,
        )
