"""Tensor bytes and lists on the wire <-> numpy arrays, shared by the gRPC and REST adapters.

Raw buffers become arrays with `np.frombuffer` (no copy; the array is read-only and aliases the
request body). Lists (gRPC typed contents, REST JSON `data`, flat or nested) are converted once.
Every error names the tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from meshline.inference import grpc_service_pb2 as oip
from workers.oip import datatypes
from workers.oip.errors import InvalidInputError
from workers.oip.signature import format_shape

# numpy kinds a JSON list may hold for each target kind: ints may not become bools, floats
# may not be truncated to ints, strings are never numbers.
_ACCEPTED_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}


# The type of a protobuf repeated int64 field (ModelInferRequest.inputs[i].shape).
_REPEATED = type(oip.ModelInferRequest.InferInputTensor().shape)


def parse_shape(tensor: str, value: Any) -> tuple[int, ...]:
    """A wire shape as a tuple of non-negative ints."""
    if type(value) is list or type(value) is _REPEATED:
        # Fast path, every request: protobuf int64 fields and JSON lists of plain ints.
        fast: tuple[Any, ...] = tuple(value)
        if all(type(d) is int and d >= 0 for d in fast):
            return fast
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise InvalidInputError(
            f"input '{tensor}': shape must be a list of integers, got {value!r}", tensor=tensor
        )
    dims: list[int] = []
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise InvalidInputError(
                f"input '{tensor}': shape must be a list of non-negative integers, "
                f"got {list(value)!r}",
                tensor=tensor,
            )
        dims.append(int(d))
    return tuple(dims)


def element_count(shape: Sequence[int]) -> int:
    return math.prod(shape)


def from_raw(tensor: str, datatype: str, shape: tuple[int, ...], buffer: Any) -> np.ndarray:
    """Raw little-endian bytes (bytes or memoryview) -> array of `shape`, without copying."""
    dt = datatypes.lookup(datatype, tensor)
    expected = element_count(shape) * dt.itemsize
    got = len(buffer) if type(buffer) is bytes else memoryview(buffer).nbytes
    if got != expected:
        raise InvalidInputError(
            f"input '{tensor}': shape {format_shape(shape)} of {datatype} needs {expected} bytes, "
            f"got {got}",
            tensor=tensor,
        )
    return np.frombuffer(buffer, dtype=dt.numpy).reshape(shape)


def from_values(
    tensor: str, datatype: str, shape: tuple[int, ...], values: Any, *, strict: bool = True
) -> np.ndarray:
    """A flat or nested list of numbers -> array of `shape`.

    strict: check that the values fit the datatype (JSON); typed protobuf fields already do.
    """
    dt = datatypes.lookup(datatype, tensor)
    try:
        if strict:
            loose = np.asarray(values)
            _check_kind(tensor, datatype, dt.numpy, loose)
            array = loose.astype(dt.numpy, copy=False)
        else:
            array = np.asarray(values, dtype=dt.numpy)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(
            f"input '{tensor}': data is not a (nested) list of {datatype} values: {exc}",
            tensor=tensor,
        ) from exc
    expected = element_count(shape)
    if array.size != expected:
        raise InvalidInputError(
            f"input '{tensor}': shape {format_shape(shape)} needs {expected} values, "
            f"got {array.size}",
            tensor=tensor,
        )
    return array.reshape(shape)


def _check_kind(tensor: str, datatype: str, target: np.dtype, loose: np.ndarray) -> None:
    if loose.size == 0:
        return
    accepted = _ACCEPTED_KINDS.get(target.kind, "")
    if loose.dtype.kind not in accepted:
        raise InvalidInputError(
            f"input '{tensor}': data holds {_kind_word(loose.dtype.kind)} values, not {datatype}",
            tensor=tensor,
        )
    if target.kind in "iu" and loose.dtype.kind in "iu":
        info = np.iinfo(target)
        if int(loose.min()) < info.min or int(loose.max()) > info.max:
            raise InvalidInputError(
                f"input '{tensor}': a value is out of range for {datatype}", tensor=tensor
            )


def _kind_word(kind: str) -> str:
    return {"b": "boolean", "i": "integer", "u": "integer", "f": "floating-point"}.get(
        kind, "non-numeric"
    )


def to_raw(array: np.ndarray) -> memoryview:
    """The array's bytes (C order) as a flat memoryview; copies only when not contiguous."""
    return np.ascontiguousarray(array).reshape(-1).data.cast("B")


def to_list(array: np.ndarray) -> list[Any]:
    """Flat list in C order (how Triton writes JSON `data`)."""
    values: list[Any] = array.ravel().tolist()  # already a fresh list: no second copy
    return values
