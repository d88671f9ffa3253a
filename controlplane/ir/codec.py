"""A DeploymentRoute as JSON text and back: the form a region's Envoy last accepted is kept in
the store (controlplane/store/quarantines.py), so a restarted control plane can keep a
quarantined deployment at that form instead of taking it away.

Generic over the IR's frozen dataclasses (str, int, float, bool, tuples, optional values and
nested dataclasses): what the IR gains is kept without a change here.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from controlplane.ir.model import DeploymentRoute


def route_to_json(route: DeploymentRoute) -> str:
    return json.dumps(dataclasses.asdict(route), sort_keys=True, allow_nan=False)


def route_from_json(text: str) -> DeploymentRoute:
    """Raises ValueError when `text` is not a route this IR can read."""
    try:
        return typing.cast(DeploymentRoute, _decode(DeploymentRoute, json.loads(text)))
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a stored route: {exc}") from exc


def _decode(hint: Any, data: Any) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint)}
        return hint(**{k: _decode(hints[k], v) for k, v in data.items() if k in known})
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        return tuple(_decode(args[0], item) for item in data)
    if origin in (types.UnionType, typing.Union):
        if data is None:
            return None
        return _decode(next(a for a in args if a is not type(None)), data)
    if hint is float:
        return float(data)
    if hint in (str, int, bool):
        if not isinstance(data, hint):
            raise TypeError(f"{data!r} is not a {hint.__name__}")
        return data
    raise TypeError(f"cannot decode {hint!r}")
