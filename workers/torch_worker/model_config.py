"""The configuration of one model in a shared worker, as a repository load request carries it.

Triton's `RepositoryModelLoadRequest.parameters["config"]` is a JSON string; here it holds:

    {"version": "1", "path": "/models/a.pt", "signature": {...}, "memory_bytes": 1048576}

`path` (a TorchScript file) and `signature` (the same JSON as `--signature`) are required;
`version` defaults to "1"; `memory_bytes` (optional) is the model's footprint as its owner
declares it, used for the worker's memory budget instead of the growth measured at load.
Pure: parsing and checks only, every error naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.oip.errors import InvalidInputError, SignatureError
from workers.oip.signature import Signature

CONFIG_PARAMETER = "config"
FIELDS = ("version", "path", "signature", "memory_bytes")
DEFAULT_VERSION = "1"


@dataclass(frozen=True)
class ModelConfig:
    """What a shared worker needs to load and serve one model; compared whole on reload."""

    name: str
    version: str
    path: Path
    signature: Signature
    memory_bytes: int | None = None


def check_model_name(name: str) -> str:
    """The name, or InvalidInputError: it must be non-empty and hold no '/' (it is a URL part)."""
    if not name.strip() or "/" in name:
        raise InvalidInputError(f"invalid model name {name!r}: non-empty, without '/'")
    return name


def parse_model_config(name: str, document: str | dict[str, Any]) -> ModelConfig:
    """A load request's config (JSON text, or an already decoded object over REST) -> ModelConfig.

    InvalidInputError naming the model and the field on any mistake, unknown fields included
    (a typo must not load a model with defaults).
    """
    check_model_name(name)
    where = f"config of model '{name}'"
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInputError(f"{where} must be a JSON object with {', '.join(FIELDS)}")
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})"
        )
    version = document.get("version", DEFAULT_VERSION)
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version.strip() or "/" in version:
        raise InvalidInputError(f"{where}: 'version' must be a non-empty string without '/'")
    path = document.get("path")
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError(f"{where}: 'path' (the TorchScript file) is missing or empty")
    if "signature" not in document:
        raise InvalidInputError(f"{where}: 'signature' (inputs and outputs) is missing")
    try:
        signature = Signature.from_dict(document["signature"])
    except SignatureError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    memory = document.get("memory_bytes")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
        raise InvalidInputError(f"{where}: 'memory_bytes' must be an integer number of bytes")
    if memory is not None and memory <= 0:
        raise InvalidInputError(f"{where}: 'memory_bytes' must be more than 0, got {memory}")
    return ModelConfig(name, version, Path(path), signature, memory)


def config_json(config: ModelConfig) -> str:
    """The JSON a load request carries for `config` (what the agent sends; tests use it)."""
    document: dict[str, Any] = {
        "version": config.version,
        "path": str(config.path),
        "signature": config.signature.to_dict(),
    }
    if config.memory_bytes is not None:
        document["memory_bytes"] = config.memory_bytes
    return json.dumps(document, separators=(",", ":"))


def load_request_config(name: str, parameters: Mapping[str, Any]) -> ModelConfig | None:
    """The config a load request's parameters carry, or None (reload the model as it was).

    Triton's other load parameters (`file:...`, a model directory sent inline) are refused by
    name: this worker loads a TorchScript file from the path in the config.
    """
    check_model_name(name)
    unknown = sorted(key for key in parameters if key != CONFIG_PARAMETER)
    if unknown:
        raise InvalidInputError(
            f"load of model '{name}': parameter(s) {', '.join(map(repr, unknown))} not supported "
            f"(give the model file's path in the '{CONFIG_PARAMETER}' parameter)"
        )
    if CONFIG_PARAMETER not in parameters:
        return None
    document = parameters[CONFIG_PARAMETER]
    if isinstance(document, bytes):
        document = document.decode("utf-8", errors="replace")
    if not isinstance(document, str | dict):
        raise InvalidInputError(
            f"load of model '{name}': parameter '{CONFIG_PARAMETER}' must be a JSON string"
        )
    return parse_model_config(name, document)
