"""The two pieces of the protobuf wire format that assembling a message from serialized parts
needs: a length-delimited field (a sub-message of a repeated field) and its varint prefix."""

from __future__ import annotations

LENGTH_DELIMITED = 2


def varint(value: int) -> bytes:
    """`value` (>= 0) as a base-128 varint."""
    if value < 0:
        raise ValueError(f"a varint here is never negative, got {value}")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def length_delimited(field_number: int, data: bytes) -> bytes:
    """One occurrence of field `field_number` holding `data` (a serialized sub-message)."""
    return varint(field_number << 3 | LENGTH_DELIMITED) + varint(len(data)) + data
