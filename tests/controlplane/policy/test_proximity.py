"""Table tests of region order as a gateway sees it: preference, failover tiers, offload targets.

"nearest": the entry region, then its country, then its continent, then the rest (by name in
each group). "ordered": the explicit order first. Failover keeps the first region and, unless
disabled, the failover regions (or all). Offload goes to the tiers other than the entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from controlplane.policy import offload_targets, preference_order, tier_order
from controlplane.policy.proximity import distance
from controlplane.policy.settings import FailoverSettings, OffloadSettings, RoutingSettings
from meshline.v1.resources_pb2 import Region
from tests.controlplane.policy.world import ALL, by_name, regions
from tests.controlplane.store.builders import region

NEAREST = RoutingSettings()


def _ordered(*names: str) -> RoutingSettings:
    return RoutingSettings(region_preference="ordered", region_order=names)


def _allowed(names: Sequence[str]) -> list[Region]:
    return [r for r in regions() if r.metadata.name in names]


DISTANCES = [
    pytest.param("eu-central", "eu-central", 0, id="same-region"),
    pytest.param("eu-central", "de-north", 1, id="same-country"),
    pytest.param("eu-central", "eu-west", 2, id="same-continent"),
    pytest.param("eu-central", "us-east", 3, id="elsewhere"),
    pytest.param("us-west", "us-east", 1, id="same-country-other-side"),
]


@pytest.mark.parametrize(("entry", "other", "expected"), DISTANCES)
def test_distance(entry: str, other: str, expected: int) -> None:
    assert distance(by_name(entry), by_name(other)) == expected


def test_distance_ignores_case_and_needs_facts() -> None:
    lower = region("de-lower", "de", "eu").region
    assert distance(lower, by_name("eu-central")) == 1
    assert distance(lower, by_name("eu-west")) == 2
    bare = region("bare").region
    assert distance(bare, region("other").region) == 3  # no facts: nothing is near


PREFERENCES = [
    pytest.param(
        "eu-central",
        ALL,
        NEAREST,
        ("eu-central", "de-north", "eu-west", "ap-tokyo", "us-east", "us-west"),
        id="nearest-region-country-continent-rest",
    ),
    pytest.param(
        "us-west",
        ALL,
        NEAREST,
        ("us-west", "us-east", "ap-tokyo", "de-north", "eu-central", "eu-west"),
        id="nearest-from-us",
    ),
    pytest.param(
        "ap-tokyo",
        ALL,
        NEAREST,
        ("ap-tokyo", "de-north", "eu-central", "eu-west", "us-east", "us-west"),
        id="nearest-alone-on-its-continent",
    ),
    pytest.param(
        "eu-west",
        ("us-east", "de-north", "eu-central"),
        NEAREST,
        ("de-north", "eu-central", "us-east"),
        id="entry-not-allowed-continent-first",
    ),
    pytest.param(
        "eu-central",
        ALL,
        _ordered("us-east", "ap-tokyo"),
        ("us-east", "ap-tokyo", "eu-central", "de-north", "eu-west", "us-west"),
        id="ordered-explicit-then-nearest",
    ),
    pytest.param(
        "eu-central",
        ("eu-central", "eu-west", "us-east"),
        _ordered("us-west", "us-east"),
        ("us-east", "eu-central", "eu-west"),
        id="ordered-skips-regions-not-allowed",
    ),
    pytest.param(
        "eu-central",
        ALL,
        _ordered("us-east", "us-east", "ap-tokyo"),
        ("us-east", "ap-tokyo", "eu-central", "de-north", "eu-west", "us-west"),
        id="ordered-named-twice-counts-once",
    ),
    pytest.param(
        "eu-central",
        ALL,
        RoutingSettings(region_order=("us-east",)),
        ("eu-central", "de-north", "eu-west", "ap-tokyo", "us-east", "us-west"),
        id="order-without-ordered-is-nearest",
    ),
    pytest.param("eu-central", (), NEAREST, (), id="nothing-allowed"),
]


@pytest.mark.parametrize(("entry", "allowed", "routing", "expected"), PREFERENCES)
def test_preference_order(
    entry: str, allowed: Sequence[str], routing: RoutingSettings, expected: tuple[str, ...]
) -> None:
    assert preference_order(by_name(entry), _allowed(allowed), routing) == expected


TIERS = [
    pytest.param(
        "eu-central",
        ALL,
        NEAREST,
        FailoverSettings(),
        ("eu-central", "de-north", "eu-west", "ap-tokyo", "us-east", "us-west"),
        id="failover-everywhere-by-preference",
    ),
    pytest.param(
        "eu-central",
        ALL,
        NEAREST,
        FailoverSettings(enabled=False),
        ("eu-central",),
        id="failover-disabled-only-the-first",
    ),
    pytest.param(
        "eu-central",
        ALL,
        _ordered("us-east"),
        FailoverSettings(enabled=False),
        ("us-east",),
        id="failover-disabled-first-of-ordered",
    ),
    pytest.param(
        "eu-west",
        ("us-east", "us-west"),
        NEAREST,
        FailoverSettings(enabled=False),
        ("us-east",),
        id="failover-disabled-entry-not-allowed",
    ),
    pytest.param(
        "eu-central",
        ALL,
        NEAREST,
        FailoverSettings(regions=("us-west", "eu-west")),
        ("eu-central", "us-west", "eu-west"),
        id="failover-regions-restrict-and-order",
    ),
    pytest.param(
        "eu-central",
        ("eu-central", "eu-west"),
        NEAREST,
        FailoverSettings(regions=("us-west", "eu-central", "eu-west")),
        ("eu-central", "eu-west"),
        id="failover-regions-never-the-first-nor-outside",
    ),
    pytest.param(
        "eu-central",
        ALL,
        _ordered("ap-tokyo"),
        FailoverSettings(regions=("eu-west", "us-east")),
        ("ap-tokyo", "eu-west", "us-east"),
        id="failover-regions-after-ordered-first",
    ),
    pytest.param(
        "eu-central",
        ALL,
        NEAREST,
        FailoverSettings(regions=("us-east", "us-east")),
        ("eu-central", "us-east"),
        id="failover-region-named-twice-counts-once",
    ),
    pytest.param("eu-central", (), NEAREST, FailoverSettings(), (), id="nothing-allowed"),
]


@pytest.mark.parametrize(("entry", "allowed", "routing", "failover", "expected"), TIERS)
def test_tier_order(
    entry: str,
    allowed: Sequence[str],
    routing: RoutingSettings,
    failover: FailoverSettings,
    expected: tuple[str, ...],
) -> None:
    assert tier_order(by_name(entry), _allowed(allowed), routing, failover) == expected


TIERS_OF_EU_CENTRAL = ("eu-central", "de-north", "eu-west", "us-east")

OFFLOADS = [
    pytest.param(
        TIERS_OF_EU_CENTRAL,
        "eu-central",
        OffloadSettings(max_inflight_per_replica=4),
        ("de-north", "eu-west", "us-east"),
        id="every-other-tier-in-order",
    ),
    pytest.param(
        TIERS_OF_EU_CENTRAL,
        "eu-central",
        OffloadSettings(max_inflight_per_replica=4, regions=("us-east", "de-north")),
        ("us-east", "de-north"),
        id="offload-regions-restrict-and-order",
    ),
    pytest.param(
        TIERS_OF_EU_CENTRAL,
        "eu-central",
        OffloadSettings(max_inflight_per_replica=4, regions=("eu-central", "us-west", "eu-west")),
        ("eu-west",),
        id="never-the-entry-never-outside-the-tiers",
    ),
    pytest.param(
        ("us-east", "eu-west"),
        "eu-central",
        OffloadSettings(max_inflight_per_replica=4),
        ("us-east", "eu-west"),
        id="entry-not-a-tier",
    ),
    pytest.param(
        ("eu-central",),
        "eu-central",
        OffloadSettings(max_inflight_per_replica=4),
        (),
        id="only-the-entry-nowhere-to-go",
    ),
    pytest.param(
        TIERS_OF_EU_CENTRAL,
        "eu-central",
        OffloadSettings(max_inflight_per_replica=4, regions=("eu-west", "eu-west")),
        ("eu-west",),
        id="offload-region-named-twice-counts-once",
    ),
]


@pytest.mark.parametrize(("tiers", "entry", "offload", "expected"), OFFLOADS)
def test_offload_targets(
    tiers: tuple[str, ...], entry: str, offload: OffloadSettings, expected: tuple[str, ...]
) -> None:
    targets = offload_targets(tiers, entry, offload)
    assert targets == expected
    assert entry not in targets
