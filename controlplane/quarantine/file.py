"""Quarantines on disk, beside the store: a restarted control plane must not push a deployment
its Envoys rejected again (each region would NACK it once more and attribute it again).

This is the control plane's knowledge of what its Envoys said, like the ACK state it keeps in
memory, not configuration: it lives in its own small file, not in the store. A file that cannot
be read is ignored with a warning; the next rejection rebuilds what it held.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from controlplane.quarantine.decide import Quarantine, RouteKey

log = logging.getLogger(__name__)

FILE_NAME = "quarantine.json"
_FORMAT = 1

Quarantines = Mapping[str, Mapping[RouteKey, Quarantine]]  # region -> deployment -> quarantine


def load(path: Path) -> dict[str, dict[RouteKey, Quarantine]]:
    """What `save` wrote; empty when the file is missing or unreadable."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        out: dict[str, dict[RouteKey, Quarantine]] = {}
        for entry in data["quarantines"]:
            key = (str(entry["environment"]), str(entry["deployment"]))
            out.setdefault(str(entry["region"]), {})[key] = Quarantine(
                fingerprint=str(entry["fingerprint"]),
                type_url=str(entry["type_url"]),
                version=str(entry["version"]),
                message=str(entry["message"]),
            )
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring %s (%s): quarantines start empty", path, exc)
        return {}


def save(path: Path, quarantines: Quarantines) -> None:
    """Replace the file atomically (write, fsync, rename)."""
    entries = [
        {
            "region": region,
            "environment": environment,
            "deployment": deployment,
            "fingerprint": q.fingerprint,
            "type_url": q.type_url,
            "version": q.version,
            "message": q.message,
        }
        for region, by_key in sorted(quarantines.items())
        for (environment, deployment), q in sorted(by_key.items())
    ]
    text = json.dumps({"format": _FORMAT, "quarantines": entries}, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
