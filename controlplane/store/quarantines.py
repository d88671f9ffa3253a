"""What each region's Envoy accepted and rejected, beside the resources (quarantine).

Written by the control plane's quarantine (controlplane/quarantine/), never by apply. It lives
in the store, not in a file beside it, because every control-plane replica shares the store
and nothing else: whichever replica configures a region next must know what that region's
Envoy rejected (so it does not push it again) and what it last accepted (so attributing the
next rejection never needs to take anything away from a live Envoy). Saving does not bump the
store's revision: this is what the data plane said, not user configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from controlplane.store.store import Store
from meshline.keys import DeploymentKey


@dataclass(frozen=True)
class Quarantine:
    """A deployment one region's config does not push at its current configuration: what
    that region's Envoy said about it."""

    fingerprint: str  # the deployment's configuration then; any change lifts the quarantine
    type_url: str  # the xDS type Envoy rejected
    version: str  # the rejected version
    message: str  # Envoy's error_detail text
    # The model version(s) of the last form that region's Envoy accepted, at which the
    # deployment is kept there; '' when it never accepted one (then it is left out).
    kept: str = ""


@dataclass(frozen=True)
class RegionRecord:
    """One region: the fingerprint and form (JSON text, controlplane/ir/codec.py) of every
    deployment in the last config its Envoy ACKed whole, and its quarantines."""

    accepted: Mapping[DeploymentKey, str] = field(default_factory=lambda: MappingProxyType({}))
    forms: Mapping[DeploymentKey, str] = field(default_factory=lambda: MappingProxyType({}))
    quarantined: Mapping[DeploymentKey, Quarantine] = field(
        default_factory=lambda: MappingProxyType({})
    )


def save_region(store: Store, region: str, record: RegionRecord) -> None:
    """Replace what is kept for `region`, in one transaction."""
    with store.companion() as conn:
        conn.execute("DELETE FROM accepted_routes WHERE region = ?", (region,))
        conn.execute("DELETE FROM quarantines WHERE region = ?", (region,))
        conn.executemany(
            "INSERT INTO accepted_routes (region, environment, deployment, fingerprint, form) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (region, env, name, fp, record.forms.get(DeploymentKey(env, name), ""))
                for (env, name), fp in sorted(record.accepted.items())
            ],
        )
        conn.executemany(
            "INSERT INTO quarantines (region, environment, deployment, fingerprint, type_url, "
            "version, message, kept) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (region, env, name, q.fingerprint, q.type_url, q.version, q.message, q.kept)
                for (env, name), q in sorted(record.quarantined.items())
            ],
        )


def load_regions(store: Store) -> dict[str, RegionRecord]:
    """Every region's record (regions with neither rows are absent)."""
    accepted: dict[str, dict[DeploymentKey, str]] = {}
    forms: dict[str, dict[DeploymentKey, str]] = {}
    quarantined: dict[str, dict[DeploymentKey, Quarantine]] = {}
    with store.companion() as conn:
        for row in conn.execute("SELECT * FROM accepted_routes"):
            key = DeploymentKey(row["environment"], row["deployment"])
            accepted.setdefault(row["region"], {})[key] = row["fingerprint"]
            forms.setdefault(row["region"], {})[key] = row["form"]
        for row in conn.execute("SELECT * FROM quarantines"):
            key = DeploymentKey(row["environment"], row["deployment"])
            quarantined.setdefault(row["region"], {})[key] = Quarantine(
                row["fingerprint"], row["type_url"], row["version"], row["message"], row["kept"]
            )
    return {
        region: RegionRecord(
            MappingProxyType(accepted.get(region, {})),
            MappingProxyType(forms.get(region, {})),
            MappingProxyType(quarantined.get(region, {})),
        )
        for region in sorted(accepted.keys() | quarantined.keys())
    }
