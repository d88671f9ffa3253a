"""Signature parsing and the checks requests must pass (in process, no server)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workers.demo import DEMO_SIGNATURE
from workers.oip.errors import (
    InvalidInputError,
    ModelExecutionError,
    SignatureError,
    TensorMismatchError,
)
from workers.oip.signature import Signature


@dataclass(frozen=True)
class Header:
    name: str
    datatype: str
    shape: tuple[int, ...]


SIG = Signature.from_dict(DEMO_SIGNATURE)


def test_round_trip_and_lookups() -> None:
    assert Signature.from_dict(SIG.to_dict()) == SIG
    assert SIG.input_names == ["input"]
    assert SIG.output_names == ["output"]
    assert SIG.inputs[0].shape == (-1, 784)
    assert SIG.inputs[0].example_shape() == (1, 784)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("[]", "expected an object with 'inputs' and 'outputs'"),
        ('{"inputs": [], "outputs": []}', "'inputs' must be a non-empty list"),
        ("{not json", "not valid JSON"),
        (
            '{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-2]}], "outputs": '
            '[{"name": "y", "datatype": "FP32", "shape": [1]}]}',
            "inputs[0].shape: expected a list of sizes",
        ),
        (
            '{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1]}], "outputs": '
            '[{"name": "y", "datatype": "FP32", "shape": [1]}]}',
            "inputs[0].datatype: BYTES is not supported by the torch worker",
        ),
        (
            '{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}], "outputs": '
            '[{"name": "y", "datatype": "FP32", "shape": [1]}, '
            '{"name": "y", "datatype": "FP32", "shape": [1]}]}',
            "outputs: name 'y' is used twice",
        ),
        (
            '{"inputs": [{"name": "", "datatype": "FP32", "shape": [1]}], "outputs": '
            '[{"name": "y", "datatype": "FP32", "shape": [1]}]}',
            "inputs[0].name: expected a non-empty string",
        ),
        (
            '{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "dims": 2}], '
            '"outputs": [{"name": "y", "datatype": "FP32", "shape": [1]}]}',
            "inputs[0]: unknown field(s) ['dims']",
        ),
    ],
)
def test_bad_signatures_name_the_field(doc: str, message: str) -> None:
    with pytest.raises(SignatureError, match=None) as info:
        Signature.from_json(doc)
    assert message in str(info.value)


def test_wildcards_match_any_size_but_not_rank() -> None:
    SIG.check_inputs([Header("input", "FP32", (0, 784))])
    SIG.check_inputs([Header("input", "FP32", (4096, 784))])
    with pytest.raises(TensorMismatchError) as info:
        SIG.check_inputs([Header("input", "FP32", (784,))])
    assert (info.value.tensor, info.value.field) == ("input", "shape")
    assert (info.value.expected, info.value.got) == ("[-1, 784]", "[784]")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([Header("input", "FP16", (1, 784))], "input 'input': expected datatype FP32, got FP16"),
        (
            [Header("input", "FP32", (1, 10))],
            "input 'input': expected shape [-1, 784], got [1, 10]",
        ),
        ([Header("img", "FP32", (1, 784))], "unexpected input 'img' (the model takes: 'input')"),
        ([], "missing input 'input' (FP32 [-1, 784])"),
        (
            [Header("input", "FP32", (1, 784)), Header("input", "FP32", (1, 784))],
            "input 'input' given twice",
        ),
    ],
)
def test_input_errors_name_the_tensor(given: list[Header], message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        SIG.check_inputs(given)
    assert str(info.value) == message


def test_outputs_checks() -> None:
    SIG.check_requested_outputs(["output"])
    with pytest.raises(InvalidInputError, match="unknown output 'probs'"):
        SIG.check_requested_outputs(["probs"])
    SIG.check_output("output", "FP32", (3, 10))
    with pytest.raises(
        ModelExecutionError, match=r"output 'output': the model returned FP32 \[3, 9\]"
    ):
        SIG.check_output("output", "FP32", (3, 9))
