"""How the command line writes what it prints: messages as the canonical protobuf JSON mapping
(lowerCamelCase names, as the REST declination answers, so that one jq filter reads both),
and dates as ISO 8601 UTC to the second (2026-12-06T10:15:03Z)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from google.protobuf.timestamp_pb2 import Timestamp


def print_message(message: Message) -> None:
    """Prints a message as indented JSON in the canonical mapping."""
    from google.protobuf import json_format

    print(json_format.MessageToJson(message, indent=2))


def utc_seconds(seconds: float) -> str:
    """An epoch time in seconds as ISO 8601 UTC; "-" for 0 (not set)."""
    if not seconds:
        return "-"
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_milliseconds(milliseconds: int) -> str:
    """An epoch time in milliseconds as ISO 8601 UTC; "-" for 0 (not set)."""
    return utc_seconds(milliseconds // 1000)


def utc_timestamp(timestamp: Timestamp) -> str:
    """A protobuf Timestamp as ISO 8601 UTC; "-" when not set."""
    return utc_seconds(timestamp.seconds)
