"""Envoy's verdict on the config last pushed, read from the xDS cache's node status."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from controlplane.quarantine.decide import ACKED, PENDING, Outcome, Verdict
from controlplane.quarantine.verdict import verdict_of
from controlplane.xds import CLUSTER, ROUTE
from controlplane.xds.status import Nack, NodeStatus, TypeStatus

PUSHED = {CLUSTER: "7.5", ROUTE: "7.6"}
NACK = Nack("7.5", "Duration out-of-range", 0.0, "7.5", frozenset({"a", "b"}), frozenset({"b"}))


def node(**types: TypeStatus) -> NodeStatus:
    urls = {"cds": CLUSTER, "rds": ROUTE}
    return NodeStatus("eu", True, 1, MappingProxyType({urls[k]: v for k, v in types.items()}))


def cds(sent: str, acked: str | None, nack: Nack | None = None) -> TypeStatus:
    return TypeStatus("7.5", sent, acked, nack)


RDS_ACKED = TypeStatus("7.6", "7.6", "7.6")


@pytest.mark.parametrize(
    ("case", "status", "expected"),
    [
        (
            "every type ACKed at the pushed version",
            node(cds=cds("7.5", "7.5"), rds=RDS_ACKED),
            ACKED,
        ),
        ("one type still waits for its ACK", node(cds=cds("7.5", "7.1"), rds=RDS_ACKED), PENDING),
        (
            "the pushed CDS is rejected",
            node(cds=cds("7.5", "7.1", NACK), rds=RDS_ACKED),
            Verdict(Outcome.REJECTED, CLUSTER, "7.5", "Duration out-of-range", frozenset({"b"})),
        ),
        (
            "a CDS with stale clusters (own version) built from the pushed snapshot is rejected",
            node(cds=cds("7.9", "7.1", Nack("7.9", "bad", 0.0, "7.5")), rds=RDS_ACKED),
            Verdict(Outcome.REJECTED, CLUSTER, "7.9", "bad"),
        ),
        (
            "the NACK was of an older snapshot",
            node(cds=cds("7.5", "7.1", Nack("7.3", "bad", 0.0, "7.3")), rds=RDS_ACKED),
            PENDING,
        ),
        (
            "rejected, but a newer response of the same snapshot is on its way",
            node(cds=cds("7.9", "7.1", NACK), rds=RDS_ACKED),
            PENDING,
        ),
        ("the node never answered", node(), PENDING),
    ],
)
def test_verdict_of(case: str, status: NodeStatus, expected: Verdict) -> None:
    assert verdict_of(status, PUSHED) == expected, case


def test_nothing_pushed_is_never_acked() -> None:
    assert verdict_of(node(rds=RDS_ACKED), {}) == PENDING
