"""The principal label of a request: anonymous without a header, bounded distinct labels."""

from __future__ import annotations

import pytest

from workers.oip.principals import ANONYMOUS, MAX_PRINCIPALS, OTHER, PrincipalLabels


@pytest.mark.parametrize(
    ("seen", "value", "want"),
    [
        ((), None, ANONYMOUS),
        ((), "", ANONYMOUS),
        ((), "ci", "ci"),
        (("ci", "web"), "ci", "ci"),  # known: its own label, also when the set is full
        (("ci", "web"), "web", "web"),
        (("ci", "web"), "new", OTHER),  # full (limit 2): a new principal is `other`
        (("ci", "web"), None, OTHER),  # anonymous is a principal too, and came too late
        (("ci", ANONYMOUS), None, ANONYMOUS),
    ],
)
def test_label(seen: tuple[str, ...], value: str | None, want: str) -> None:
    labels = PrincipalLabels(limit=2)
    for principal in seen:
        assert labels.label(principal) == principal
    assert labels.label(value) == want


def test_the_label_set_never_grows_past_the_limit() -> None:
    labels = PrincipalLabels()
    got = {labels.label(f"key-{i}") for i in range(MAX_PRINCIPALS + 50)}
    assert len(labels) == MAX_PRINCIPALS
    assert len(got) == MAX_PRINCIPALS + 1  # the first 100, and `other`
    assert labels.label("key-0") == "key-0" and labels.label("key-100") == OTHER


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PrincipalLabels(limit=0)
