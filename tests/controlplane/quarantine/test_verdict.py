"""Envoy's verdict on a pushed config, read from the answers the xDS cache keeps per version."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from controlplane.quarantine.decide import ACKED, PENDING, Outcome, Verdict
from controlplane.quarantine.verdict import verdict_of
from controlplane.xds import CLUSTER, ROUTE
from controlplane.xds.status import Nack, NodeStatus, TypeStatus

PUSHED = {CLUSTER: "7.5", ROUTE: "7.6"}
NACK = Nack("7.5", "Duration out-of-range", 0.0, "7.5", frozenset({"b"}))


def node(**types: TypeStatus) -> NodeStatus:
    urls = {"cds": CLUSTER, "rds": ROUTE}
    return NodeStatus("eu", True, 1, MappingProxyType({urls[k]: v for k, v in types.items()}))


def answered(**answers: Nack | None) -> TypeStatus:
    """A type whose snapshot versions got these answers (v7_5="7.5"; None: ACKed)."""
    return TypeStatus(
        answers=MappingProxyType({k[1:].replace("_", "."): v for k, v in answers.items()})
    )


RDS_ACKED = answered(v7_6=None)


@pytest.mark.parametrize(
    ("case", "status", "expected"),
    [
        (
            "every type ACKed at the pushed version",
            node(cds=answered(v7_5=None), rds=RDS_ACKED),
            ACKED,
        ),
        (
            "one type still waits for its answer",
            node(cds=answered(v7_1=None), rds=RDS_ACKED),
            PENDING,
        ),
        (
            "the pushed CDS is rejected",
            node(cds=answered(v7_1=None, v7_5=NACK), rds=RDS_ACKED),
            Verdict(Outcome.REJECTED, CLUSTER, "7.5", "Duration out-of-range", frozenset({"b"})),
        ),
        (
            "a CDS with stale clusters (own version) built from the pushed snapshot is rejected",
            node(cds=answered(v7_5=Nack("7.9", "bad", 0.0, "7.5")), rds=RDS_ACKED),
            Verdict(Outcome.REJECTED, CLUSTER, "7.9", "bad"),
        ),
        (
            "rejected while another type is still unanswered: rejected",
            node(cds=answered(v7_5=NACK)),
            Verdict(Outcome.REJECTED, CLUSTER, "7.5", "Duration out-of-range", frozenset({"b"})),
        ),
        (
            "only an older snapshot was rejected",
            node(cds=answered(v7_3=Nack("7.3", "bad", 0.0, "7.3")), rds=RDS_ACKED),
            PENDING,
        ),
        (
            "newer versions were answered since: the pushed one's answer still counts",
            node(cds=answered(v7_5=None, v7_8=None, v7_9=None), rds=answered(v7_6=None, v8_1=None)),
            ACKED,
        ),
        ("the node never answered", node(), PENDING),
    ],
)
def test_verdict_of(case: str, status: NodeStatus, expected: Verdict) -> None:
    assert verdict_of(status, PUSHED) == expected, case


def test_nothing_pushed_is_never_acked() -> None:
    assert verdict_of(node(rds=RDS_ACKED), {}) == PENDING
