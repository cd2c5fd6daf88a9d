"""The notification calls of the API channel, written once for both clients
(clients/calls.py): the stream of notifications and their acknowledgement."""

from __future__ import annotations

from collections.abc import Sequence

from interops.notify.v1 import notify_pb2 as pb

from clients.calls import Steps, Stream, Unary

ACKNOWLEDGED_PER_CALL = 100


def stream_notifications(
    timeout: float | None = None, lease_seconds: int = 0
) -> Stream[pb.Notification]:
    """The API channel as a stream: each notification of the caller's companies not yet
    acknowledged, until the iterator is closed (or `timeout` seconds have passed). Each
    is handed over again when its lease ends unacknowledged: acknowledge it with
    `acknowledge_notifications` once it is safe with you, and deduplicate by id."""
    request = pb.StreamNotificationsRequest(lease_seconds=lease_seconds)
    return Stream(request, lambda response: response.notification, timeout)


def acknowledge_notifications(ids: Sequence[str]) -> Steps[int]:
    """The received acknowledgement of notifications handed over on the API channel (100
    ids a call); returns how many were not acknowledged before."""
    acknowledged = 0
    for start in range(0, len(ids), ACKNOWLEDGED_PER_CALL):
        batch = ids[start : start + ACKNOWLEDGED_PER_CALL]
        answer: pb.AcknowledgeNotificationsResponse = yield Unary(
            pb.AcknowledgeNotificationsRequest(ids=batch)
        )
        acknowledged += answer.acknowledged
    return acknowledged
