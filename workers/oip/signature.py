"""The model's declared inputs and outputs, and the checks requests must pass against them.

-1 in a declared shape means "any size" (usually the batch dimension). Every failure names the
tensor and says what was expected and what was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workers.oip import datatypes
from workers.oip.errors import (
    InvalidInputError,
    ModelExecutionError,
    SignatureError,
    TensorMismatchError,
)

WILDCARD = -1


class TensorHeader(Protocol):
    """What validation needs of a tensor: its name, wire datatype and shape."""

    @property
    def name(self) -> str: ...

    @property
    def datatype(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


def format_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorSpec:
    """One declared tensor: name, OIP datatype, shape with -1 wildcards."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def shape_matches(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (WILDCARD, got) for want, got in zip(self.shape, shape, strict=True)
        )

    def example_shape(self) -> tuple[int, ...]:
        """A concrete shape for this spec (wildcards become 1), used for warm-up."""
        return tuple(1 if d == WILDCARD else d for d in self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def describe(self) -> str:
        return f"{self.datatype} {format_shape(self.shape)}"


@dataclass(frozen=True)
class Signature:
    """Declared inputs (in the order the model's forward takes them) and outputs."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    # ---- parsing -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str) -> Signature:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SignatureError(f"signature: not valid JSON: {exc}") from exc
        return cls.from_dict(doc)

    @classmethod
    def from_file(cls, path: Path) -> Signature:
        try:
            text = path.read_text()
        except OSError as exc:
            raise SignatureError(f"signature file {path}: {exc.strerror or exc}") from exc
        return cls.from_json(text)

    @classmethod
    def from_dict(cls, doc: Any) -> Signature:
        if not isinstance(doc, Mapping):
            raise SignatureError("signature: expected an object with 'inputs' and 'outputs'")
        unknown = set(doc) - {"inputs", "outputs"}
        if unknown:
            raise SignatureError(f"signature: unknown field(s) {sorted(unknown)}")
        inputs = _parse_specs(doc, "inputs")
        outputs = _parse_specs(doc, "outputs")
        return cls(inputs=inputs, outputs=outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    # ---- lookups -------------------------------------------------------------------------

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def output(self, name: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    # ---- request checks ------------------------------------------------------------------

    def check_inputs(self, given: Sequence[TensorHeader]) -> None:
        """Raise InvalidInputError unless `given` are exactly the declared inputs."""
        declared = {t.name: t for t in self.inputs}
        seen: set[str] = set()
        for tensor in given:
            spec = declared.get(tensor.name)
            if spec is None:
                raise InvalidInputError(
                    f"unexpected input '{tensor.name}' (the model takes: "
                    f"{_quoted(self.input_names)})",
                    tensor=tensor.name,
                )
            if tensor.name in seen:
                raise InvalidInputError(f"input '{tensor.name}' given twice", tensor=tensor.name)
            seen.add(tensor.name)
            if tensor.datatype != spec.datatype:
                raise TensorMismatchError(tensor.name, "datatype", spec.datatype, tensor.datatype)
            if not spec.shape_matches(tensor.shape):
                raise TensorMismatchError(
                    tensor.name, "shape", format_shape(spec.shape), format_shape(tensor.shape)
                )
        for spec in self.inputs:
            if spec.name not in seen:
                raise InvalidInputError(
                    f"missing input '{spec.name}' ({spec.describe()})", tensor=spec.name
                )

    def check_requested_outputs(self, names: Sequence[str]) -> None:
        """Raise InvalidInputError for a requested output the model does not have."""
        for name in names:
            if name not in self.output_names:
                raise InvalidInputError(
                    f"unknown output '{name}' requested (the model has: "
                    f"{_quoted(self.output_names)})",
                    tensor=name,
                )

    def check_output(self, name: str, datatype: str, shape: Sequence[int]) -> None:
        """Raise ModelExecutionError when the model produced something it did not declare."""
        spec = self.output(name)
        if datatype != spec.datatype or not spec.shape_matches(shape):
            raise ModelExecutionError(
                f"output '{name}': the model returned {datatype} {format_shape(shape)}, "
                f"but the signature declares {spec.describe()}"
            )


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _parse_specs(doc: Mapping[str, Any], key: str) -> tuple[TensorSpec, ...]:
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        raise SignatureError(f"signature: '{key}' must be a non-empty list")
    specs = tuple(_parse_spec(item, f"{key}[{i}]") for i, item in enumerate(items))
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise SignatureError(f"signature: {key}: name '{name}' is used twice")
    return specs


def _parse_spec(item: Any, where: str) -> TensorSpec:
    if not isinstance(item, Mapping):
        raise SignatureError(f"signature: {where}: expected an object")
    unknown = set(item) - {"name", "datatype", "shape"}
    if unknown:
        raise SignatureError(f"signature: {where}: unknown field(s) {sorted(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise SignatureError(f"signature: {where}.name: expected a non-empty string")
    datatype = item.get("datatype")
    if not isinstance(datatype, str) or not datatype:
        raise SignatureError(f"signature: {where}.datatype: expected a string such as 'FP32'")
    if not datatypes.is_known(datatype):
        raise SignatureError(f"signature: {where}.datatype: unknown datatype '{datatype}'")
    if datatype in datatypes.UNSUPPORTED:
        raise SignatureError(
            f"signature: {where}.datatype: {datatype} is not supported by the torch worker"
        )
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= WILDCARD for d in shape
    ):
        raise SignatureError(
            f"signature: {where}.shape: expected a list of sizes (>= 0, or -1 for any)"
        )
    return TensorSpec(name=name, datatype=datatype, shape=tuple(shape))
