"""Envoy's verdict on a config pushed to a region, from the xDS cache's node status."""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.quarantine.decide import ACKED, PENDING, Outcome, Verdict
from controlplane.xds.status import NodeStatus


def verdict_of(status: NodeStatus, versions: Mapping[str, str]) -> Verdict:
    """`versions`: the snapshot version of each type right after the config was pushed.

    Read from Envoy's answer to each of those versions (kept per version, so a config replaced
    before its answer arrived still gets one). Rejected: a type's response built from that
    version was NACKed. ACKed: every type's was ACKed. Otherwise the answer is still on its way
    (or it was never sent: a newer config overtook it; the stream is gone).
    """
    answered = True
    for type_url, version in sorted(versions.items()):
        t = status.types.get(type_url)
        if t is None or version not in t.answers:
            answered = False
            continue
        nack = t.answers[version]
        if nack is not None:
            return Verdict(Outcome.REJECTED, type_url, nack.version, nack.message, nack.changed)
    return ACKED if versions and answered else PENDING
