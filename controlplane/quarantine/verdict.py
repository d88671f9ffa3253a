"""Envoy's verdict on the config last pushed to a region, from the xDS cache's node status."""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.quarantine.decide import ACKED, PENDING, Outcome, Verdict
from controlplane.xds.status import NodeStatus


def verdict_of(status: NodeStatus, versions: Mapping[str, str]) -> Verdict:
    """`versions`: the snapshot version of each type right after the config was pushed.

    Rejected: a type's NACK was of a response built from that snapshot version and nothing
    newer was sent since. ACKed: every type's ACKed version is the pushed one. Otherwise the
    answer is still on its way (or the stream is gone).
    """
    for type_url, version in sorted(versions.items()):
        t = status.types.get(type_url)
        nack = t.nack if t is not None else None
        if (
            t is not None
            and nack is not None
            and nack.snapshot_version == version
            and nack.version == t.sent_version
        ):
            return Verdict(Outcome.REJECTED, type_url, nack.version, nack.message, nack.changed)
    if versions and all(
        (t := status.types.get(type_url)) is not None and t.acked_version == version
        for type_url, version in versions.items()
    ):
        return ACKED
    return PENDING
