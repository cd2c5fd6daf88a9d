"""The time the tables store: Unix milliseconds, and its google.protobuf.Timestamp."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp


def now_ms() -> int:
    """Unix milliseconds."""
    return int(time.time() * 1000)


def timestamp(milliseconds: int) -> Timestamp | None:
    """The Timestamp of stored Unix milliseconds; None for 0 (never happened)."""
    if not milliseconds:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp
