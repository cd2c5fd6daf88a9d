"""The standard health service (grpc.health.v1.Health) of the node, with its List method.

grpcio-health-checking's asyncio servicer answers Check and Watch; List, added to the standard
later, is left to the base class, which raises. The node answers it from the same statuses.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]


class NodeHealth(health_aio.HealthServicer):  # type: ignore[misc]
    """Check, Watch and List over the node's and each service's serving status."""

    async def List(  # noqa: N802 (the standard's method name)
        self, request: health_pb2.HealthListRequest, context: Any
    ) -> health_pb2.HealthListResponse:
        statuses = {
            service: health_pb2.HealthCheckResponse(status=status)
            for service, status in self._server_status.items()
        }
        return health_pb2.HealthListResponse(statuses=statuses)
