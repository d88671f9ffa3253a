"""Triton's model configuration (the part meshline uses) as dataclasses, rendered as config.pbtxt.

A small renderer of our own rather than Triton's protobuf classes: the text is what an operator
reads when a model fails to load, so it is written in the layout of Triton's documentation, with
fields in a fixed order (golden-tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

INDENT = "  "


@dataclass(frozen=True)
class TensorConfig:
    """One input or output.

    `reshape` is set when the model's tensor has no dims of its own (a scalar per batch item):
    Triton needs dims [1] on the wire and reshapes them to [] for the model.
    """

    name: str
    data_type: str  # TYPE_FP32, TYPE_STRING, ...
    dims: tuple[int, ...]
    reshape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DynamicBatching:
    """Triton's dynamic batcher; priority fields are left out when there are no levels."""

    preferred_batch_size: tuple[int, ...] = ()
    max_queue_delay_microseconds: int = 0
    priority_levels: int = 0
    default_priority_level: int = 0


@dataclass(frozen=True)
class InstanceGroup:
    count: int = 1
    kind: str = "KIND_CPU"


@dataclass(frozen=True)
class ModelConfig:
    """The config.pbtxt of one model; `version` is the only version directory served."""

    name: str
    backend: str
    max_batch_size: int
    version: int
    inputs: tuple[TensorConfig, ...]
    outputs: tuple[TensorConfig, ...]
    dynamic_batching: DynamicBatching | None = None
    instance_groups: tuple[InstanceGroup, ...] = (InstanceGroup(),)
    parameters: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> str:
        """The config.pbtxt text (protobuf text format), ending in a newline."""
        lines = [
            f"name: {quote(self.name)}",
            f"backend: {quote(self.backend)}",
            f"max_batch_size: {self.max_batch_size}",
            f"version_policy: {{ specific: {{ versions: [ {self.version} ] }} }}",
        ]
        lines += _list("input", [_tensor(t) for t in self.inputs])
        lines += _list("output", [_tensor(t) for t in self.outputs])
        if self.dynamic_batching is not None:
            lines += _block("dynamic_batching", _dynamic_batching(self.dynamic_batching))
        lines += _list(
            "instance_group",
            [[f"count: {g.count}", f"kind: {g.kind}"] for g in self.instance_groups],
        )
        if self.parameters:
            lines += _list(
                "parameters",
                [
                    [f"key: {quote(k)}", f"value: {{ string_value: {quote(v)} }}"]
                    for k, v in self.parameters.items()
                ],
            )
        return "\n".join(lines) + "\n"


def quote(text: str) -> str:
    """A text-format string literal: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _ints(values: Sequence[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]" if values else "[ ]"


def _tensor(t: TensorConfig) -> list[str]:
    fields = [f"name: {quote(t.name)}", f"data_type: {t.data_type}", f"dims: {_ints(t.dims)}"]
    if t.reshape is not None:
        fields.append(f"reshape: {{ shape: {_ints(t.reshape)} }}")
    return fields


def _dynamic_batching(b: DynamicBatching) -> list[str]:
    fields = []
    if b.preferred_batch_size:
        fields.append(f"preferred_batch_size: {_ints(b.preferred_batch_size)}")
    fields.append(f"max_queue_delay_microseconds: {b.max_queue_delay_microseconds}")
    if b.priority_levels > 0:
        fields.append(f"priority_levels: {b.priority_levels}")
        fields.append(f"default_priority_level: {b.default_priority_level}")
    return fields


def _block(name: str, fields: list[str]) -> list[str]:
    return [f"{name} {{", *(INDENT + f for f in fields), "}"]


def _list(name: str, items: list[list[str]]) -> list[str]:
    """`name [ { ... }, { ... } ]`, one field per line."""
    lines = [f"{name} ["]
    for i, fields in enumerate(items):
        lines.append(INDENT + "{")
        lines += [INDENT * 2 + f for f in fields]
        lines.append(INDENT + ("}," if i < len(items) - 1 else "}"))
    lines.append("]")
    return lines
