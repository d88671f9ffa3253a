"""Memory amounts as users write them and as people read them."""

from __future__ import annotations

import re

import pytest

from meshline.quantity import MemoryBudget, QuantityError, gib, parse_bytes, parse_memory_budget

DEFAULT = MemoryBudget(share=0.6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 2**20),
        ("800Mi", 800 * 2**20),
        ("12Gi", 12 * 2**30),
        ("2G", 2 * 10**9),
        ("1.5Gi", 3 * 2**29),
        (" 64 Ki ", 64 * 2**10),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "Gi", "-1Gi", "12 GiB", "12gi", "1e9", "twelve"])
def test_not_an_amount_says_what_is(text: str) -> None:
    with pytest.raises(QuantityError, match=re.escape("e.g. 12Gi or 800Mi")):
        parse_bytes(text)


@pytest.mark.parametrize(
    ("text", "machine", "expected"),
    [
        ("", 10 * 2**30, 6 * 2**30),
        ("50%", 10 * 2**30, 5 * 2**30),
        ("100%", 8, 8),
        ("3Gi", 10 * 2**30, 3 * 2**30),
        ("3Gi", 2**30, 3 * 2**30),
    ],
)
def test_memory_budget(text: str, machine: int, expected: int) -> None:
    assert parse_memory_budget(text, DEFAULT).bytes_of(machine) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0%", "above 0% and at most 100%"),
        ("150%", "above 0% and at most 100%"),
        ("0Gi", "more than 0 bytes"),
        ("lots", "or a share of the machine's memory such as 60%"),
    ],
)
def test_bad_memory_budget(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_memory_budget(text, DEFAULT)


@pytest.mark.parametrize(
    ("amount", "text"), [(400 * 2**20, "400 MiB"), (int(1.1 * 2**30), "1.1 GiB"), (0, "0 MiB")]
)
def test_gib(amount: int, text: str) -> None:
    assert gib(amount) == text
