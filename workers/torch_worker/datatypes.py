"""Open Inference Protocol datatypes and their numpy and torch equivalents.

One table, so every adapter and the runtime agree on what "FP32" means. BYTES and BF16 have no
numpy/torch pair the worker can serve, so they are known but unsupported: a clear error, never a
silent reinterpretation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workers.torch_worker.errors import InvalidInputError


@dataclass(frozen=True)
class DataType:
    """One OIP datatype: its wire name, numpy dtype (little-endian) and torch dtype."""

    name: str
    numpy: np.dtype
    torch: torch.dtype

    @property
    def itemsize(self) -> int:
        return int(self.numpy.itemsize)


_TABLE: dict[str, DataType] = {
    dt.name: dt
    for dt in (
        DataType("BOOL", np.dtype(np.bool_), torch.bool),
        DataType("UINT8", np.dtype("<u1"), torch.uint8),
        DataType("UINT16", np.dtype("<u2"), torch.uint16),
        DataType("UINT32", np.dtype("<u4"), torch.uint32),
        DataType("UINT64", np.dtype("<u8"), torch.uint64),
        DataType("INT8", np.dtype("<i1"), torch.int8),
        DataType("INT16", np.dtype("<i2"), torch.int16),
        DataType("INT32", np.dtype("<i4"), torch.int32),
        DataType("INT64", np.dtype("<i8"), torch.int64),
        DataType("FP16", np.dtype("<f2"), torch.float16),
        DataType("FP32", np.dtype("<f4"), torch.float32),
        DataType("FP64", np.dtype("<f8"), torch.float64),
    )
}

# Valid OIP datatypes that this worker cannot turn into torch tensors.
UNSUPPORTED: frozenset[str] = frozenset({"BYTES", "BF16"})

_BY_TORCH: dict[torch.dtype, DataType] = {dt.torch: dt for dt in _TABLE.values()}
_BY_NUMPY: dict[str, DataType] = {dt.numpy.str: dt for dt in _TABLE.values()}


def is_known(name: str) -> bool:
    """True for every datatype the protocol defines, served here or not."""
    return name in _TABLE or name in UNSUPPORTED


def lookup(name: str, tensor: str = "") -> DataType:
    """The DataType for a wire name; InvalidInputError naming input `tensor` if unknown/unsupported."""
    found = _TABLE.get(name)
    if found is not None:
        return found
    where = f"input '{tensor}': " if tensor else ""
    if name in UNSUPPORTED:
        raise InvalidInputError(
            f"{where}datatype {name} is not supported by the torch worker "
            f"(supported: {', '.join(supported_names())})",
            tensor=tensor,
        )
    raise InvalidInputError(f"{where}unknown datatype '{name}'", tensor=tensor)


def supported_names() -> list[str]:
    return list(_TABLE)


def from_torch(dtype: torch.dtype) -> DataType | None:
    """The OIP datatype of a torch dtype, or None (e.g. bfloat16, complex)."""
    return _BY_TORCH.get(dtype)


def from_numpy(dtype: np.dtype) -> DataType | None:
    """The OIP datatype of a numpy dtype, or None (object, big-endian, ...)."""
    return _BY_NUMPY.get(np.dtype(dtype).str)
