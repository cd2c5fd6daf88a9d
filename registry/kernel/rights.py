"""The names of the rights token chains carry, read from the contract: each value of the
`interops.auth.v1.Right` enum gives its name in its `right_name` option (protos/interops/auth/v1/
auth.proto). Code names a right through these constants, never through a string of its own."""

from __future__ import annotations

from interops.auth.v1 import auth_pb2


def right_name(right: auth_pb2.Right.ValueType) -> str:
    """The name token chains carry for a right of the contract ("registry.read" say)."""
    value = auth_pb2.Right.DESCRIPTOR.values_by_number[right]
    name = value.GetOptions().Extensions[auth_pb2.right_name]
    if not name:
        raise ValueError(f"{value.name} declares no right_name in the contract")
    return name


REGISTRY_READ = right_name(auth_pb2.RIGHT_REGISTRY_READ)
REGISTRY_IMPORT = right_name(auth_pb2.RIGHT_REGISTRY_IMPORT)
DSN_DEPOSIT = right_name(auth_pb2.RIGHT_DSN_DEPOSIT)
DSN_DELIVERIES = right_name(auth_pb2.RIGHT_DSN_DELIVERIES)
AUDIT_READ = right_name(auth_pb2.RIGHT_AUDIT_READ)
NOTIFY_READ = right_name(auth_pb2.RIGHT_NOTIFY_READ)
NOTIFY_SEND = right_name(auth_pb2.RIGHT_NOTIFY_SEND)
NOMENCLATURE_READ = right_name(auth_pb2.RIGHT_NOMENCLATURE_READ)
NOMENCLATURE_PUBLISH = right_name(auth_pb2.RIGHT_NOMENCLATURE_PUBLISH)
RELATIONS_READ = right_name(auth_pb2.RIGHT_RELATIONS_READ)
HABILITATION_MANAGE = right_name(auth_pb2.RIGHT_HABILITATION_MANAGE)
HABILITATION_CHECK = right_name(auth_pb2.RIGHT_HABILITATION_CHECK)
SERVICE_PASRAU = right_name(auth_pb2.RIGHT_SERVICE_PASRAU)
SERVICE_BONUS_MALUS = right_name(auth_pb2.RIGHT_SERVICE_BONUS_MALUS)
SERVICE_ATMP = right_name(auth_pb2.RIGHT_SERVICE_ATMP)
SERVICE_DUCS = right_name(auth_pb2.RIGHT_SERVICE_DUCS)
ACCOUNT_SUPPORT = right_name(auth_pb2.RIGHT_ACCOUNT_SUPPORT)
TRACE_WRITE = right_name(auth_pb2.RIGHT_TRACE_WRITE)
MANDATE_MANAGE = right_name(auth_pb2.RIGHT_MANDATE_MANAGE)
MANDATE_READ = right_name(auth_pb2.RIGHT_MANDATE_READ)
