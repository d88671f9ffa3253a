"""TritonWorkerConfig -> ModelConfig: how meshline's signature and batching flags map to Triton.

- A signature whose every tensor has a wildcard first dim is batchable: with --max-batch-size
  above 1, max_batch_size is that and dims leave the batch dim out, and dynamic_batching (with
  any priority levels: they live in the dynamic batcher's queue) is on. Otherwise max_batch_size
  is 0 with full dims: each request runs as it comes, with any number of rows.
- Triton versions are integer folders: a positive integer --model-version is used as is; any other
  label is served as version 1 (see `triton_version`).
"""

from __future__ import annotations

import math

from workers.oip.signature import WILDCARD, Signature, TensorSpec
from workers.triton_worker.config import TritonWorkerConfig
from workers.triton_worker.pbtxt import DynamicBatching, InstanceGroup, ModelConfig, TensorConfig

BACKEND = "python"
MODEL_PATH_PARAMETER = "model_path"
TORCH_THREADS_PARAMETER = "torch_threads"

# Open Inference Protocol datatype -> Triton config data_type.
DATA_TYPES: dict[str, str] = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FP16": "TYPE_FP16",
    "FP32": "TYPE_FP32",
    "FP64": "TYPE_FP64",
    "BF16": "TYPE_BF16",
    "BYTES": "TYPE_STRING",
}


def is_batchable(signature: Signature) -> bool:
    """Every input and output has a wildcard first dim (the batch dim Triton adds and strips)."""
    return all(
        spec.shape and spec.shape[0] == WILDCARD for spec in (*signature.inputs, *signature.outputs)
    )


def triton_version(label: str) -> int:
    """The version folder that serves `label`: itself if a positive integer, else 1."""
    text = label.strip()
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    return 1


def unused_batching_note(config: TritonWorkerConfig) -> str | None:
    """Why batching flags are ignored for this signature, or None when they apply."""
    b = config.scheduling
    if b.max_batch_size == 1 and b.priority_levels == 0:
        return None
    if not is_batchable(config.signature):
        return (
            "the signature has a tensor without a -1 first dim, so the model is not batchable; "
            f"--max-batch-size {b.max_batch_size} and --priority-levels {b.priority_levels} "
            "do not apply"
        )
    if b.max_batch_size == 1:
        return (
            f"--priority-levels {b.priority_levels} needs batching (--max-batch-size above 1): "
            "Triton orders requests in its dynamic batcher's queue"
        )
    return None


def build_model_config(config: TritonWorkerConfig) -> ModelConfig:
    b = config.scheduling
    # --max-batch-size 1 means "no batching", as in the Torch worker: a request keeps any
    # number of rows. In Triton that is max_batch_size 0 with the -1 first dim kept in dims
    # (max_batch_size 1 would refuse every request of two rows or more).
    batchable = is_batchable(config.signature) and b.max_batch_size > 1
    dynamic = None
    if batchable:
        dynamic = DynamicBatching(
            preferred_batch_size=b.preferred_batch_sizes,
            max_queue_delay_microseconds=math.ceil(b.max_batch_delay_ms * 1000),
            priority_levels=b.priority_levels,
            default_priority_level=b.default_priority_level,
        )
    return ModelConfig(
        name=config.model_name,
        backend=BACKEND,
        max_batch_size=b.max_batch_size if batchable else 0,
        version=triton_version(config.model_version),
        inputs=tuple(tensor_config(s, batchable) for s in config.signature.inputs),
        outputs=tuple(tensor_config(s, batchable) for s in config.signature.outputs),
        dynamic_batching=dynamic,
        instance_groups=(InstanceGroup(count=b.instances, kind="KIND_CPU"),),
        parameters={
            MODEL_PATH_PARAMETER: str(config.model_path.resolve()),
            TORCH_THREADS_PARAMETER: str(config.torch_threads),
        },
    )


def tensor_config(spec: TensorSpec, batchable: bool) -> TensorConfig:
    """The spec's dims as Triton wants them: without the batch dim when batchable; a tensor with
    no dims left travels as [1] and is reshaped to [] for the model."""
    dims = spec.shape[1:] if batchable else spec.shape
    data_type = DATA_TYPES[spec.datatype]
    if not dims:
        return TensorConfig(spec.name, data_type, (1,), reshape=())
    return TensorConfig(spec.name, data_type, tuple(dims))
