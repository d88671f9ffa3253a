"""Wire <-> numpy conversions: no copies for raw bytes, precise errors (in process)."""

from __future__ import annotations

import numpy as np
import pytest

from workers.oip import codec, datatypes
from workers.oip.errors import InvalidInputError


def test_raw_bytes_become_an_array_without_copy() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    body = b"header" + x.tobytes()
    view = memoryview(body)[6:]
    got = codec.from_raw("input", "FP32", (3, 4), view)
    np.testing.assert_array_equal(got, x)
    assert not got.flags.writeable  # aliases the request body
    assert np.shares_memory(got, np.frombuffer(body, dtype=np.uint8))


def test_raw_size_mismatch_names_the_tensor() -> None:
    with pytest.raises(InvalidInputError) as info:
        codec.from_raw("input", "FP32", (2, 2), b"\0" * 12)
    assert str(info.value) == "input 'input': shape [2, 2] of FP32 needs 16 bytes, got 12"
    assert info.value.tensor == "input"


@pytest.mark.parametrize(
    ("datatype", "values", "expected"),
    [
        ("FP32", [[1.5, 2.0], [3.0, 4.0]], np.array([[1.5, 2.0], [3.0, 4.0]], np.float32)),
        ("FP32", [1, 2, 3, 4], np.array([[1, 2], [3, 4]], np.float32)),
        ("INT64", [1, 2, 3, 4], np.array([[1, 2], [3, 4]], np.int64)),
        ("BOOL", [True, False, True, True], np.array([[True, False], [True, True]])),
        ("FP16", [0.5, 1, 2, 3], np.array([[0.5, 1], [2, 3]], np.float16)),
    ],
)
def test_values_flat_or_nested(datatype: str, values: object, expected: np.ndarray) -> None:
    got = codec.from_values("x", datatype, (2, 2), values)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("datatype", "values", "message"),
    [
        ("INT32", [1.5, 2, 3, 4], "input 'x': data holds floating-point values, not INT32"),
        ("BOOL", [1, 0, 1, 0], "input 'x': data holds integer values, not BOOL"),
        ("FP32", ["a", "b", "c", "d"], "input 'x': data holds non-numeric values, not FP32"),
        ("INT8", [1, 2, 3, 300], "input 'x': a value is out of range for INT8"),
        ("FP32", [1.0, 2.0, 3.0], "input 'x': shape [2, 2] needs 4 values, got 3"),
        ("FP32", [[1.0, 2.0], [3.0]], "input 'x': data is not a (nested) list of FP32 values"),
        ("FP8", [1, 2, 3, 4], "input 'x': unknown datatype 'FP8'"),
        ("BYTES", [b"a"] * 4, "input 'x': datatype BYTES is not supported by the torch worker"),
    ],
)
def test_value_errors_name_the_tensor(datatype: str, values: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        codec.from_values("x", datatype, (2, 2), values)
    assert message in str(info.value)


def test_parse_shape() -> None:
    assert codec.parse_shape("x", [1, 784]) == (1, 784)
    assert codec.parse_shape("x", []) == ()
    for bad in ([1, -1], [1.5], "12", [True], None, {}, {"a": 1}, {1, 2}):
        with pytest.raises(InvalidInputError, match="input 'x': shape must be a list"):
            codec.parse_shape("x", bad)


def test_to_raw_and_to_list() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert bytes(codec.to_raw(x)) == x.tobytes()
    assert bytes(codec.to_raw(x.T)) == np.ascontiguousarray(x.T).tobytes()
    assert bytes(codec.to_raw(np.float32(2.0) * np.ones((), np.float32))) == b"\0\0\0@"
    assert codec.to_list(x) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_datatype_table() -> None:
    import torch

    assert datatypes.lookup("FP32").numpy == np.float32
    assert datatypes.lookup("FP32").torch is torch.float32
    assert datatypes.from_torch(torch.int64) == datatypes.lookup("INT64")
    assert datatypes.from_torch(torch.bfloat16) is None
    assert datatypes.from_numpy(np.dtype(np.uint8)) == datatypes.lookup("UINT8")
    assert datatypes.is_known("BYTES") and not datatypes.is_known("FP8")
