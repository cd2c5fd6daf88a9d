"""Calls about the node as a whole, written once for both clients (clients/calls.py): its
health and its audit journal."""

from __future__ import annotations

from grpc_health.v1 import health_pb2
from interops.audit.v1 import audit_pb2

from clients.calls import Pages, Steps, Unary


def check_health(service: str = "") -> Steps[bool]:
    """True when the node (or one of its services) is serving."""
    answer = yield Unary(health_pb2.HealthCheckRequest(service=service))
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def list_audit_records(request: audit_pb2.ListRecordsRequest) -> Pages[audit_pb2.AuditRecord]:
    """Every journal record matching the request's filters, page after page."""
    return Pages(request, "records")
