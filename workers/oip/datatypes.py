"""Open Inference Protocol datatypes and their numpy and torch equivalents.

One table, so every adapter and the runtime agree on what "FP32" means. BYTES and BF16 have no
numpy/torch pair the worker can serve, so they are known but unsupported: a clear error, never a
silent reinterpretation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from workers.oip.errors import InvalidInputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DataType:
    """One OIP datatype: its wire name, numpy dtype (little-endian) and torch dtype name.

    torch is looked up lazily, so parsing flags and signatures does not pay torch's import time.
    """

    name: str
    numpy: np.dtype
    torch_name: str

    @property
    def itemsize(self) -> int:
        return int(self.numpy.itemsize)

    @property
    def torch(self) -> torch.dtype:
        import torch

        dtype: torch.dtype = getattr(torch, self.torch_name)
        return dtype


_TABLE: dict[str, DataType] = {
    dt.name: dt
    for dt in (
        DataType("BOOL", np.dtype(np.bool_), "bool"),
        DataType("UINT8", np.dtype("<u1"), "uint8"),
        DataType("UINT16", np.dtype("<u2"), "uint16"),
        DataType("UINT32", np.dtype("<u4"), "uint32"),
        DataType("UINT64", np.dtype("<u8"), "uint64"),
        DataType("INT8", np.dtype("<i1"), "int8"),
        DataType("INT16", np.dtype("<i2"), "int16"),
        DataType("INT32", np.dtype("<i4"), "int32"),
        DataType("INT64", np.dtype("<i8"), "int64"),
        DataType("FP16", np.dtype("<f2"), "float16"),
        DataType("FP32", np.dtype("<f4"), "float32"),
        DataType("FP64", np.dtype("<f8"), "float64"),
    )
}

# Valid OIP datatypes that this worker cannot turn into torch tensors.
UNSUPPORTED: frozenset[str] = frozenset({"BYTES", "BF16"})

_BY_NUMPY: dict[str, DataType] = {dt.numpy.str: dt for dt in _TABLE.values()}


def is_known(name: str) -> bool:
    """True for every datatype the protocol defines, served here or not."""
    return name in _TABLE or name in UNSUPPORTED


def lookup(name: str, tensor: str = "") -> DataType:
    """The DataType for a wire name; InvalidInputError naming input `tensor` if not served."""
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
    return _by_torch().get(dtype)


@functools.cache
def _by_torch() -> dict[torch.dtype, DataType]:
    return {dt.torch: dt for dt in _TABLE.values()}


def from_numpy(dtype: np.dtype) -> DataType | None:
    """The OIP datatype of a numpy dtype, or None (object, big-endian, ...)."""
    return _BY_NUMPY.get(np.dtype(dtype).str)
