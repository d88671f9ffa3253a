"""Amounts of memory as users write them (Kubernetes quantities, or a share of a machine) and
as people read them (GiB with one decimal). Shared by apply's checks, the control plane's
capacity decisions and the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|k|M|G|T|Ki|Mi|Gi|Ti)\s*$")
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class QuantityError(ValueError):
    """The text is not an amount of memory; the message says what is accepted."""


@dataclass(frozen=True)
class MemoryBudget:
    """A share of the machine's memory (0 < share <= 1), or an amount in bytes."""

    share: float = 0.0
    amount_bytes: int = 0

    def bytes_of(self, machine_bytes: int) -> int:
        if self.amount_bytes:
            return self.amount_bytes
        return int(machine_bytes * self.share)

    def __str__(self) -> str:
        if self.amount_bytes:
            return gib(self.amount_bytes)
        return f"{self.share * 100:g}% of the machine's memory"


def parse_bytes(text: str) -> int:
    """`12Gi`, `800Mi`, `2G`, `1048576` -> bytes."""
    found = _AMOUNT.match(text)
    if found is None:
        raise QuantityError(
            f"'{text}' is not an amount of memory: write a number with an optional unit "
            "(Ki, Mi, Gi, Ti, or k, M, G, T), e.g. 12Gi or 800Mi"
        )
    return int(float(found[1]) * _UNITS[found[2]])


def parse_memory_budget(text: str, default: MemoryBudget) -> MemoryBudget:
    """`60%` (of the machine's memory) or an amount (`12Gi`); "" is `default`."""
    if not text.strip():
        return default
    share = _SHARE.match(text)
    if share is not None:
        percent = float(share[1])
        if not 0 < percent <= 100:
            raise QuantityError(
                f"a share of the machine's memory is above 0% and at most 100%, got {text}"
            )
        return MemoryBudget(share=percent / 100)
    try:
        amount = parse_bytes(text)
    except QuantityError as exc:
        raise QuantityError(f"{exc}, or a share of the machine's memory such as 60%") from None
    if amount <= 0:
        raise QuantityError(f"a memory budget is more than 0 bytes, got {text}")
    return MemoryBudget(amount_bytes=amount)


def gib(amount_bytes: int) -> str:
    """Bytes as people read them: `1.1 GiB`, `380 MiB` below one GiB."""
    if abs(amount_bytes) < 2**30:
        return f"{amount_bytes / 2**20:.0f} MiB"
    return f"{amount_bytes / 2**30:.1f} GiB"
