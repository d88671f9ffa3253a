"""Small protobuf helpers: durations from float seconds, Any packing, wrapper values."""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration rounded to the millisecond, so float noise never changes the output."""
    millis = round(seconds * 1000)
    return duration_pb2.Duration(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


def packed(message: Message) -> any_pb2.Any:
    """`message` as a google.protobuf.Any (typed_config and friends)."""
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped


def uint32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def boolean(value: bool) -> wrappers_pb2.BoolValue:
    return wrappers_pb2.BoolValue(value=value)
